"""IRCv3 message tags: ``@key=value;+client/tag :prefix COMMAND …``, both ways.

Values are escaped on the wire (``\\:`` for ``;``, ``\\s`` for a space, ``\\\\``, ``\\r``,
``\\n``); reading unescapes them exactly as the spec says, so that an escape never leaks
into a body or a timestamp, and writing escapes them, so that no tag value can end the
tags, the line, or inject a command. Tags have a budget of their own, apart from the 512
bytes of the rest of the line.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime

#: What a server may send us in the tags part, ``@`` and the space included.
MAX_TAGS_BYTES = 8191
#: What a client may send in it (client-only ``+`` tags and the ``@``/space included).
MAX_CLIENT_TAGS_BYTES = 4094

_UNESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
_ESCAPES = {";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n"}


class TagError(ValueError):
    """Tags we were asked to send cannot be written (bad key, over the budget)."""


def unescape(value: str) -> str:
    """A tag value as sent → its text: known escapes replaced, a lone backslash at the end
    dropped, and the backslash of an unknown escape dropped (``\\b`` → ``b``)."""
    if "\\" not in value:
        return value
    out: list[str] = []
    index = 0
    while index < len(value):
        char = value[index]
        if char == "\\":
            if index + 1 < len(value):
                following = value[index + 1]
                out.append(_UNESCAPES.get(following, following))
            index += 2
        else:
            out.append(char)
            index += 1
    return "".join(out)


def escape(value: str) -> str:
    return "".join(_ESCAPES.get(char, char) for char in value)


def parse_tags(raw: str) -> dict[str, str]:
    """The tags part of a line (without the ``@``) → {key: unescaped value}.

    A key without a value, or with an empty one, maps to ``""``; when a key repeats, the
    last one wins (as the spec says); empty items (``a;;b``) are skipped.
    """
    tags: dict[str, str] = {}
    for item in raw.split(";"):
        key, _, value = item.partition("=")
        if key:
            tags[key] = unescape(value)
    return tags


def _valid_key(key: str) -> bool:
    name = key.removeprefix("+")
    vendor, _, short = name.rpartition("/")
    return (
        bool(short)
        and all(c.isascii() and (c.isalnum() or c == "-") for c in short)
        and (all(c.isascii() and (c.isalnum() or c in ".-") for c in vendor))
    )


def format_tags(tags: Mapping[str, str]) -> str:
    """{key: value} → ``@k=v;k2`` with values escaped ("" if no tags); raises TagError.

    The result holds no space, CR, LF or NUL whatever the values are.
    """
    if not tags:
        return ""
    items = []
    for key, value in tags.items():
        if not _valid_key(key):
            raise TagError(f"not a valid tag name: {key!r}")
        if "\0" in value:
            raise TagError("NUL cannot be sent in a tag value")
        items.append(f"{key}={escape(value)}" if value else key)
    text = "@" + ";".join(items)
    if len(text.encode()) + 1 > MAX_CLIENT_TAGS_BYTES:
        raise TagError(f"tags over {MAX_CLIENT_TAGS_BYTES} bytes")
    return text


def server_time(value: str | None) -> float | None:
    """The ``time`` tag (``2026-12-01T04:34:52.123Z``, server-time) → a Unix timestamp.

    None when absent or unreadable: a malformed tag must not lose the message, which then
    simply carries the gateway's own time.
    """
    if not value or not value.endswith("Z"):
        return None
    try:
        stamp = datetime.fromisoformat(value[:-1]).replace(tzinfo=UTC)
    except ValueError:
        return None
    return stamp.timestamp()


#: A line whose server-time is older than this is a replay (playback, chathistory), not
#: live: it is shown with its time (XEP-0203 delay); a live line is shown as live.
REPLAY_SECONDS = 30.0


def replayed(stamp: float | None, now: float | None = None) -> float | None:
    """``stamp`` (a server-time) if it is a replayed line's, None for a live one."""
    if stamp is None:
        return None
    now = time.time() if now is None else now
    return stamp if now - stamp > REPLAY_SECONDS else None


def replay_time(value: str | None, now: float | None = None) -> float | None:
    """The server-time of a replayed line, None for a live one (or no server-time)."""
    return replayed(server_time(value), now)
