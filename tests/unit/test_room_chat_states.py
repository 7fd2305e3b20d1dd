"""Typing (XEP-0085) both ways, in rooms and to contacts; invitations to a bare nick."""

from __future__ import annotations

from slixmpp import Message
from support.room_fakes import GW, incoming, make_router

from component import chat_states, render
from component.room_invites import Invitations
from transports.events import ContactChatState
from transports.rooms import RoomChatState

USER = "alice@example.org"
ROOM = "#test%irc.example.net"
CHATSTATES = "http://jabber.org/protocol/chatstates"


async def test_typing_in_a_joined_room_goes_to_the_room_service() -> None:
    router, rooms, component = make_router()
    router.joined[(f"{USER}/laptop", ROOM)] = "alice"
    msg = incoming(
        component,
        f"<message type='groupchat' from='{USER}/laptop' to='{ROOM}@{GW}'>"
        f"<composing xmlns='{CHATSTATES}'/></message>",
    )
    assert chat_states._OnlyChatState(None).match(msg)
    await chat_states.from_user(component, msg)  # type: ignore[arg-type]
    assert rooms.called("room_chat_state") == [(f"{USER}/laptop", ROOM, "composing")]


async def test_typing_from_a_resource_not_in_the_room_is_dropped() -> None:
    _router, rooms, component = make_router()
    msg = incoming(
        component,
        f"<message type='groupchat' from='{USER}/phone' to='{ROOM}@{GW}'>"
        f"<paused xmlns='{CHATSTATES}'/></message>",
    )
    await chat_states.from_user(component, msg)  # type: ignore[arg-type]
    assert rooms.called("room_chat_state") == []
    assert component.take() == []  # and no error: typing is never worth one


async def test_typing_to_a_contact_goes_to_the_transport() -> None:
    _router, _rooms, component = make_router()
    msg = incoming(
        component,
        f"<message type='chat' from='{USER}/laptop' to='bob%irc.example.net@{GW}'>"
        f"<active xmlns='{CHATSTATES}'/></message>",
    )
    await chat_states.from_user(component, msg)  # type: ignore[arg-type]
    assert component.network.chat_states == [(f"{USER}/laptop", "bob%irc.example.net", "active")]


def test_only_bodiless_chat_states_are_taken_by_the_chat_state_handler() -> None:
    _router, _rooms, component = make_router()
    with_body = incoming(
        component,
        f"<message type='chat' from='{USER}/laptop' to='bob%irc.example.net@{GW}'>"
        f"<body>hi</body><active xmlns='{CHATSTATES}'/></message>",
    )
    plain = incoming(
        component, f"<message type='chat' from='{USER}/laptop' to='bob%irc.example.net@{GW}'/>"
    )
    matcher = chat_states._OnlyChatState(None)
    assert not matcher.match(with_body) and not matcher.match(plain)


def test_inbound_typing_is_a_bodiless_unstored_message() -> None:
    router, _rooms, component = make_router()
    chat_states.render_room(
        router, RoomChatState(USER, ROOM, ("laptop", "phone"), "bob", "composing")
    )
    render.send_event(
        component,  # type: ignore[arg-type]
        ContactChatState(USER, "bob%irc.example.net", "paused", "~bob@host"),
    )
    room_laptop, room_phone, contact = component.take()
    for msg in (room_laptop, room_phone, contact):
        assert isinstance(msg, Message) and not msg["body"]
        assert msg.xml.find("{urn:xmpp:hints}no-store") is not None
    assert str(room_laptop["from"]) == f"{ROOM}@{GW}/bob" and room_laptop["type"] == "groupchat"
    assert str(room_phone["to"]) == f"{USER}/phone"
    assert room_laptop.xml.find(f"{{{CHATSTATES}}}composing") is not None
    assert str(contact["from"]) == f"bob%irc.example.net@{GW}/~bob@host"
    assert contact.xml.find(f"{{{CHATSTATES}}}paused") is not None


def test_the_router_renders_room_typing() -> None:
    router, _rooms, component = make_router()
    assert router.render(RoomChatState(USER, ROOM, ("laptop",), "bob", "paused"))
    assert len(component.take()) == 1


async def test_an_invitation_to_a_bare_nick_invites_that_nick_on_the_rooms_server() -> None:
    router, rooms, component = make_router()
    invitations: Invitations = router.invitations
    for to in ("bob", f"carol%irc.example.net@{GW}"):
        msg = incoming(
            component,
            f"<message from='{USER}/laptop' to='{ROOM}@{GW}' id='i1'>"
            "<x xmlns='http://jabber.org/protocol/muc#user'>"
            f"<invite to='{to}'/></x></message>",
        )
        await invitations.on_mediated(msg)  # type: ignore[arg-type]
    assert [args[2] for args in rooms.called("invite")] == [
        "bob%irc.example.net",
        "carol%irc.example.net",
    ]
    assert component.take() == []  # no error
    # Another domain is still refused.
    msg = incoming(
        component,
        f"<message from='{USER}/laptop' to='{ROOM}@{GW}' id='i2'>"
        "<x xmlns='http://jabber.org/protocol/muc#user'>"
        "<invite to='bob@example.org'/></x></message>",
    )
    await invitations.on_mediated(msg)  # type: ignore[arg-type]
    [refused] = component.take()
    assert refused["type"] == "error"
