"""Case folding by the server's CASEMAPPING: keys only, never names."""

from __future__ import annotations

import pytest

from transports.irc.casemap import ASCII, RFC1459, STRICT_RFC1459, casemapping, fold


@pytest.mark.parametrize(
    ("mapping", "name", "key"),
    [
        (RFC1459, "#Foo[Bar]\\~", "#foo{bar}|^"),
        (STRICT_RFC1459, "#Foo[Bar]\\~", "#foo{bar}|~"),
        (ASCII, "#Foo[Bar]\\~", "#foo[bar]\\~"),
    ],
)
def test_each_casemapping_folds_its_own_characters(mapping: str, name: str, key: str) -> None:
    assert fold(name, mapping) == key


def test_the_default_is_rfc1459_until_the_server_says() -> None:
    assert fold("Nick[A]") == "nick{a}"


@pytest.mark.parametrize("mapping", [RFC1459, STRICT_RFC1459, ASCII])
def test_non_ascii_letters_are_never_folded(mapping: str) -> None:
    # Python's lower() would fold these; no IRC server does, so two channels would merge.
    assert fold("#ÉÇ-İ-Σ", mapping) == "#ÉÇ-İ-Σ"


def test_two_channels_distinct_under_ascii_keep_distinct_keys() -> None:
    assert fold("#a[b]", ASCII) != fold("#a{b}", ASCII)
    assert fold("#a[b]", RFC1459) == fold("#a{b}", RFC1459)


@pytest.mark.parametrize(
    ("announced", "mapping"),
    [
        ("rfc1459", RFC1459),
        ("RFC1459", RFC1459),
        ("strict-rfc1459", STRICT_RFC1459),
        ("ascii", ASCII),
        ("rfc7613", ASCII),
        ("", ASCII),
    ],
)
def test_announced_mappings(announced: str, mapping: str) -> None:
    assert casemapping(announced) == mapping
