"""IRCv3 message tags: parsing with the spec's unescaping, writing with its escaping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transports.irc.protocol import UnsafeLine, build_line, encode_line, parse_line
from transports.irc.tags import (
    MAX_CLIENT_TAGS_BYTES,
    MAX_TAGS_BYTES,
    escape,
    format_tags,
    parse_tags,
    replay_time,
    replayed,
    server_time,
    unescape,
)


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("a\\:b", "a;b"),
        ("a\\sb", "a b"),
        ("a\\\\b", "a\\b"),
        ("a\\rb\\nc", "a\rb\nc"),
        ("trailing\\", "trailing"),  # a lone backslash at the end is dropped
        ("a\\bc", "abc"),  # unknown escape: the backslash is dropped
        ("\\\\s", "\\s"),  # an escaped backslash followed by s is not a space
        ("plain", "plain"),
        ("", ""),
    ],
)
def test_values_are_unescaped_as_the_spec_says(raw: str, text: str) -> None:
    assert unescape(raw) == text


def test_parse_tags_keys_without_values_empty_items_and_repeats() -> None:
    assert parse_tags("a;b=;c=1;;c=2;+draft/x=y\\sz") == {
        "a": "",
        "b": "",
        "c": "2",
        "+draft/x": "y z",
    }


def test_a_line_carries_its_tags_unescaped() -> None:
    line = parse_line(
        "@time=2026-12-01T04:34:52.250Z;msgid=abc\\:1;account=bob :bob!b@h PRIVMSG #c :hi there"
    )
    assert line.tags == {"time": "2026-12-01T04:34:52.250Z", "msgid": "abc;1", "account": "bob"}
    assert line.msgid == "abc;1"
    assert line.account == "bob"
    assert line.time == pytest.approx(1796099692.25)
    assert line.params == ("#c", "hi there")


def test_over_budget_tags_are_dropped_and_the_message_kept() -> None:
    big = "x=" + "a" * MAX_TAGS_BYTES
    line = parse_line(f"@{big} :bob!b@h PRIVMSG #c :hi")
    assert line.tags == {}
    assert line.params == ("#c", "hi")


@pytest.mark.parametrize("value", ["", "2026-12-01", "yesterday", "2026-13-01T00:00:00Z", None])
def test_unreadable_server_time_is_none(value: str | None) -> None:
    assert server_time(value) is None


def test_client_tags_are_escaped_in_a_built_line() -> None:
    line = build_line("TAGMSG", "#c", tags={"+typing": "active", "+x": "a; b\\\r\n"})
    assert line == "@+typing=active;+x=a\\:\\sb\\\\\\r\\n TAGMSG #c"
    assert parse_line(line).tags == {"+typing": "active", "+x": "a; b\\\r\n"}


@pytest.mark.parametrize("key", ["", "+", "a b", "a;b", "a=b", "+x\n", "+é"])
def test_bad_tag_names_are_refused(key: str) -> None:
    with pytest.raises(UnsafeLine):
        build_line("TAGMSG", "#c", tags={key: "v"})


def test_nul_in_a_tag_value_is_refused() -> None:
    with pytest.raises(UnsafeLine):
        build_line("TAGMSG", "#c", tags={"+x": "a\0b"})


def test_client_tags_have_their_own_budget() -> None:
    fits = "v" * (MAX_CLIENT_TAGS_BYTES - len("@+x=") - 1)
    assert len(format_tags({"+x": fits}).encode()) + 1 == MAX_CLIENT_TAGS_BYTES
    with pytest.raises(UnsafeLine):
        build_line("TAGMSG", "#c", tags={"+x": fits + "v"})


@given(st.text())
def test_any_value_survives_the_round_trip_and_never_breaks_the_line(value: str) -> None:
    if "\0" in value:
        return
    escaped = escape(value)
    assert not any(char in escaped for char in " ;\r\n")
    assert unescape(escaped) == value
    try:
        data = encode_line(build_line("TAGMSG", "#c", tags={"+x": value}), "utf-8")
    except UnsafeLine:
        return  # over the budget
    assert data.count(b"\r\n") == 1 and data.endswith(b"\r\n")
    assert parse_line(data.decode().rstrip("\r\n")).tags == {"+x": value}


def test_only_an_old_server_time_is_a_replay() -> None:
    stamp = "2026-12-01T04:00:00.000Z"
    at = server_time(stamp)
    assert at is not None
    assert replay_time(stamp, now=at + 5) is None  # live
    assert replay_time(stamp, now=at + 3600) == at  # playback: shown with its time
    assert replay_time(None, now=at) is None
    assert replayed(at, now=at + 5) is None and replayed(at, now=at + 3600) == at
