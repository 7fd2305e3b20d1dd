"""IRC addresses from JIDs and typed prompts: nothing that could break a line or a JID."""

from __future__ import annotations

import pytest

from transports.base import AddressError
from transports.irc.addressing import check_nick, check_server, parse_address


@pytest.mark.parametrize("nick", ["juliet\n", "juliet\r", "bob\nQUIT", "a\0"])
def test_a_nick_with_a_line_break_is_refused(nick: str) -> None:
    with pytest.raises(AddressError):
        check_nick(nick)


@pytest.mark.parametrize("server", ["irc.example.net\n", "irc.example.net\r\nQUIT"])
def test_a_server_with_a_line_break_is_refused(server: str) -> None:
    with pytest.raises(AddressError):
        check_server(server)


@pytest.mark.parametrize(
    "text",
    ["juliet\n%irc.example.net", "#chan\ue000%irc.example.net", "#chan\uff10%irc.example.net"],
)
def test_an_address_no_jid_can_name_is_refused(text: str) -> None:
    with pytest.raises(AddressError):
        parse_address(text)


def test_ordinary_addresses_still_parse() -> None:
    assert str(parse_address("#Chan%irc.example.net")) == "#chan%irc.example.net"
    assert str(parse_address("NickServ%irc.example.net")) == "NickServ%irc.example.net"
    assert str(parse_address("#café", "irc.example.net")) == "#café%irc.example.net"
