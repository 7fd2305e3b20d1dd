"""History limits on join (XEP-0045 §7.2.15): what the transport is asked, what is sent."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

from slixmpp import Message
from support.room_fakes import GW, incoming, make_router

from component import room_render
from component.room_history import HistoryLimit, parse_limit, select
from transports.rooms import RoomMessage, RoomSubject

NS_MUC = "http://jabber.org/protocol/muc"
USER = "alice@example.org"
ROOM = "#test%irc.example.net"
NOW = 1_700_000_000.0


def limit(attrs: str) -> HistoryLimit:
    return parse_limit(ET.fromstring(f"<x xmlns='{NS_MUC}'><history {attrs}/></x>"), NOW)


def test_limits_are_read_and_bad_values_ignored() -> None:
    assert limit("maxstanzas='5'") == HistoryLimit(maxstanzas=5)
    assert limit("maxchars='300'") == HistoryLimit(maxchars=300)
    assert limit("seconds='60'") == HistoryLimit(since=NOW - 60)
    assert limit("since='2023-11-14T22:13:20Z'") == HistoryLimit(since=1_700_000_000.0)
    assert limit("maxstanzas='-1' maxchars='x' since='yesterday'") == HistoryLimit()
    assert parse_limit(ET.fromstring(f"<x xmlns='{NS_MUC}'/>"), NOW) == HistoryLimit()
    # Both seconds and since: the later start wins (every limit applies).
    assert limit("seconds='60' since='2000-01-01T00:00:00Z'").since == NOW - 60


def test_zero_means_none_and_the_transport_is_asked_for_none() -> None:
    for attrs in ("maxchars='0'", "seconds='0'", "maxstanzas='0'"):
        assert limit(attrs).none_wanted, attrs
        assert limit(attrs).transport_count() == 0, attrs
    assert limit("maxstanzas='7' maxchars='500'").transport_count() == 7
    assert limit("seconds='60'").transport_count() is None


def test_selection_keeps_the_newest_run_that_fits_every_limit() -> None:
    items = [(NOW - 300, 100), (NOW - 200, 100), (NOW - 100, 100), (NOW - 10, 100)]
    assert select(HistoryLimit(), items) == 0
    assert select(HistoryLimit(maxstanzas=2), items) == 2
    assert select(HistoryLimit(maxchars=250), items) == 2
    assert select(HistoryLimit(maxchars=99), items) == 4
    assert select(HistoryLimit(since=NOW - 150), items) == 2
    assert select(HistoryLimit(maxstanzas=3, since=NOW - 250, maxchars=1000), items) == 1
    assert select(HistoryLimit(maxchars=0), items) == 4
    assert select(HistoryLimit(maxchars=1000), []) == 0


def history_event(body: str, age: float) -> RoomMessage:
    return RoomMessage(
        USER, ROOM, ("laptop",), "bob", body, f"id-{body[:8]}", timestamp=time.time() - age
    )


async def join(history: str) -> tuple[object, object, object]:
    router, rooms, component = make_router()
    pres = incoming(
        component,
        f"<presence from='{USER}/laptop' to='{ROOM}@{GW}/alice'>"
        f"<x xmlns='{NS_MUC}'>{history}</x></presence>",
    )
    assert await router.handle_presence(pres)  # type: ignore[arg-type]
    return router, rooms, component


async def test_seconds_and_maxchars_are_applied_to_the_join_history() -> None:
    router, rooms, component = await join("<history seconds='120' maxstanzas='10'/>")
    [call] = rooms.called("join_room")  # type: ignore[attr-defined]
    assert call[3] == 10  # the transport reads no more than asked
    for body, age in (("old", 600), ("recent", 60), ("newest", 5)):
        room_render.render_message(router, history_event(body, age))  # type: ignore[arg-type]
    assert component.take() == []  # type: ignore[attr-defined]  # held until the join ends
    room_render.render_subject(router, RoomSubject(USER, ROOM, ("laptop",), "topic"))  # type: ignore[arg-type]
    sent = component.take()  # type: ignore[attr-defined]
    assert [m["body"] for m in sent if isinstance(m, Message) and m["body"]] == [
        "recent",
        "newest",
    ]
    assert isinstance(sent[-1], Message) and sent[-1]["subject"] == "topic"


async def test_maxchars_counts_whole_stanzas() -> None:
    # Each stanza is about 510 characters: 200 of text, the rest its envelope.
    router, _rooms, component = await join("<history maxchars='800'/>")
    for body in ("a" * 200, "b" * 200, "c" * 200):
        room_render.render_message(router, history_event(body, 30))  # type: ignore[arg-type]
    room_render.render_subject(router, RoomSubject(USER, ROOM, ("laptop",), ""))  # type: ignore[arg-type]
    bodies = [m["body"] for m in component.take() if isinstance(m, Message) and m["body"]]  # type: ignore[attr-defined]
    assert bodies == ["c" * 200]  # not 600 characters of text: 1,000 of XML


async def test_a_live_message_ends_the_hold_and_is_never_held() -> None:
    router, _rooms, component = await join("<history seconds='120'/>")
    room_render.render_message(router, history_event("recent", 60))  # type: ignore[arg-type]
    live = RoomMessage(USER, ROOM, ("laptop",), "bob", "live", "id-live")
    room_render.render_message(router, live)  # type: ignore[arg-type]
    assert [m["body"] for m in component.take()] == ["recent", "live"]  # type: ignore[attr-defined]


async def test_maxchars_zero_asks_the_transport_for_nothing() -> None:
    _router, rooms, _component = await join("<history maxchars='0'/>")
    [call] = rooms.called("join_room")  # type: ignore[attr-defined]
    assert call[3] == 0


async def test_a_join_without_limits_sends_history_as_it_comes() -> None:
    router, rooms, component = await join("")
    [call] = rooms.called("join_room")  # type: ignore[attr-defined]
    assert call[3] is None
    room_render.render_message(router, history_event("old", 6000))  # type: ignore[arg-type]
    assert [m["body"] for m in component.take()] == ["old"]  # type: ignore[attr-defined]
