"""What biboumi users rely on, on the IRC side of one user's session (issue 11).

A fake connection records what the session writes and the session is fed the lines an IRC
server sends, so each scenario shows both directions: the events the component renders
(occupant JIDs, 210, kick actor, errors on messages…) and the IRC lines sent.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest
from support.irc_fakes import USER, FakeConnection, Hooks, enter, feed, session, transport_with

from transports.base import GatewayError, UserPresence
from transports.events import DeliveryReport, InboundMessage
from transports.irc import channel_list, moderation, pending, user_commands, versions
from transports.irc.session import ServerSession
from transports.irc.settings import IrcSettings
from transports.irc.transport import IrcTransport
from transports.rooms import (
    OccupantPresence,
    RoomError,
    RoomListing,
    RoomMessage,
    RoomStatus,
)

PHONE = f"{USER}/phone"
ROOM = "#chan%irc.example"


async def joined(
    names: str = "alice @bob carol", caps: frozenset[str] = frozenset(), asked: str = "alice"
) -> tuple[ServerSession, FakeConnection, Hooks]:
    """A session whose resource ``phone`` is in #chan, with these NAMES."""
    made, conn, hooks = session(caps)
    await enter(made, "#chan", names, asked)
    conn.sent.clear()
    hooks.events.clear()
    return made, conn, hooks


# -- 1. occupants carry their real JID: contact address and user@host ---------------------------


async def test_occupants_carry_their_contact_address_and_user_at_host() -> None:
    made, _conn, hooks = await joined("alice @bob!~bob@host.example carol")
    await feed(made, ":dave!~dave@dave.example JOIN #chan")
    dave = hooks.of(OccupantPresence)[-1].occupant
    assert (dave.nick, dave.address, dave.identity) == (
        "dave",
        "dave%irc.example",
        "~dave@dave.example",
    )
    bob = made.occupant(made.channels["#chan"].members["bob"])
    assert (bob.address, bob.identity, bob.role) == (
        "bob%irc.example",
        "~bob@host.example",
        "moderator",
    )


async def test_the_real_jid_follows_nick_and_host_changes() -> None:
    made, _conn, hooks = await joined()
    await feed(made, ":dave!~dave@old.example JOIN #chan", ":dave!~dave@old.example NICK dan")
    now = hooks.of(OccupantPresence)[-1].occupant
    assert (now.nick, now.address, now.identity) == ("dan", "dan%irc.example", "~dave@old.example")
    hooks.events.clear()
    await feed(made, ":dan!~dave@old.example CHGHOST ~dan new.example")
    assert [e.occupant.identity for e in hooks.of(OccupantPresence)] == ["~dan@new.example"]
    hooks.events.clear()
    await feed(made, ":irc.example 352 alice #chan ~c carol.example irc.example carol H :0 C")
    assert [e.occupant.identity for e in hooks.of(OccupantPresence)] == ["~c@carol.example"]
    hooks.events.clear()
    await feed(made, ":irc.example 352 alice #chan ~c carol.example irc.example carol H :0 C")
    assert hooks.of(OccupantPresence) == []  # nothing changed: the room is not told
    await feed(made, ":carol!~c@carol.example ACCOUNT carolacct")
    assert hooks.of(OccupantPresence)[-1].occupant.account == "carolacct"


async def test_without_userhost_in_names_the_join_asks_who_before_the_welcome() -> None:
    from transports.irc import membership

    made, conn, hooks = session()
    await membership.join(made, "phone", "#chan", "alice", None)
    await feed(
        made,
        ":alice!~alice@gw.example JOIN #chan",
        ":irc.example 353 alice = #chan :alice @bob",
        ":irc.example 366 alice #chan :End of /NAMES list.",
    )
    assert conn.sent[-1] == "WHO #chan"
    assert hooks.of(OccupantPresence) == []  # the welcome waits for WHO
    await feed(
        made,
        ":irc.example 352 alice #chan ~bob bob.example irc.example bob H@ :0 Bob",
        ":carol!~c@carol.example JOIN #chan",  # joins meanwhile: kept
        ":irc.example 315 alice #chan :End of WHO list.",
    )
    items = {e.occupant.nick: e.occupant.identity for e in hooks.of(OccupantPresence)}
    assert items == {
        "bob": "~bob@bob.example",
        "alice": "~alice@gw.example",
        "carol": "~c@carol.example",
    }
    assert hooks.of(InboundMessage) == []


