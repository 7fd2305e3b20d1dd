"""IRC case folding by the server's own CASEMAPPING, for lookup keys only.

IRC servers compare nicks and channel names case-insensitively, with a rule they announce
in ISUPPORT (005 ``CASEMAPPING=``): ``rfc1459`` (the default until 005 arrives) also folds
``[]\\~`` to ``{}|^``, ``strict-rfc1459`` folds ``[]\\`` but not ``~``, ``ascii`` folds
A-Z only. Folding only ASCII matters: Python's ``str.lower`` would also fold ``É`` to
``é``, which no IRC server does, and two distinct channels would become one key.

Only keys are folded: names shown to users, and room JIDs, keep the characters the user
or the server wrote (``#foo[bar]`` stays ``#foo[bar]``, never ``#foo{bar}``).
"""

from __future__ import annotations

from typing import Final

RFC1459: Final = "rfc1459"
STRICT_RFC1459: Final = "strict-rfc1459"
ASCII: Final = "ascii"

_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_TABLES: Final = {
    ASCII: str.maketrans(_UPPER, _LOWER),
    STRICT_RFC1459: str.maketrans(_UPPER + "[]\\", _LOWER + "{}|"),
    RFC1459: str.maketrans(_UPPER + "[]\\~", _LOWER + "{}|^"),
}


def casemapping(value: str) -> str:
    """The CASEMAPPING to use for the value a server announced.

    Mappings we do not know (``rfc7613``, ``BulgarianCyrillic+EnglishAlphabet``) fold at
    least ASCII letters: folding less than the server only risks a missed lookup, while
    folding more could merge two channels the server keeps apart.
    """
    name = value.strip().lower()
    return name if name in _TABLES else ASCII


def fold(name: str, mapping: str = RFC1459) -> str:
    """The lookup key of a nick or channel name under ``mapping`` (unknown: rfc1459).

    The name itself when folding changes nothing: keys are kept for every channel and member,
    and a copy of each was a string per key for nothing.
    """
    folded = name.translate(_TABLES.get(mapping, _TABLES[RFC1459]))
    return name if folded == name else folded
