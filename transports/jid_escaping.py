"""XEP-0106 JID escaping.

Foreign addresses (``juliet@capulet.lit``, ``c:\\net``) contain characters a JID local part may not
hold. Every transport and the component share these two pure functions so that an address
escaped on the way in is unescaped the same way on the way out.
"""

from __future__ import annotations

import re

_ESCAPES: dict[str, str] = {
    " ": r"\20",
    '"': r"\22",
    "&": r"\26",
    "'": r"\27",
    "/": r"\2f",
    ":": r"\3a",
    "<": r"\3c",
    ">": r"\3e",
    "@": r"\40",
    "\\": r"\5c",
}
_UNESCAPES: dict[str, str] = {code: char for char, code in _ESCAPES.items()}
_ESCAPE_SEQUENCE = re.compile(r"\\(20|22|26|27|2f|3a|3c|3e|40|5c)", re.IGNORECASE)


class EscapingError(ValueError):
    """The text cannot become a JID local part (XEP-0106 §4.2 forbids leading/trailing spaces)."""


def escape_localpart(text: str) -> str:
    """Escape ``text`` for use as a JID local part.

    A backslash is escaped only where it would otherwise be read as an escape sequence,
    as XEP-0106 requires, so ``c:\\net`` stays readable as ``c\\3a\\net``.
    """
    if not text:
        raise EscapingError("an empty address cannot be a JID local part")
    if text[0] == " " or text[-1] == " ":
        raise EscapingError("a JID local part may not begin or end with a space")
    out: list[str] = []
    for index, char in enumerate(text):
        if char == "\\":
            if _ESCAPE_SEQUENCE.match(text, index):
                out.append(_ESCAPES["\\"])
            else:
                out.append(char)
        elif char in _ESCAPES:
            out.append(_ESCAPES[char])
        else:
            out.append(char)
    return "".join(out)


def unescape_localpart(localpart: str) -> str:
    """Undo :func:`escape_localpart`; unknown backslash sequences are kept as they are."""
    return _ESCAPE_SEQUENCE.sub(lambda m: _UNESCAPES["\\" + m.group(1).lower()], localpart)
