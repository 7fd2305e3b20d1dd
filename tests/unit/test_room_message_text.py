"""Room messages written as text (room_render.py) say what slixmpp's stanza objects said."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from slixmpp import Message
from slixmpp.componentxmpp import ComponentXMPP
from support.room_fakes import GW, make_router

from component import room_render
from component.message_refs import with_refers
from component.outgoing import OutgoingStream, send_written
from transports.events import Refers
from transports.rooms import RoomMessage

SID = "urn:xmpp:sid:0"
DELAY = "urn:xmpp:delay"
USER = "alice@example.org"
ROOM = "#test%irc.example.net"


def shape(element: ET.Element) -> Any:
    """An element as comparable data; children in any order (their order means nothing)."""
    children = sorted((shape(child) for child in element), key=repr)
    return (element.tag, dict(element.attrib), (element.text or "").strip(), children)


def built(component: ComponentXMPP, event: RoomMessage, resource: str) -> Message:
    """The stanza as slixmpp's objects built it before (the reference)."""
    room_bare = f"{event.room}@{GW}"
    msg = component.make_message(
        mto=f"{event.user_jid}/{resource}", mfrom=f"{room_bare}/{event.nick}", mtype="groupchat"
    )
    msg["id"] = event.xmpp_id or event.stanza_id
    msg["body"] = with_refers(msg.xml, event.refers, event.body.replace("\x07", ""))
    if event.origin_id:
        ET.SubElement(msg.xml, f"{{{SID}}}origin-id").set("id", event.origin_id)
    if event.stanza_id:
        sid = ET.SubElement(msg.xml, f"{{{SID}}}stanza-id")
        sid.set("id", event.stanza_id)
        sid.set("by", room_bare)
    if event.timestamp is not None:
        delay = ET.SubElement(msg.xml, f"{{{DELAY}}}delay")
        delay.set("stamp", room_render.stamp(event.timestamp))
        delay.set("from", room_bare)
    return msg


def test_a_room_message_as_text_is_the_stanza_slixmpp_built() -> None:
    router, _rooms, component = make_router()
    events = [
        RoomMessage(USER, ROOM, ("laptop", "phone"), "bob", 'a <b> & "c"\x07', "s1", "m1", "o1"),
        RoomMessage(USER, ROOM, ("laptop",), "bob", "fixed", None, "m2", None,
                    refers=Refers("correction", "m1")),
        RoomMessage(USER, ROOM, ("laptop",), "b'o\"b", "", "s3", "m3", None,
                    refers=Refers("reaction", "m1", reactions=("👍",))),
        RoomMessage(USER, ROOM, ("laptop",), "bob", "old", "s4", None, None, timestamp=1.5e9),
    ]  # fmt: skip
    for event in events:
        room_render.render_message(router, event)
        sent = component.take()
        assert len(sent) == len(event.resources)
        for resource, msg in zip(event.resources, sent, strict=True):
            assert shape(msg.xml) == shape(built(component, event, resource).xml)


def test_our_stream_queues_the_text_and_another_stream_a_stanza() -> None:
    class Recording(ComponentXMPP):
        def __init__(self) -> None:
            super().__init__(GW, "secret")
            self.queued: list[Any] = []

        def send(self, data: Any, use_filters: bool = True) -> None:
            self.queued.append(data)

    class Ours(OutgoingStream, Recording):
        pass

    text = (
        f'<message type="groupchat" to="{USER}/x" from="{ROOM}@{GW}/bob"><body>hi</body></message>'
    )
    ours, theirs = Ours(), Recording()
    send_written(ours, text)
    send_written(theirs, text)
    assert ours.queued == [text]  # cleaned when written (send_raw), in its place in the queue
    [stanza] = theirs.queued
    assert isinstance(stanza, Message) and stanza["body"] == "hi" and stanza["type"] == "groupchat"
