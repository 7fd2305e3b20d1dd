"""XEP-0106 §5 examples, and the edge cases the XEP calls out."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transports.jid_escaping import EscapingError, escape_localpart, unescape_localpart

# (unescaped, escaped) pairs from XEP-0106 §5, "Examples".
XEP_EXAMPLES = [
    ("space cadet", r"space\20cadet"),
    ('call me "ishmael"', r"call\20me\20\22ishmael\22"),
    ("at&t guy", r"at\26t\20guy"),
    ("d'artagnan", r"d\27artagnan"),
    ("/.fanboy", r"\2f.fanboy"),
    ("::foo::", r"\3a\3afoo\3a\3a"),
    ("<foo>", r"\3cfoo\3e"),
    ("user@host", r"user\40host"),
    (r"c:\net", r"c\3a\net"),
    (r"c:\\net", r"c\3a\\net"),
    (r"c:\cool stuff", r"c\3a\cool\20stuff"),
    (r"c:\5commas", r"c\3a\5c5commas"),
]


@pytest.mark.parametrize(("plain", "escaped"), XEP_EXAMPLES)
def test_xep_examples_escape(plain: str, escaped: str) -> None:
    assert escape_localpart(plain) == escaped


@pytest.mark.parametrize(("plain", "escaped"), XEP_EXAMPLES)
def test_xep_examples_unescape(plain: str, escaped: str) -> None:
    assert unescape_localpart(escaped) == plain


def test_email_address() -> None:
    assert escape_localpart("juliet@capulet.lit") == r"juliet\40capulet.lit"


@pytest.mark.parametrize("bad", ["", " leading", "trailing ", " "])
def test_leading_or_trailing_space_is_refused(bad: str) -> None:
    with pytest.raises(EscapingError):
        escape_localpart(bad)


def test_unknown_sequences_are_left_alone() -> None:
    assert unescape_localpart(r"\zz\4") == r"\zz\4"
    assert unescape_localpart(r"a\2F") == "a/"  # hex is case-insensitive on the way in


@given(st.text(min_size=1).filter(lambda s: s[0] != " " and s[-1] != " "))
def test_round_trip(text: str) -> None:
    escaped = escape_localpart(text)
    assert unescape_localpart(escaped) == text
    assert not set(escaped) & set(" \"&'/:<>@")