async def test_the_users_own_who_is_still_shown() -> None:
    made, _conn, hooks = await joined()
    user_commands.raw(made, "WHO bob")
    await feed(
        made,
        ":irc.example 352 alice #chan ~b bob.example irc.example bob H :0 Bob",
        ":irc.example 315 alice bob :End of WHO list.",
    )
    assert len(hooks.of(InboundMessage)) == 2
    assert made.channels["#chan"].members["bob"].identity == "~b@bob.example"


async def test_userhost_in_names_needs_no_who() -> None:
    from transports.irc import membership

    made, conn, hooks = session(frozenset({"userhost-in-names"}))
    await membership.join(made, "phone", "#chan", "alice", None)
    await feed(
        made,
        ":alice!~alice@gw.example JOIN #chan",
        ":irc.example 353 alice = #chan :alice!~alice@gw.example @bob!~b@h",
        ":irc.example 366 alice #chan :End of /NAMES list.",
    )
    assert "WHO #chan" not in conn.sent
    assert len([e for e in hooks.of(OccupantPresence) if e.is_self]) == 1


# -- 2. a taken nick: status 210 -----------------------------------------------------------------


async def test_a_nick_other_than_the_one_asked_is_marked_assigned() -> None:
    made, conn, hooks = session()
    made.nick_chosen = True  # the join that opened the connection asked for bob
    conn.nick = "bob_"
    from transports.irc import membership

    await membership.join(made, "phone", "#chan", "bob", None)
    await feed(
        made,
        ":bob_!~a@gw JOIN #chan",
        ":irc.example 353 bob_ = #chan :bob_ bob",
        ":irc.example 366 bob_ #chan :End",
        ":irc.example 315 bob_ #chan :End",
    )
    own = [e for e in hooks.of(OccupantPresence) if e.is_self]
    assert [(e.occupant.nick, e.nick_assigned) for e in own] == [("bob_", True)]
    others = [e.occupant.nick for e in hooks.of(OccupantPresence) if not e.is_self]
    assert others == ["bob"]


async def test_the_nick_asked_for_is_not_marked_assigned() -> None:
    made, _conn, hooks = session()
    from transports.irc import membership

    await membership.join(made, "phone", "#chan", "alice", None)
    await feed(made, ":alice!~a@gw JOIN #chan", ":irc.example 366 alice #chan :End")
    own = [e for e in hooks.of(OccupantPresence) if e.is_self]
    assert [e.nick_assigned for e in own] == [False]


# -- 3. raw commands wait for the connection; the first join chooses the nick -------------------


async def test_a_raw_command_waits_for_the_connection_and_is_sent_once_registered() -> None:
    made, conn, hooks = session()
    made.connected = False
    user_commands.raw(made, "WHOIS bob", "raw-1", PHONE)
    assert conn.sent == []
    await made._registered()
    assert "WHOIS bob" in conn.sent
    assert hooks.of(DeliveryReport) == []


async def test_a_raw_command_that_never_leaves_comes_back_as_an_error() -> None:
    made, _conn, hooks = session()
    made.connected = False
    user_commands.raw(made, "WHOIS bob", "raw-1", PHONE)
    await pending.give_up(made, "refused")
    [report] = hooks.of(DeliveryReport)
    assert (report.user_jid, report.contact, report.xmpp_id, report.delivered) == (
        PHONE,
        "irc.example",
        "raw-1",
        False,
    )


async def test_the_first_join_changes_the_nick_of_a_connection_opened_without_one() -> None:
    from transports.irc import membership

    made, conn, _hooks = session()  # opened by a raw command, as alice
    await membership.join(made, "phone", "#chan", "zed", None)
    assert conn.sent[:2] == ["NICK zed", "JOIN #chan"]
    await membership.join(made, "phone", "#other", "yves", None)
    assert "NICK yves" not in conn.sent  # only the first join chooses


async def test_a_join_while_connecting_registers_then_asks_for_its_nick() -> None:
    from transports.irc import membership

    made, conn, _hooks = session()
    made.connected = False
    await membership.join(made, "phone", "#chan", "zed", None)
    assert made.options.nick == "zed"  # a reconnect registers as zed
    await made._registered()
    assert conn.sent.index("NICK zed") < conn.sent.index("JOIN #chan")


