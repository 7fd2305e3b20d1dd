"""Occupant presences as XEP-0045 shows them: real JIDs, 210, kicks and bans with who and why."""

from __future__ import annotations

from slixmpp.xmlstream import StanzaBase
from support.room_fakes import GW, incoming, make_router

from component import room_render
from transports.rooms import Occupant, OccupantPresence, RoomMessage

MUC_USER = "{http://jabber.org/protocol/muc#user}"
SID = "{urn:xmpp:sid:0}"
USER = "alice@example.org"
ROOM = "#test%irc.example.net"


def item(stanza: StanzaBase) -> dict[str, str]:
    found = stanza.xml.find(f"{MUC_USER}x/{MUC_USER}item")
    assert found is not None
    return dict(found.attrib)


def codes(stanza: StanzaBase) -> list[str]:
    return [s.get("code", "") for s in stanza.xml.iter(f"{MUC_USER}status")]


def render(**kwargs: object) -> StanzaBase:
    router, _rooms, component = make_router()
    occupant = kwargs.pop("occupant", Occupant("bob"))
    event = OccupantPresence(USER, ROOM, ("laptop",), occupant, **kwargs)  # type: ignore[arg-type]
    room_render.render_presence(router, event)
    [sent] = component.take()
    return sent


def test_an_occupant_with_an_address_has_its_contact_jid_with_the_host_as_resource() -> None:
    bob = Occupant("bob", address="bob%irc.example.net", identity="~bob@host.example")
    pres = render(occupant=bob)
    assert item(pres)["jid"] == f"bob%irc.example.net@{GW}/~bob@host.example"
    # A nick change says the same JID, with the new nick.
    gone = render(occupant=bob, available=False, new_nick="bobby")
    assert item(gone)["jid"] == f"bob%irc.example.net@{GW}/~bob@host.example"
    assert item(gone)["nick"] == "bobby"


def test_an_occupant_without_an_address_has_no_jid() -> None:
    assert "jid" not in item(render(occupant=Occupant("bob")))


def test_status_210_when_the_network_chose_the_nick() -> None:
    assigned = render(occupant=Occupant("alice_"), is_self=True, nick_assigned=True)
    assert codes(assigned) == ["100", "110", "210"]
    asked = render(occupant=Occupant("alice"), is_self=True)
    assert "210" not in codes(asked)
    # Only on the self-presence while in the room.
    other = render(occupant=Occupant("bob_"), nick_assigned=True)
    assert "210" not in codes(other)


def test_a_kick_names_the_actor_and_the_reason() -> None:
    kicked = render(
        occupant=Occupant("bob"), available=False, kicked=True, actor="op", reason="behave"
    )
    assert codes(kicked) == ["307"]
    x_item = kicked.xml.find(f"{MUC_USER}x/{MUC_USER}item")
    assert x_item is not None
    actor = x_item.find(f"{MUC_USER}actor")
    assert actor is not None and actor.get("nick") == "op"
    assert x_item.findtext(f"{MUC_USER}reason") == "behave"
    assert item(kicked)["role"] == "none"


def test_a_kick_without_actor_or_reason_has_neither_element() -> None:
    kicked = render(occupant=Occupant("bob"), available=False, kicked=True)
    x_item = kicked.xml.find(f"{MUC_USER}x/{MUC_USER}item")
    assert x_item is not None and list(x_item) == []


def test_a_ban_is_301_with_outcast_actor_and_reason() -> None:
    banned = render(
        occupant=Occupant("bob"), available=False, banned=True, actor="op", reason="spam"
    )
    assert codes(banned) == ["301"]
    assert item(banned)["affiliation"] == "outcast"
    x_item = banned.xml.find(f"{MUC_USER}x/{MUC_USER}item")
    assert x_item is not None
    assert x_item.find(f"{MUC_USER}actor").get("nick") == "op"  # type: ignore[union-attr]
    assert x_item.findtext(f"{MUC_USER}reason") == "spam"


def test_the_self_kick_keeps_110_and_ends_the_join() -> None:
    router, _rooms, component = make_router()
    router.joined[(f"{USER}/laptop", ROOM)] = "alice"
    event = OccupantPresence(
        USER, ROOM, ("laptop",), Occupant("alice"), available=False, is_self=True, kicked=True
    )
    room_render.render_presence(router, event)
    [pres] = component.take()
    assert codes(pres) == ["110", "307"]
    assert router.joined == {}


async def test_the_echo_keeps_stanza_ids_of_other_entities_only() -> None:
    router, _rooms, component = make_router()
    sent = incoming(
        component,
        f"<message type='groupchat' id='m1' from='{USER}/laptop' to='{ROOM}@{GW}'>"
        "<body>hi</body><origin-id xmlns='urn:xmpp:sid:0' id='o1'/>"
        f"<stanza-id xmlns='urn:xmpp:sid:0' id='fake' by='{ROOM}@{GW}'/>"
        "<stanza-id xmlns='urn:xmpp:sid:0' id='theirs' by='someother@example.org'/>"
        "<stanza-id xmlns='urn:xmpp:sid:0' id='nobody'/></message>",
    )
    await router.handle_message(sent)  # type: ignore[arg-type]
    echo = RoomMessage(USER, ROOM, ("laptop", "phone"), "alice", "hi", "s1", "m1", "o1")
    room_render.render_message(router, echo)
    for msg in component.take():
        ids = {(s.get("id"), s.get("by")) for s in msg.xml.iter(f"{SID}stanza-id")}
        assert ids == {("s1", f"{ROOM}@{GW}"), ("theirs", "someother@example.org")}
    # Only on that echo: another message with the same id later has none of them.
    room_render.render_message(router, echo)
    for msg in component.take():
        assert {s.get("id") for s in msg.xml.iter(f"{SID}stanza-id")} == {"s1"}


def test_the_occupants_account_is_said_in_the_status() -> None:
    def presence(status: str, account: str | None, available: bool = True) -> OccupantPresence:
        return OccupantPresence(
            "alice@example.org",
            "#r",
            ("res",),
            Occupant("bob", account=account),
            available=available,
            status=status,
        )

    assert room_render.occupant_status(presence("", "robert")) == "logged in as robert"
    assert room_render.occupant_status(presence("lunch", "robert")) == "lunch (logged in as robert)"
    assert room_render.occupant_status(presence("lunch", None)) == "lunch"
    assert room_render.occupant_status(presence("bye", "robert", available=False)) == "bye"
