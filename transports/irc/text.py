"""Message text between XMPP and IRC: line splitting, CTCP, formatting codes.

An XMPP body has no length limit and may hold newlines; an IRC line is at most 512 bytes,
counted as the *receiving* client sees it, i.e. with the server-added ``:nick!user@host``
prefix. Splitting is therefore by encoded bytes, on character boundaries, with that prefix
counted, so no line is truncated by the server and no UTF-8 character is cut in two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from transports.irc.protocol import MAX_LINE_BYTES

CTCP_DELIMITER = "\x01"
#: The least text a line carries, however long the prefix a server reports for us: the server
#: may cut such a line, but a hostile prefix cannot stop every message from being sent.
MIN_TEXT_BYTES = 64
#: Room for a prefix we do not know yet: nick (30) + "!" + user (10) + "@" + host (63).
UNKNOWN_PREFIX_BYTES = 106
_NEWLINES = re.compile(r"\r\n|\r|\n")
# mIRC colours (^C fg[,bg]), bold, italics, underline, strike, monospace, reverse, reset.
_FORMATTING = re.compile(
    r"\x03(\d{1,2}(,\d{1,2})?)?|\x04[0-9a-fA-F]{6}(,[0-9a-fA-F]{6})?|[\x02\x0f\x11\x16\x1d\x1e\x1f]"
)


@dataclass(frozen=True)
class IrcText:
    """A PRIVMSG/NOTICE text, with CTCP ACTION (``/me``) recognised."""

    body: str
    action: bool = False


def strip_formatting(text: str) -> str:
    """Drop IRC colour and style codes, which XMPP clients would show as garbage."""
    return _FORMATTING.sub("", text)


def parse_ctcp(text: str) -> tuple[str, str] | None:
    """``\\x01VERSION\\x01`` → ("VERSION", ""); None when the text is not CTCP."""
    if not text.startswith(CTCP_DELIMITER):
        return None
    inner = text[1:].removesuffix(CTCP_DELIMITER)
    command, _, argument = inner.partition(" ")
    return command.upper(), argument


def ctcp(command: str, argument: str = "") -> str:
    return f"{CTCP_DELIMITER}{command}{' ' + argument if argument else ''}{CTCP_DELIMITER}"


def body_from_xmpp(body: str) -> IrcText:
    """An XMPP body: ``/me waves`` is an ACTION, as in every XMPP client (XEP-0245)."""
    if body.startswith("/me "):
        return IrcText(body[4:], action=True)
    return IrcText(body)


def body_to_xmpp(text: str) -> str:
    """An IRC PRIVMSG text as an XMPP body (``/me`` for ACTION, formatting stripped)."""
    found = parse_ctcp(text)
    if found is not None and found[0] == "ACTION":
        return "/me " + strip_formatting(found[1])
    return strip_formatting(text)


def split_utf8(text: str, limit: int, encoding: str = "utf-8") -> list[str]:
    """Split ``text`` into chunks of at most ``limit`` encoded bytes, on character boundaries.

    A chunk ends at the last space that fits when there is one in its second half, so words
    are not cut where it can be avoided; that space separates the lines and is dropped
    (servers strip trailing spaces anyway).
    """
    if limit < 4:
        raise ValueError("limit too small to hold any character")
    chunks: list[str] = []
    rest = text
    while rest:
        if len(rest.encode(encoding, errors="replace")) <= limit:
            chunks.append(rest)
            break
        # Characters that fit, counted by their encoded size.
        size, cut = 0, 0
        for char in rest:
            width = len(char.encode(encoding, errors="replace"))
            if size + width > limit:
                break
            size += width
            cut += 1
        space = rest.rfind(" ", 0, cut + 1)
        if space >= cut // 2 and space > 0:
            chunks.append(rest[:space])
            rest = rest[space + 1 :]
        else:
            chunks.append(rest[:cut])
            rest = rest[cut:]
    return chunks


def split_message(
    command: str,
    target: str,
    body: str,
    *,
    prefix: str | None = None,
    action: bool = False,
    encoding: str = "utf-8",
) -> list[str]:
    """The texts of the PRIVMSG/NOTICE lines that carry ``body`` to ``target``.

    Each CR/LF starts a new line (empty lines are dropped: IRC cannot carry them); each
    returned text, as ``:prefix COMMAND target :text\\r\\n`` on the receiving side, fits
    within 512 bytes, unless the prefix is too long to leave :data:`MIN_TEXT_BYTES`. ACTION
    texts come back wrapped in CTCP delimiters.
    """
    prefix_bytes = _encoded_size(prefix, encoding) if prefix else UNKNOWN_PREFIX_BYTES
    wrapper = len(ctcp("ACTION", "x")) - 1 if action else 0
    # ":" prefix " " COMMAND " " target " :" text "\r\n"
    overhead = 1 + prefix_bytes + 1 + len(command) + 1 + _encoded_size(target, encoding) + 2 + 2
    limit = max(MAX_LINE_BYTES - overhead - wrapper, MIN_TEXT_BYTES)
    texts: list[str] = []
    for line in _NEWLINES.split(body.replace("\0", "")):
        if not line.strip():
            continue
        for chunk in split_utf8(line, limit, encoding):
            texts.append(ctcp("ACTION", chunk) if action else chunk)
    return texts


def one_line(text: str) -> str:
    """``text`` for a single-line parameter (topic, kick reason, away): breaks become spaces.

    Every Unicode line break counts (``str.splitlines``), NUL is dropped, and blank lines
    and outer spaces go, so a multi-line XMPP subject or status is sent, not refused.
    """
    lines = (line.strip() for line in text.replace("\0", "").splitlines())
    return " ".join(line for line in lines if line)


def _encoded_size(text: str, encoding: str) -> int:
    """Bytes on the wire: what cannot be encoded is written ``?``, as the connection does."""
    return len(text.encode(encoding, errors="replace"))