# -- 4. going away only sends AWAY ---------------------------------------------------------------


async def test_going_away_in_a_room_sends_away_and_replays_nothing() -> None:
    made, conn, hooks = await joined()
    transport = transport_with(made)
    transport.presences[USER] = {"phone": ("", "")}
    await transport.user_presence(UserPresence(PHONE, ROOM, True, "away", "lunch"))
    assert conn.sent == ["AWAY lunch"]
    assert hooks.events == []


# -- 5. private replies come back where the conversation started --------------------------------


async def test_a_reply_comes_from_the_room_when_the_user_wrote_from_the_room() -> None:
    made, _conn, hooks = await joined()
    await made.private("bob", "hi", "pm-1", PHONE, "#chan")
    await feed(made, ":bob!~b@h PRIVMSG alice :hello back")
    [reply] = hooks.of(InboundMessage)
    assert (reply.user_jid, reply.contact, reply.resource, reply.body) == (
        PHONE,  # the resource that wrote from the room
        ROOM,
        "bob",
        "hello back",
    )


async def test_a_reply_comes_from_the_contact_when_the_user_wrote_to_the_contact() -> None:
    made, _conn, hooks = await joined()
    await made.private("bob", "hi", "pm-1", PHONE, "#chan")
    await made.private("bob", "hi again", "pm-2", PHONE)
    await feed(made, ":bob!~b@h PRIVMSG alice :hello back")
    [reply] = hooks.of(InboundMessage)
    assert (reply.contact, reply.resource) == ("bob%irc.example", None)


async def test_the_conversation_follows_a_nick_change() -> None:
    made, _conn, hooks = await joined()
    await made.private("bob", "hi", "pm-1", PHONE, "#chan")
    await feed(made, ":bob!~b@h NICK robert", ":robert!~b@h PRIVMSG alice :hello")
    [reply] = hooks.of(InboundMessage)
    assert (reply.contact, reply.resource) == (ROOM, "robert")


# -- 6. error replies become errors on what the user sent ---------------------------------------


async def test_no_such_nick_is_an_error_on_the_private_message() -> None:
    made, _conn, hooks = await joined()
    await made.private("nobody", "hi", "pm-1", PHONE)
    await feed(made, ":irc.example 401 alice nobody :No such nick/channel")
    [report] = hooks.of(DeliveryReport)
    assert (report.user_jid, report.contact, report.xmpp_id, report.delivered) == (
        PHONE,  # to the full JID: servers drop error messages to a bare JID
        "nobody%irc.example",
        "pm-1",
        False,
    )


async def test_no_such_nick_from_the_room_is_an_error_from_the_room() -> None:
    made, _conn, hooks = await joined()
    await made.private("nobody", "hi", "pm-1", PHONE, "#chan")
    await feed(made, ":irc.example 401 alice nobody :No such nick/channel")
    [error] = hooks.of(RoomError)
    assert (error.room, error.xmpp_id, error.condition, error.nick) == (
        ROOM,
        "pm-1",
        "item-not-found",
        "nobody",
    )


@pytest.mark.parametrize(
    ("numeric", "condition"),
    [("404", "forbidden"), ("477", "forbidden"), ("489", "forbidden")],
)
async def test_a_refused_channel_line_is_an_error_on_that_message(
    numeric: str, condition: str
) -> None:
    made, _conn, hooks = await joined()
    from transports.irc import channel_messages

    await channel_messages.say(made, PHONE, "#chan", "hello", "msg-1", None)
    await feed(made, f":irc.example {numeric} alice #chan :Cannot send to channel")
    [error] = hooks.of(RoomError)
    assert (error.on, error.condition, error.xmpp_id) == ("message", condition, "msg-1")


async def test_a_refused_nick_change_is_an_error_on_the_nick_change() -> None:
    made, conn, hooks = await joined()
    await transport_with(made).change_nick(PHONE, ROOM, "alicia")
    assert conn.sent == ["NICK alicia"]
    await feed(made, ":irc.example 437 alice alicia :Nick/channel is temporarily unavailable")
    [error] = hooks.of(RoomError)
    assert (error.room, error.resources, error.on, error.condition, error.text) == (
        ROOM,
        ("phone",),
        "nick",
        "resource-constraint",
        "Nick/channel is temporarily unavailable",
    )
    assert made.nick_room is None


