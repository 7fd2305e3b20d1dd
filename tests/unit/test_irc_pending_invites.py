"""Which server replies answer the user's INVITEs (transports/irc/invites.py)."""

from __future__ import annotations

from transports.irc.casemap import ASCII, fold
from transports.irc.invites import InviteAnswer, PendingInvites
from transports.irc.protocol import parse_line


def test_confirmation_names_the_nick() -> None:
    invites = PendingInvites(fold)
    invites.sent("Carol", "#test")
    assert invites
    answer = invites.answer(parse_line(":irc.localhost 341 alice carol #Test"))
    assert answer == InviteAnswer("Carol", "#test", None, "Carol has been invited to #Test")
    assert not invites  # answered once, then forgotten
    assert invites.answer(parse_line(":irc.localhost 341 alice carol #Test")) is None


def test_errors_naming_the_nick_or_only_the_channel() -> None:
    invites = PendingInvites(fold)
    invites.sent("ghost", "#test")
    invites.sent("bob", "#test")
    invites.sent("dave", "#other")
    no_such = invites.answer(parse_line(":srv 401 alice GHOST :No such nick or channel name"))
    assert no_such is not None
    assert (no_such.nick, no_such.condition) == ("ghost", "item-not-found")
    assert no_such.text == "cannot invite ghost to #test: No such nick or channel name"
    there = invites.answer(parse_line(":srv 443 alice bob #test :is already on channel"))
    assert there is not None and there.condition == "conflict"
    not_op = invites.answer(parse_line(":srv 482 alice #other :You are not channel operator"))
    assert not_op is not None
    assert (not_op.nick, not_op.channel, not_op.condition) == ("dave", "#other", "forbidden")
    assert not invites


def test_replies_to_something_else_are_left_alone() -> None:
    invites = PendingInvites(fold)
    invites.sent("carol", "#test")
    # A 482 after a KICK in another channel, a 401 for a private message, other numerics.
    assert invites.answer(parse_line(":srv 482 alice #else :You are not channel operator")) is None
    assert invites.answer(parse_line(":srv 401 alice nobody :No such nick")) is None
    assert invites.answer(parse_line(":srv 404 alice #test :Cannot send")) is None
    assert invites.answer(parse_line(":bob!b@h PRIVMSG alice :hi")) is None
    assert invites
    # 442 names only the channel, and answers the invitation there.
    answer = invites.answer(parse_line(":srv 442 alice #test :You are not on that channel"))
    assert answer is not None and answer.condition == "not-acceptable"


def test_a_reply_without_text_still_reads() -> None:
    invites = PendingInvites(fold)
    invites.sent("bob", "#test")
    answer = invites.answer(parse_line(":srv 482 alice #test"))
    assert answer is not None and answer.text == "cannot invite bob to #test: 482"


def test_an_ascii_server_keeps_brackets_and_braces_apart() -> None:
    """CASEMAPPING=ascii (ngIRCd): ``#a{b}`` is another channel than ``#a[b]``."""
    invites = PendingInvites(lambda name: fold(name, ASCII))
    invites.sent("Bob", "#a[b]")
    assert invites.answer(parse_line(":srv 482 alice #a{b} :You are not channel operator")) is None
    answer = invites.answer(parse_line(":srv 482 alice #A[b] :You are not channel operator"))
    assert answer is not None and (answer.nick, answer.channel) == ("Bob", "#a[b]")
