"""IRC lines: parsing what servers send and building what we send, with no way to inject.

A line we build can never carry CR, LF or NUL, whatever the user typed: those bytes end an
IRC command, so letting one through would let an XMPP body become a command of its own. The
same holds for the bytes written, which is why only encodings that keep ASCII are allowed.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from dataclasses import dataclass, field

from transports.irc.tags import MAX_TAGS_BYTES, format_tags, parse_tags, server_time

#: Bytes that end or corrupt an IRC line; never allowed inside a parameter.
FORBIDDEN = ("\r", "\n", "\0")
MAX_LINE_BYTES = 512  # RFC 1459/2812, CRLF included


class UnsafeLine(ValueError):
    """A parameter would break the line (CR/LF/NUL, a space in a middle parameter, …)."""


@dataclass(frozen=True)
class IrcLine:
    """One message from the server, with its IRCv3 tags (values already unescaped)."""

    command: str
    params: tuple[str, ...] = ()
    prefix: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def nick(self) -> str:
        """The sender's nick (``nick!user@host``), or the server name."""
        return self.prefix.split("!", 1)[0].split("@", 1)[0]

    @property
    def from_server(self) -> bool:
        return "!" not in self.prefix and "@" not in self.prefix

    def param(self, index: int, default: str = "") -> str:
        return self.params[index] if len(self.params) > index else default

    @property
    def time(self) -> float | None:
        """When the server says this happened (server-time), as a Unix timestamp."""
        return server_time(self.tags.get("time"))

    @property
    def msgid(self) -> str | None:
        """The server's id of this message (``msgid`` tag), if any."""
        return self.tags.get("msgid") or None

    @property
    def account(self) -> str | None:
        """The sender's services account (``account`` tag, account-tag), if logged in."""
        return self.tags.get("account") or None


def decode(raw: bytes, encoding: str = "utf-8", fallback: str = "latin-1") -> str:
    """Decode a line: the configured encoding first, then the fallback (never fails).

    IRC has no declared encoding; UTF-8 is usual but old clients still send latin-1, and a
    line that cannot be read must still reach the user rather than kill the connection.
    """
    try:
        return raw.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return raw.decode(fallback, errors="replace")


def parse_line(text: str) -> IrcLine:
    """Parse one line (without CRLF) as RFC 1459 with IRCv3 message tags.

    Tags over their own budget (8191 bytes) are dropped, the message kept.
    """
    rest = text.rstrip("\r\n")
    tags: dict[str, str] = {}
    if rest.startswith("@"):
        raw_tags, _, rest = rest[1:].partition(" ")
        # surrogatepass: a lone surrogate (never from the wire; a typed raw line) is counted,
        # not an exception.
        if len(raw_tags.encode(errors="surrogatepass")) + 2 <= MAX_TAGS_BYTES:
            tags = parse_tags(raw_tags)
        rest = rest.lstrip(" ")
    prefix = ""
    if rest.startswith(":"):
        prefix, _, rest = rest[1:].partition(" ")
        rest = rest.lstrip(" ")
    trailing: str | None = None
    if " :" in rest:
        rest, _, trailing = rest.partition(" :")
    elif rest.startswith(":"):
        rest, trailing = "", rest[1:]
    # Only SPACE separates parameters (RFC 1459 §2.3.1): a tab inside a parameter stays in it.
    words = [word for word in rest.split(" ") if word]
    command = words[0].upper() if words else ""
    params = words[1:]
    if trailing is not None:
        params.append(trailing)
    return IrcLine(command=command, params=tuple(params), prefix=prefix, tags=tags)


def build_line(command: str, *params: str, tags: Mapping[str, str] | None = None) -> str:
    """Build a line (without CRLF); only the last parameter may hold spaces or be empty.

    Raises :class:`UnsafeLine` rather than cleaning, because a caller that lets CR/LF reach
    this point has a bug that must be seen (bodies are split into lines before this).
    Tag values are escaped (tags.py), so they can hold anything but NUL.
    """
    if not command or not command.isalnum():
        raise UnsafeLine(f"not an IRC command: {command!r}")
    try:
        tagged = format_tags(tags or {})
    except ValueError as exc:
        raise UnsafeLine(str(exc)) from None
    parts = [tagged, command] if tagged else [command]
    for index, param in enumerate(params):
        if any(char in param for char in FORBIDDEN):
            raise UnsafeLine("CR, LF and NUL cannot be sent to IRC")
        last = index == len(params) - 1
        if last and (not param or " " in param or param.startswith(":")):
            parts.append(":" + param)
        elif not param or " " in param or param.startswith(":"):
            raise UnsafeLine(f"parameter {param!r} cannot stand in the middle of a line")
        else:
            parts.append(param)
    return " ".join(parts)


def parse_raw_command(text: str) -> str:
    """Check a raw command a user typed to the server JID; the result is safe to send.

    Only one line is allowed: a raw command with an embedded newline would be two commands.
    """
    line = text.strip().removeprefix("/")
    if not line:
        raise UnsafeLine("empty command")
    if any(char in line for char in FORBIDDEN):
        raise UnsafeLine("a raw command must be a single line")
    parsed = parse_line(line)
    if not parsed.command.isalnum() or parsed.prefix or parsed.tags:
        raise UnsafeLine(f"not an IRC command: {line!r}")
    return build_line(parsed.command, *parsed.params)


def check_encoding(name: str) -> str:
    """The codec's own name for ``name``, if IRC lines may use it; raise UnsafeLine if not.

    IRC servers split lines on the bytes CR and LF. An encoding that does not write ASCII as
    itself (UTF-16, UTF-32, EBCDIC, UTF-7…) turns harmless characters into those bytes: in
    UTF-16-LE the character U+0A0D is written CR LF, and U+5551 U+5449 is ``QUIT``. Such an
    encoding would let any message body carry commands of its own.
    """
    try:
        codec = codecs.lookup(name)
    except (LookupError, ValueError):  # ValueError: a NUL in the name
        raise UnsafeLine(f"unknown encoding {name!r}") from None
    ascii_text = "".join(map(chr, range(128)))
    try:
        written = ascii_text.encode(codec.name)
        read = written.decode(codec.name)
    except (LookupError, ValueError):  # not a text codec, or refuses some ASCII (idna)
        written, read = b"", ""
    if written != ascii_text.encode("ascii") or read != ascii_text:
        raise UnsafeLine(f"{name!r} cannot be used on IRC: it must write ASCII as ASCII")
    return codec.name


def encode_line(line: str, encoding: str) -> bytes:
    """A built line as the bytes written to the server, CRLF included.

    Characters the encoding cannot hold become ``?``. Raises :class:`UnsafeLine` if the
    encoded text itself holds CR, LF or NUL, which :func:`check_encoding` rules out for
    the encodings it accepts; this is the last check before the socket.
    """
    data = line.encode(encoding, errors="replace")
    if any(byte in data for byte in b"\r\n\0"):
        raise UnsafeLine(f"{encoding} writes this line with CR, LF or NUL bytes")
    return data + b"\r\n"