@pytest.mark.parametrize(
    ("numeric", "condition"), [("482", "forbidden"), ("442", "not-acceptable")]
)
async def test_a_refused_topic_is_an_error_in_the_room(numeric: str, condition: str) -> None:
    made, _conn, hooks = await joined()
    await transport_with(made).set_subject(PHONE, ROOM, "new topic")
    await feed(made, f":irc.example {numeric} alice #chan :You're not channel operator")
    [error] = hooks.of(RoomError)
    assert (error.room, error.condition, error.text) == (
        ROOM,
        condition,
        "You're not channel operator",
    )
    assert hooks.of(InboundMessage) == []


async def test_an_error_answering_a_raw_command_is_an_error_on_it() -> None:
    made, _conn, hooks = await joined()
    user_commands.raw(made, "FOO bar", "raw-1", PHONE)
    await feed(made, ":irc.example 421 alice FOO :Unknown command")
    [report] = hooks.of(DeliveryReport)
    assert (report.user_jid, report.contact, report.xmpp_id, report.reason) == (
        PHONE,
        "irc.example",
        "raw-1",
        "Unknown command",
    )
    await feed(made, ":irc.example 421 alice BAR :Unknown command")
    assert len(hooks.of(DeliveryReport)) == 1  # the next one answers nothing: server words
    assert hooks.of(InboundMessage)[-1].body == "BAR Unknown command"


# -- 7. moderation -------------------------------------------------------------------------------


async def test_a_kick_waits_for_the_servers_echo() -> None:
    made, conn, _hooks = await joined()
    transport = transport_with(made)
    asking = asyncio.create_task(
        transport.moderate(PHONE, ROOM, "carol", role="none", reason="spam")
    )
    await asyncio.sleep(0)
    assert conn.sent == ["KICK #chan carol spam"]
    assert not asking.done()
    await feed(made, ":alice!~a@gw KICK #chan carol :spam")
    await asyncio.wait_for(asking, 1)


@pytest.mark.parametrize(
    ("refusal", "condition"),
    [
        (":irc.example 482 alice #chan :You're not channel operator", "forbidden"),
        (":irc.example 441 alice carol #chan :They aren't on that channel", "item-not-found"),
        (":irc.example 401 alice carol :No such nick", "item-not-found"),
    ],
)
async def test_a_refused_kick_is_the_iqs_error(refusal: str, condition: str) -> None:
    made, _conn, hooks = await joined()
    transport = transport_with(made)
    asking = asyncio.create_task(transport.moderate(PHONE, ROOM, "carol", role="none"))
    await asyncio.sleep(0)
    await feed(made, refusal)
    with pytest.raises(GatewayError) as refused:
        await asyncio.wait_for(asking, 1)
    assert refused.value.condition == condition
    assert hooks.of(RoomError) == [] and hooks.of(InboundMessage) == []


async def test_a_kick_the_server_never_answers_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moderation, "MODERATION_TIMEOUT", 0.05)
    made, _conn, _hooks = await joined()
    with pytest.raises(GatewayError) as refused:
        await transport_with(made).moderate(PHONE, ROOM, "carol", role="none")
    assert refused.value.condition == "remote-server-timeout"
    assert not made.requests.waiting(("KICK", "#chan", "carol"))


@pytest.mark.parametrize(
    ("nick", "role", "affiliation", "sent", "echo"),
    [
        ("carol", "participant", None, "MODE #chan +v carol", "+v carol"),
        ("carol", "moderator", None, "MODE #chan +o carol", "+o carol"),
        ("carol", None, "member", "MODE #chan +v carol", "+v carol"),
        ("carol", None, "admin", "MODE #chan +o carol", "+o carol"),
        ("bob", None, "none", "MODE #chan -o bob", "-o bob"),  # bob is an op, unvoiced
        ("bob", "participant", "member", "MODE #chan +v-o bob bob", "+v-o bob bob"),
        ("carol", None, "outcast", "MODE #chan +b carol!*@*", "+b carol!*@*"),
    ],
)
async def test_roles_and_bans_become_modes_confirmed_by_their_echo(
    nick: str, role: str | None, affiliation: str | None, sent: str, echo: str
) -> None:
    made, conn, hooks = await joined()
    asking = asyncio.create_task(
        transport_with(made).moderate(PHONE, ROOM, nick, role=role, affiliation=affiliation)
    )
    await asyncio.sleep(0)
    assert sent in conn.sent
    assert not asking.done()  # it waits for the server's echo
    for line in conn.sent:
        await feed(made, f":alice!~a@gw {line}")
    await asyncio.wait_for(asking, 1)
    assert f"Mode #chan [{echo}] by alice" in [e.text for e in hooks.of(RoomStatus)]


