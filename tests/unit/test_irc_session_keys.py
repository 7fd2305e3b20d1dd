"""One user's IRC session: lookup keys by the server's CASEMAPPING, refused echoes, away.

A fake connection records what the session writes; the session is fed the lines a server
sends, and the events it hands the component are checked (issue 11, IRC-3).
"""

from __future__ import annotations

from support.irc_fakes import USER, enter, feed, session

from transports.events import DeliveryReport, event_from_dict
from transports.irc import answers, channel_messages, membership
from transports.irc.casemap import ASCII, RFC1459
from transports.irc.handlers import HANDLERS
from transports.rooms import OccupantPresence, RoomError, RoomMessage


async def test_an_ascii_server_keeps_brackets_and_braces_apart() -> None:
    """ngIRCd says CASEMAPPING=ascii: #a[b] and #a{b} are two channels, and the room JID
    stays the name the user joined with, whatever case the server writes."""
    made, _conn, hooks = session(casemapping=ASCII)
    await membership.join(made, "phone", "#a[b]", "alice", None)
    assert list(made.channels) == ["#a{b}"]  # rfc1459 until the server says otherwise
    await feed(made, ":irc.example 005 alice CASEMAPPING=ascii CHANTYPES=# :are supported")
    assert list(made.channels) == ["#a[b]"]
    await feed(
        made,
        ":alice!~alice@gw.example JOIN #A[b]",
        ":irc.example 353 alice = #A[b] :alice Bob[away]",
        ":irc.example 366 alice #A[b] :End of /NAMES list.",
        ":irc.example 315 alice #A[b] :End of WHO list.",
    )
    assert made.channels["#a[b]"].member("bob[AWAY]") is not None
    assert made.channels["#a[b]"].member("bob{away}") is None
    hooks.events.clear()
    await feed(made, ":carol!c@h PRIVMSG #a{b} :elsewhere", ":carol!c@h PRIVMSG #A[B] :here")
    said = hooks.of(RoomMessage)
    assert [(m.room, m.body) for m in said] == [("#a[b]%irc.example", "here")]


async def test_an_rfc1459_server_folds_brackets() -> None:
    made, _conn, hooks = session()
    await enter(made, "#a[b]")
    await feed(made, ":irc.example 005 alice CASEMAPPING=rfc1459 :are supported")
    hooks.events.clear()
    await feed(made, ":carol!c@h PRIVMSG #A{B} :same channel")
    assert [(m.room, m.body) for m in hooks.of(RoomMessage)] == [
        ("#a[b]%irc.example", "same channel")
    ]


async def test_a_refused_line_does_not_give_its_ids_to_the_next_echo() -> None:
    """With echo-message, a 404 forgets the refused line: the next echo keeps its own ids."""
    made, _conn, hooks = session(caps=frozenset({"echo-message"}))
    await enter(made, "#chan")
    await channel_messages.say(made, f"{USER}/phone", "#chan", "refused", "id-1", None)
    await channel_messages.say(made, f"{USER}/phone", "#chan", "accepted", "id-2", None)
    hooks.events.clear()
    await feed(
        made,
        ":irc.example 404 alice #chan :Cannot send to channel",
        ":alice!~alice@gw.example PRIVMSG #chan :accepted",
    )
    error = hooks.of(RoomError)[-1]
    assert (error.on, error.condition) == ("message", "forbidden")
    echo = hooks.of(RoomMessage)[-1]
    assert (echo.body, echo.xmpp_id) == ("accepted", "id-2")


async def test_away_stays_shown_through_later_presences() -> None:
    """away-notify's show is kept by a later presence of the member (a voice here)."""
    made, _conn, hooks = session(caps=frozenset({"away-notify"}))
    await enter(made, "#chan")
    hooks.events.clear()
    await feed(made, ":bob!b@h AWAY :lunch", ":irc.example MODE #chan +v bob")
    shows = [(p.occupant.nick, p.show) for p in hooks.of(OccupantPresence)]
    assert shows == [("bob", "away"), ("bob", "away")]
    hooks.events.clear()
    await feed(made, ":bob!b@h AWAY", ":irc.example MODE #chan -v bob")
    assert [p.show for p in hooks.of(OccupantPresence)] == ["", ""]


def test_one_table_names_every_handled_line() -> None:
    """The lines answers.py and users.py handle are named in handlers.HANDLERS, only there."""
    for command in ("PONG", "321", "322", "323", "352", "315", "CHGHOST", "ACCOUNT", "005"):
        assert command in HANDLERS, command
    assert not hasattr(answers, "HANDLERS")
    assert "404" not in HANDLERS  # answers.refusal takes it, with the other refusals


def test_a_report_stored_before_conditions_existed_still_loads() -> None:
    """Events wait in the inbound queue across upgrades: a DeliveryReport stored without
    ``condition`` comes back with the generic one."""
    stored = {
        "kind": "report",
        "fields": {
            "user_jid": USER,
            "contact": "bob%irc.example",
            "xmpp_id": "m1",
            "delivered": False,
            "reason": "no such nick",
        },
    }
    back = event_from_dict(stored)
    assert back == DeliveryReport(USER, "bob%irc.example", "m1", False, "no such nick")
    assert back.condition == "undefined-condition"


async def test_other_isupport_lines_leave_the_keys_alone() -> None:
    """After a reconnect the new connection says rfc1459 until its CASEMAPPING line: a 005
    without it must not fold an ascii server's keys back (#a[b] and #a{b} would merge)."""
    made, conn, _hooks = session(casemapping=ASCII)
    await feed(made, ":irc.example 005 alice CASEMAPPING=ascii :are supported")
    await enter(made, "#a[b]")
    await enter(made, "#a{b}")
    conn.casemapping = RFC1459  # a new connection, before its CASEMAPPING line
    await feed(made, ":irc.example 005 alice CHANTYPES=# PREFIX=(ov)@+ :are supported")
    assert sorted(made.channels) == ["#a[b]", "#a{b}"]
