"""The admin's allowlist of after-connect commands, compared with the parsed line.

A text prefix would let ``PRIVMSG NickServ2`` or ``PRIVMSG NickServ,#chan`` pass a
``PRIVMSG NickServ`` rule; these cases show that the command and the target are compared.
"""

from __future__ import annotations

import pytest

from transports.irc.after_connect import (
    AfterConnectRule,
    LineRefused,
    allowed_lines,
    check_line,
    parse_rules,
)

RULES = parse_rules(["PRIVMSG NickServ", "MODE {nick}", "AWAY"])


@pytest.mark.parametrize(
    ("line", "sent"),
    [
        ("PRIVMSG NickServ :IDENTIFY secret", "PRIVMSG NickServ :IDENTIFY secret"),
        ("privmsg nickserv :identify secret", "PRIVMSG nickserv :identify secret"),
        ("/PRIVMSG NICKSERV :IDENTIFY x", "PRIVMSG NICKSERV :IDENTIFY x"),
        ("MODE alice +i", "MODE alice +i"),
        ("MODE Alice +R", "MODE Alice +R"),
        ("AWAY :back later", "AWAY :back later"),
    ],
)
def test_lines_on_the_list_pass(line: str, sent: str) -> None:
    assert check_line(line, RULES, "alice") == sent


@pytest.mark.parametrize(
    "line",
    [
        "PRIVMSG NickServ2 :IDENTIFY x",
        "PRIVMSG NickServ,#chan :hello",
        "PRIVMSG #chan,NickServ :hello",
        "PRIVMSG",
        "MODE bob +o",
        "MODE #chan +o alice",
        "SET pwned 1",
        "GET /admin HTTP/1.0",
        "NOTICE NickServ :IDENTIFY x",
        "PRIVMSG NickServ :IDENTIFY x\r\nSET pwned 1",
        "PRIVMSG NickServ :a\0b",
        ":server PRIVMSG NickServ :x",
    ],
)
def test_lines_off_the_list_are_refused(line: str) -> None:
    with pytest.raises(LineRefused):
        check_line(line, RULES, "alice")


def test_no_rules_no_lines() -> None:
    with pytest.raises(LineRefused, match="does not allow"):
        check_line("PRIVMSG NickServ :IDENTIFY x", (), "alice")


def test_the_refusal_says_what_is_allowed() -> None:
    with pytest.raises(LineRefused) as refused:
        check_line("SET pwned 1", RULES, "alice")
    assert str(refused.value) == (
        "'SET pwned 1' is not allowed after connecting "
        "(allowed: PRIVMSG NickServ, MODE alice, AWAY)"
    )


def test_stored_lines_are_kept_only_when_allowed() -> None:
    stored = ["SET pwned 1", "PRIVMSG NickServ :IDENTIFY x", "MODE bob +o", "MODE alice +i"]
    assert allowed_lines(stored, RULES, "alice") == [
        "PRIVMSG NickServ :IDENTIFY x",
        "MODE alice +i",
    ]


@pytest.mark.parametrize("rule", ["", "PRIVMSG NickServ :IDENTIFY", "GET/x", "PRIVMSG a,b"])
def test_bad_rules_are_refused(rule: str) -> None:
    with pytest.raises(ValueError):
        AfterConnectRule.parse(rule)