async def test_a_voiced_nick_made_visitor_loses_voice() -> None:
    made, conn, _hooks = await joined("alice +carol")
    asking = asyncio.create_task(
        transport_with(made).moderate(PHONE, ROOM, "carol", role="visitor")
    )
    await asyncio.sleep(0)
    assert conn.sent == ["MODE #chan -v carol"]
    await feed(made, ":alice!~a@gw MODE #chan -v carol")
    await asyncio.wait_for(asking, 1)


async def test_a_change_that_changes_nothing_does_not_wait_for_an_echo() -> None:
    made, conn, _hooks = await joined()
    asking = asyncio.create_task(
        transport_with(made).moderate(PHONE, ROOM, "bob", role="moderator")
    )
    await asyncio.sleep(0)
    # Sent as biboumi does; the server echoes nothing, so a PING tells when it has answered.
    assert conn.sent == ["MODE #chan +o bob", "PING portway-1"]
    await feed(made, ":irc.example PONG irc.example :portway-1")
    await asyncio.wait_for(asking, 1)


async def test_a_no_op_change_the_server_refuses_is_refused() -> None:
    made, _conn, _hooks = await joined()
    asking = asyncio.create_task(
        transport_with(made).moderate(PHONE, ROOM, "bob", role="moderator")
    )
    await asyncio.sleep(0)
    await feed(
        made,
        ":irc.example 482 alice #chan :You're not channel operator",
        ":irc.example PONG irc.example :portway-1",
    )
    with pytest.raises(GatewayError) as refused:
        await asyncio.wait_for(asking, 1)
    assert refused.value.condition == "forbidden"


async def test_a_ban_uses_the_host_when_it_is_known() -> None:
    made, conn, _hooks = await joined("alice carol!~c@carol.example")
    asking = asyncio.create_task(
        transport_with(made).moderate(PHONE, ROOM, "carol", affiliation="outcast")
    )
    await asyncio.sleep(0)
    assert conn.sent == ["MODE #chan +b *!*@carol.example"]
    await feed(made, ":alice!~a@gw MODE #chan +b *!*@carol.example")
    await asyncio.wait_for(asking, 1)


async def test_moderating_a_nick_not_in_the_room_is_item_not_found() -> None:
    made, conn, _hooks = await joined()
    with pytest.raises(GatewayError) as refused:
        await transport_with(made).moderate(PHONE, ROOM, "nobody", role="none")
    assert refused.value.condition == "item-not-found"
    assert conn.sent == []


# -- 8. /mode typed in the room ------------------------------------------------------------------


async def test_mode_typed_in_the_room_is_a_mode_command() -> None:
    from transports.irc import channel_messages

    made, conn, hooks = await joined()
    await channel_messages.say(made, PHONE, "#chan", "/mode +m", "m-1", None)
    assert conn.sent == ["MODE #chan +m"]
    assert hooks.of(RoomMessage) == []
    await feed(made, ":alice!~a@gw MODE #chan +m")
    assert [e.text for e in hooks.of(RoomStatus)] == ["Mode #chan [+m] by alice"]


async def test_me_stays_and_other_slash_text_goes_as_text() -> None:
    from transports.irc import channel_messages

    made, conn, _hooks = await joined()
    await channel_messages.say(made, PHONE, "#chan", "/me waves", "m-1", None)
    await channel_messages.say(made, PHONE, "#chan", "/join #other", "m-2", None)
    await channel_messages.say(made, PHONE, "#chan", "/model train", "m-3", None)
    assert conn.sent == [
        "PRIVMSG #chan :\x01ACTION waves\x01",
        "PRIVMSG #chan :/join #other",
        "PRIVMSG #chan :/model train",
    ]


# -- 9. channel list ----------------------------------------------------------------------------


