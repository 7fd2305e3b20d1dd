"""IRC lines: parsing what servers send and building what we send, with no way to inject.

A line we build can never carry CR, LF or NUL, whatever the user typed: those bytes end an
IRC command, so letting one through would let an XMPP body become a command of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Bytes that end or corrupt an IRC line; never allowed inside a parameter.
FORBIDDEN = ("\r", "\n", "\0")
MAX_LINE_BYTES = 512  # RFC 1459/2812, CRLF included


class UnsafeLine(ValueError):
    """A parameter would break the line (CR/LF/NUL, a space in a middle parameter, …)."""


@dataclass(frozen=True)
class IrcLine:
    """One message from the server (IRCv3 tags are kept but not interpreted)."""

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
    """Parse one line (without CRLF) as RFC 1459 with IRCv3 message tags."""
    rest = text.rstrip("\r\n")
    tags: dict[str, str] = {}
    if rest.startswith("@"):
        raw_tags, _, rest = rest[1:].partition(" ")
        for item in raw_tags.split(";"):
            key, _, value = item.partition("=")
            tags[key] = value
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
    words = rest.split()
    command = words[0].upper() if words else ""
    params = words[1:]
    if trailing is not None:
        params.append(trailing)
    return IrcLine(command=command, params=tuple(params), prefix=prefix, tags=tags)


def build_line(command: str, *params: str) -> str:
    """Build a line (without CRLF); only the last parameter may hold spaces or be empty.

    Raises :class:`UnsafeLine` rather than cleaning, because a caller that lets CR/LF reach
    this point has a bug that must be seen (bodies are split into lines before this).
    """
    if not command or not command.isalnum():
        raise UnsafeLine(f"not an IRC command: {command!r}")
    parts = [command]
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
