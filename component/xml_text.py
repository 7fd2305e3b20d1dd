"""Text and attribute values escaped for stanzas written as text (see ``render.py``)."""

from __future__ import annotations

_TEXT_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
#: In attributes also quotes, and the white space a parser would otherwise fold into spaces.
_ATTR_ESCAPES = str.maketrans(
    {**_TEXT_ESCAPES, '"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}
)
_TEXT_TABLE = str.maketrans(_TEXT_ESCAPES)


def text(value: str) -> str:
    """``value`` as character data."""
    return value.translate(_TEXT_TABLE)


def attr(value: str) -> str:
    """``value`` as a quoted attribute value, quotes included."""
    return f'"{value.translate(_ATTR_ESCAPES)}"'
