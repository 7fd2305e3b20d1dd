"""Pure IRC translation: lines, splitting by bytes, CTCP, addresses, modes, throttle."""

from __future__ import annotations

import pytest

from transports.base import AddressError
from transports.irc.addressing import IrcAddress, format_address, parse_address
from transports.irc.channel import Channel, fold
from transports.irc.connection import next_nick
from transports.irc.modes import PrefixModes, parse_mode_changes, role_and_affiliation
from transports.irc.protocol import UnsafeLine, build_line, decode, parse_line, parse_raw_command
from transports.irc.text import body_from_xmpp, body_to_xmpp, split_message, split_utf8
from transports.irc.throttle import TokenBucket

PREFIX = "alice!~alice@127.0.0.1"


def test_parse_line_with_tags_prefix_and_trailing() -> None:
    line = parse_line("@time=x;id=1 :bob!b@h PRIVMSG #chan :hello :world")
    assert line.command == "PRIVMSG" and line.params == ("#chan", "hello :world")
    assert line.nick == "bob" and not line.from_server and line.tags["id"] == "1"
    assert parse_line(":irc.example 001 me :Welcome").from_server
    assert parse_line("PING :abc").params == ("abc",)


def test_build_line_refuses_injection() -> None:
    assert build_line("PRIVMSG", "#c", "a b") == "PRIVMSG #c :a b"
    assert build_line("NICK", "bob") == "NICK bob"
    for bad in ("a\r\nQUIT", "a\nb", "a\rb", "a\0b"):
        with pytest.raises(UnsafeLine):
            build_line("PRIVMSG", "#c", bad)
    with pytest.raises(UnsafeLine):
        build_line("PRIVMSG", "#c d", "x")
    with pytest.raises(UnsafeLine):
        build_line("PRIV MSG", "x")


def test_raw_commands_are_single_lines() -> None:
    assert parse_raw_command("/whois bob") == "WHOIS bob"
    assert parse_raw_command("PRIVMSG bob :hi there") == "PRIVMSG bob :hi there"
    for bad in (
        "",
        "  ",
        "not_a_command x",
        "PRIVMSG bob :x\r\nQUIT",
        ":prefix PRIVMSG x :y",
        "@t=1 PING x",
    ):
        with pytest.raises(UnsafeLine):
            parse_raw_command(bad)


def test_decode_falls_back() -> None:
    assert decode("héllo".encode()) == "héllo"
    assert decode("héllo".encode("latin-1")) == "héllo"
    assert decode(b"\xe9", "utf-8", "cp1252") == "é"
    assert decode(b"x", "no-such-codec") == "x"


def test_split_counts_prefix_and_keeps_characters_whole() -> None:
    body = "é€😀" * 400
    texts = split_message("PRIVMSG", "#chan", body, prefix=PREFIX)
    assert "".join(texts) == body
    for text in texts:
        assert len(f":{PREFIX} PRIVMSG #chan :{text}\r\n".encode()) <= 512
    # Unknown prefix: room is left for the longest one.
    for text in split_message("PRIVMSG", "#chan", "x" * 2000):
        assert len(text) + len(" PRIVMSG #chan :\r\n") + 1 + 106 <= 512


def test_split_on_spaces_and_newlines() -> None:
    body = "word " * 200
    texts = split_message("PRIVMSG", "#c", body.strip(), prefix=PREFIX)
    assert " ".join(texts) == body.strip()
    assert all(not t.startswith(" ") and not t.endswith(" ") for t in texts)
    assert split_message("PRIVMSG", "#c", "a\r\nb\rc\n\n d \n") == ["a", "b", "c", " d "]
    assert split_message("PRIVMSG", "#c", "\n\r\n") == []


def test_action_lines_fit_with_ctcp_wrapping() -> None:
    texts = split_message("PRIVMSG", "#c", "é" * 600, prefix=PREFIX, action=True)
    assert len(texts) > 1
    for text in texts:
        assert text.startswith("\x01ACTION ") and text.endswith("\x01")
        assert len(f":{PREFIX} PRIVMSG #c :{text}\r\n".encode()) <= 512


