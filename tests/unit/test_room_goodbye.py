"""At shutdown: rooms closed with 332 first, the transports' room goodbyes dropped, then
contacts and the gateway offline."""

from __future__ import annotations

from types import SimpleNamespace

from slixmpp import Presence
from support.room_fakes import GW, make_router

from component import goodbye, render
from transports.events import ContactPresence
from transports.rooms import Occupant, OccupantPresence, RoomMessage, RoomStatus

MUC_USER = "{http://jabber.org/protocol/muc#user}"
ROOM = "#test%irc.example.net"


def test_each_joined_resource_gets_332_and_later_room_presences_are_dropped() -> None:
    router, _rooms, component = make_router()
    router.joined[("alice@example.org/laptop", ROOM)] = "alice"
    router.joined[("alice@example.org/phone", ROOM)] = "alice"
    router.joined[("bob@example.org/pc", "#other%irc.example.net")] = "bob"
    goodbye.leave_rooms(router)
    sent = component.take()
    assert sorted(str(p["to"]) for p in sent) == [
        "alice@example.org/laptop",
        "alice@example.org/phone",
        "bob@example.org/pc",
    ]
    for pres in sent:
        assert isinstance(pres, Presence) and pres["type"] == "unavailable"
        codes = {s.get("code") for s in pres.xml.iter(f"{MUC_USER}status")}
        assert codes == {"110", "332"}
    assert str(sent[0]["from"]) == f"{ROOM}@{GW}/alice"
    assert router.joined == {}
    # IRC's quit while the transport stops: nothing more about the room's people.
    self_left = OccupantPresence(
        "alice@example.org", ROOM, ("laptop",), Occupant("alice"), available=False, is_self=True
    )
    assert router.render(self_left)
    assert router.render(RoomStatus("alice@example.org", ROOM, ("laptop",), "disconnected"))
    assert component.take() == []
    # A message still goes (it is not about the room's end).
    router.render(RoomMessage("alice@example.org", ROOM, ("laptop",), "bob", "last words"))
    assert len(component.take()) == 1


def test_room_presences_go_while_the_gateway_runs() -> None:
    router, _rooms, component = make_router()
    router.render(OccupantPresence("alice@example.org", ROOM, ("laptop",), Occupant("bob")))
    assert len(component.take()) == 1


async def test_contacts_shown_available_and_the_gateway_go_offline() -> None:
    _router, _rooms, component = make_router()
    user = "alice@example.org"
    for contact, available in (
        ("irc.example.net", True),
        ("bob%irc.example.net", True),
        ("carol%irc.example.net", True),
        ("carol%irc.example.net", False),
    ):
        render.send_presence(component, ContactPresence(user, contact, available))  # type: ignore[arg-type]
    component.take()

    async def registrations(_name: str) -> list[SimpleNamespace]:
        return [SimpleNamespace(user_jid="reg@example.org")]

    component.host.store = SimpleNamespace(  # type: ignore[attr-defined]
        registrations=SimpleNamespace(list=registrations)
    )
    component.network.name = "irc"  # type: ignore[attr-defined]
    component.online[user] = {"laptop"}
    await goodbye.say_goodbye(component)  # type: ignore[arg-type]
    sent = [(str(p["from"]), str(p["to"]), p["type"]) for p in component.take()]
    assert sent == [
        (f"bob%irc.example.net@{GW}", user, "unavailable"),
        (f"irc.example.net@{GW}", user, "unavailable"),
        (GW, user, "unavailable"),
        (GW, "reg@example.org", "unavailable"),
    ]