async def test_the_channel_list_collects_list_replies_until_the_end() -> None:
    made, conn, hooks = session()
    first = asyncio.create_task(channel_list.list_channels(made))
    second = asyncio.create_task(channel_list.list_channels(made))
    await asyncio.sleep(0)
    assert conn.sent == ["LIST"]  # one LIST at a time
    await feed(
        made,
        ":irc.example 321 alice Channel :Users  Name",
        ":irc.example 322 alice #foo[bar] 12 :\x02Bold\x02 topic",
        ":irc.example 322 alice #quiet 1 :",
        ":irc.example 322 alice notachannel 1 :x",
        ":irc.example 323 alice :End of /LIST",
    )
    expected = [
        RoomListing("#foo[bar]%irc.example", 12, "Bold topic"),
        RoomListing("#quiet%irc.example", 1, ""),
    ]
    assert await asyncio.wait_for(first, 1) == expected
    assert await asyncio.wait_for(second, 1) == expected
    assert hooks.events == []


async def test_the_channel_list_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(channel_list, "MAX_LISTED_CHANNELS", 3)
    made, _conn, _hooks = session()
    asking = asyncio.create_task(channel_list.list_channels(made))
    await asyncio.sleep(0)
    for number in range(10):
        await feed(made, f":irc.example 322 alice #c{number} 1 :")
    await feed(made, ":irc.example 323 alice :End")
    assert len(await asyncio.wait_for(asking, 1)) == 3


async def test_a_list_that_never_ends_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(channel_list, "LIST_TIMEOUT", 0.05)
    made, _conn, _hooks = session()
    with pytest.raises(GatewayError) as refused:
        await channel_list.list_channels(made)
    assert refused.value.condition == "remote-server-timeout"


# -- 10. version of an occupant -----------------------------------------------------------------


async def test_the_version_of_an_occupant_is_asked_by_ctcp() -> None:
    made, conn, hooks = await joined()
    transport = transport_with(made)
    asking = asyncio.create_task(transport.occupant_version(PHONE, ROOM, "bob"))
    again = asyncio.create_task(transport.occupant_version(PHONE, None, "bob%irc.example"))
    await asyncio.sleep(0)
    assert conn.sent == ["PRIVMSG bob \x01VERSION\x01"]
    await feed(made, ":bob!~b@h NOTICE alice :\x01VERSION irssi v1.4.5\x01")
    assert await asyncio.wait_for(asking, 1) == "irssi v1.4.5"
    assert await asyncio.wait_for(again, 1) == "irssi v1.4.5"
    await feed(made, ":bob!~b@h NOTICE alice :\x01VERSION unasked\x01")
    assert hooks.events == []


async def test_a_version_never_answered_is_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(versions, "VERSION_TIMEOUT", 0.05)
    made, _conn, _hooks = await joined()
    with pytest.raises(GatewayError) as refused:
        await versions.ask(made, "bob")
    assert refused.value.condition == "remote-server-timeout"


async def test_requests_waiting_for_the_server_are_bounded() -> None:
    from transports.irc.answers import MAX_WAITING_REQUESTS

    made, _conn, _hooks = await joined()
    waiting = [
        asyncio.create_task(versions.ask(made, f"nick{n}")) for n in range(MAX_WAITING_REQUESTS)
    ]
    await asyncio.sleep(0)
    with pytest.raises(GatewayError) as refused:
        await versions.ask(made, "onetoomany")
    assert refused.value.condition == "resource-constraint"
    made.requests.fail_all("gone")
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, GatewayError) for r in results)


# -- 12. [#chan] notices from services ----------------------------------------------------------


async def test_a_services_notice_about_a_channel_goes_to_that_channel() -> None:
    made, _conn, hooks = await joined()
    await feed(made, ":ChanServ!s@services NOTICE alice :[#chan] Welcome to #chan!")
    [line] = hooks.of(RoomMessage)
    assert (line.room, line.nick, line.body, line.notice) == (
        ROOM,
        "ChanServ",
        "[notice] [#chan] Welcome to #chan!",
        True,
    )
    hooks.events.clear()
    await feed(made, ":ChanServ!s@services NOTICE alice :[#elsewhere] Welcome")
    assert hooks.of(RoomMessage) == [] and len(hooks.of(InboundMessage)) == 1


# -- 13. a multi-line message is echoed line by line --------------------------------------------