def test_split_utf8_limits() -> None:
    assert split_utf8("abc", 10) == ["abc"]
    assert split_utf8("😀😀", 4) == ["😀", "😀"]
    with pytest.raises(ValueError):
        split_utf8("abc", 3)


def test_me_and_ctcp_action() -> None:
    assert body_from_xmpp("/me waves").action
    assert not body_from_xmpp("/mean").action
    assert body_to_xmpp("\x01ACTION waves\x01") == "/me waves"
    assert body_to_xmpp("\x02bold\x02 \x0304,01red\x03 ok") == "bold red ok"


def test_addresses() -> None:
    assert parse_address("#chan%irc.example.org") == IrcAddress(
        "channel", "irc.example.org", "#chan"
    )
    assert parse_address("#Chan%IRC.example.org").name == "#chan"
    assert parse_address("bob%irc.example.org") == IrcAddress("nick", "irc.example.org", "bob")
    assert parse_address("irc.example.org") == IrcAddress("server", "irc.example.org")
    assert parse_address("#chan", "irc.libera.chat").server == "irc.libera.chat"
    assert parse_address("bob", "irc.libera.chat").kind == "nick"
    for bad in ("#a,b%x.org", "bad nick%x.org", "%x.org", "1bob%x.org", "bob%bad_host", ""):
        with pytest.raises(AddressError):
            parse_address(bad)
    with pytest.raises(AddressError):
        parse_address("#chan%other.org", "irc.libera.chat")
    # XEP-0106: an escaped space is decoded, and refused in a channel name.
    with pytest.raises(AddressError):
        parse_address("#a\\20b%x.org")
    assert format_address(IrcAddress("channel", "x.org", "#c")) == "#c%x.org"
    assert format_address(IrcAddress("channel", "x.org", "#c"), "x.org") == "#c"


def test_modes_to_roles() -> None:
    prefix = PrefixModes.parse("(qaohv)~&@%+")
    assert prefix.split_name("@+bob") == ("bob", frozenset("ov"))
    assert role_and_affiliation("o") == ("moderator", "admin")
    assert role_and_affiliation("q") == ("moderator", "owner")
    assert role_and_affiliation("h") == ("moderator", "member")
    assert role_and_affiliation("v") == ("participant", "member")
    assert role_and_affiliation("") == ("participant", "none")
    changes = parse_mode_changes("+ov-b+kl", ["alice", "bob", "*!*@x", "key", "10"], prefix)
    assert [(c.adding, c.mode, c.argument) for c in changes] == [
        (True, "o", "alice"),
        (True, "v", "bob"),
        (False, "b", "*!*@x"),
        (True, "k", "key"),
        (True, "l", "10"),
    ]
    assert PrefixModes.parse("garbage") == PrefixModes.parse("(ov)@+")


def test_channel_state_follows_names_and_modes() -> None:
    prefix = PrefixModes.parse("(ov)@+")
    channel = Channel("#c")
    channel.start_names()
    channel.add_names(["@bob", "+carol", "dave"], prefix)
    left, arrived, changed = channel.end_names()
    assert not left and len(arrived) == 3 and not changed
    touched = channel.apply_modes(parse_mode_changes("+o", ["dave"], prefix), prefix)
    assert [m.nick for m in touched] == ["dave"]
    channel.start_names()
    channel.add_names(["@bob", "@dave", "erin"], prefix)
    left, arrived, changed = channel.end_names()
    assert [m.nick for m in left] == ["carol"] and [m.nick for m in arrived] == ["erin"]
    assert fold("Nick[1]") == "nick{1}"


def test_nick_retries_and_throttle() -> None:
    assert [next_nick("bob", i) for i in (1, 2, 3)] == ["bob_", "bob__", "bob3"]
    bucket = TokenBucket(2, 2.0)
    start = bucket._stamp
    assert bucket.delay(start) == 0 and bucket.delay(start) == 0
    assert bucket.delay(start) == pytest.approx(0.5)
    assert bucket.delay(start + 10) == 0