async def test_a_multi_line_message_is_echoed_as_irc_carries_it() -> None:
    from transports.irc import channel_messages

    made, conn, hooks = await joined()
    await channel_messages.say(made, PHONE, "#chan", "one\ntwo\n\nthree", "m-1", "o-1")
    assert conn.sent == ["PRIVMSG #chan one", "PRIVMSG #chan two", "PRIVMSG #chan three"]
    echoes = [(e.body, e.xmpp_id, e.origin_id) for e in hooks.of(RoomMessage)]
    assert echoes == [("one", "m-1", "o-1"), ("two", None, None), ("three", None, None)]


async def test_a_one_line_message_is_echoed_as_sent() -> None:
    from transports.irc import channel_messages

    made, _conn, hooks = await joined()
    await channel_messages.say(made, PHONE, "#chan", "hello  there", "m-1", "o-1")
    echoes = [(e.body, e.xmpp_id, e.origin_id) for e in hooks.of(RoomMessage)]
    assert echoes == [("hello  there", "m-1", "o-1")]


# -- 15. kicks carry who and why ------------------------------------------------------------------


async def test_a_kick_carries_its_actor_and_reason() -> None:
    made, _conn, hooks = await joined()
    await feed(made, ":bob!~b@h KICK #chan carol :flooding")
    [kick] = hooks.of(OccupantPresence)
    assert (kick.occupant.nick, kick.kicked, kick.actor, kick.reason, kick.available) == (
        "carol",
        True,
        "bob",
        "flooding",
        False,
    )


# -- 16. typing in a room -------------------------------------------------------------------------


async def test_typing_is_a_tagmsg_only_with_message_tags() -> None:
    made, conn, _hooks = await joined(caps=frozenset({"message-tags"}))
    transport = transport_with(made)
    await transport.room_chat_state(PHONE, ROOM, "composing")
    await transport.room_chat_state(PHONE, ROOM, "paused")
    await transport.chat_state(PHONE, "bob%irc.example", "active")
    assert conn.sent == [
        "@+typing=active TAGMSG #chan",
        "@+typing=paused TAGMSG #chan",
        "@+typing=done TAGMSG bob",
    ]
    plain, plain_conn, _ = await joined()
    await transport_with(plain).room_chat_state(PHONE, ROOM, "composing")
    assert plain_conn.sent == []


# -- 14. the server JID's "connected as" goes to its subscribers only ---------------------------


async def test_connected_as_goes_only_to_users_subscribed_to_the_server() -> None:
    from mappings.contacts import ContactMapping
    from transports.events import ContactPresence

    delivered: list[Any] = []
    subscribed = ContactMapping("irc", "bob@example.org", "irc.example", subscription="both")
    rows = {("bob@example.org", "irc.example"): subscribed}

    async def get(_transport: str, user_jid: str, address: str) -> ContactMapping | None:
        return rows.get((user_jid, address))

    async def deliver(event: Any) -> bool:
        delivered.append(event)
        return True

    store = SimpleNamespace(contacts=SimpleNamespace(get=get))
    host = SimpleNamespace(domain="irc.example.org", store=store, deliver=deliver)
    settings = IrcSettings.model_validate(
        {"jid": "irc.example.org", "secret": "a-component-secret"}
    )
    transport = IrcTransport(settings, cast(Any, host))
    for user in (USER, "bob@example.org"):
        await transport.deliver_event(ContactPresence(user, "irc.example", True, "", "connected"))
    await transport.deliver_event(ContactPresence(USER, "carol%irc.example", True))
    assert [(e.user_jid, e.contact) for e in delivered] == [
        ("bob@example.org", "irc.example"),
        (USER, "carol%irc.example"),
    ]


async def test_a_version_asked_of_a_missing_nick_fails_at_once() -> None:
    made, _conn, hooks = await joined()
    await made.private("ghost", "hi", "pm-1", PHONE)
    asking = asyncio.create_task(versions.ask(made, "ghost"))
    await asyncio.sleep(0)
    await feed(made, ":irc.example 401 alice ghost :No such nick")
    with pytest.raises(GatewayError) as refused:
        await asyncio.wait_for(asking, 1)
    assert refused.value.condition == "item-not-found"
    await feed(made, ":irc.example 401 alice ghost :No such nick")  # the other one's
    assert [r.xmpp_id for r in hooks.of(DeliveryReport)] == ["pm-1"]
