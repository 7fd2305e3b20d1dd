"""Inbound messages written as text say exactly what slixmpp's stanza objects would."""

from __future__ import annotations

import datetime
import uuid
import xml.etree.ElementTree as ET
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from slixmpp import ComponentXMPP
from slixmpp.xmlstream.tostring import tostring

from component.outgoing import xml_safe
from component.render import message_xml, with_stable_ids
from transports.events import InboundMessage, new_stanza_id
from transports.rooms import RoomMessage

DOMAIN = "irc.example.org"
SENDER = f"bob%irc.localhost@{DOMAIN}/phone"
TO = "alice@example.org"

_component = ComponentXMPP(DOMAIN, "secret", "127.0.0.1", 5347)
for _plugin in ("xep_0066", "xep_0172", "xep_0203", "xep_0359"):
    _component.register_plugin(_plugin)


def with_slixmpp(event: InboundMessage, msg_id: str) -> str:
    """How send_message used to build it: slixmpp stanza objects."""
    msg: Any = _component.make_message(
        mto=TO, mfrom=SENDER, mbody=event.body, msubject=event.subject, mtype=event.message_type
    )
    msg["id"] = msg_id
    if event.thread:
        msg["thread"] = event.thread
    if event.oob_urls and event.oob_urls[0]:  # slixmpp would write an empty <x/> for ""
        msg["oob"]["url"] = event.oob_urls[0]
    if event.nick:
        msg["nick"]["nick"] = event.nick
    if event.timestamp is not None:
        msg["delay"]["stamp"] = datetime.datetime.fromtimestamp(event.timestamp, datetime.UTC)
        msg["delay"]["from"] = DOMAIN
    if event.remote_id:
        msg["stanza_id"]["id"] = event.remote_id
        msg["stanza_id"]["by"] = DOMAIN
    msg["origin_id"]["id"] = msg_id
    return tostring(msg.xml, xmlns=_component.default_ns, stream=_component, top_level=True)


def tree(xml: str) -> Any:
    """A comparable form: tag, attributes, text, children (as the receiving server sees it)."""

    def walk(element: ET.Element) -> Any:
        return (
            element.tag,
            sorted(element.attrib.items()),
            element.text or "",
            [walk(child) for child in element],
        )

    # Parsed in the stream's default namespace, as the server parses it; what XML cannot
    # carry is dropped from both on the way out (component/outgoing.py).
    wrapped = f'<stream xmlns="jabber:component:accept">{xml_safe(xml)}</stream>'
    return walk(ET.fromstring(wrapped)[0])


texts = st.text(max_size=40)
optional_texts = st.none() | texts
#: Ids on one line: slixmpp leaves line breaks in attributes raw (a parser folds them into
#: spaces), where ours are escaped and kept.
ids = st.text(st.characters(blacklist_characters="\r\n\t"), min_size=1, max_size=20)


@settings(max_examples=300, deadline=None)
@given(
    body=texts,
    subject=optional_texts,
    thread=optional_texts,
    url=st.none() | texts,
    nick=optional_texts,
    timestamp=st.none() | st.floats(min_value=0, max_value=4e9),
    remote_id=st.none() | ids,
    message_type=st.sampled_from(["chat", "normal", "headline", "groupchat"]),
    msg_id=ids,
)
def test_text_matches_slixmpp(**values: Any) -> None:
    url = values.pop("url")
    msg_id = values.pop("msg_id")
    event = InboundMessage(TO, "bob", oob_urls=() if url is None else (url,), **values)
    ours = message_xml(event, to=TO, sender=SENDER, msg_id=msg_id, domain=DOMAIN)
    assert tree(ours) == tree(with_slixmpp(event, msg_id))


def test_markup_in_text_stays_text() -> None:
    event = InboundMessage(TO, "bob", '</body><iq type="set"/>&amp; "quoted"', nick='a"b<c')
    xml = message_xml(event, to=TO, sender=SENDER, msg_id='x" onload="y\nz', domain=DOMAIN)
    message = ET.fromstring(xml)
    assert message.get("id") == 'x" onload="y\nz'
    assert message.findtext("body") == '</body><iq type="set"/>&amp; "quoted"'
    assert [child.tag for child in message] == [
        "body",
        "{http://jabber.org/protocol/nick}nick",
        "{urn:xmpp:sid:0}origin-id",
    ]


def test_ids_are_chosen_once_when_the_event_is_accepted() -> None:
    """The stored event carries its id: every send of it writes the same id and origin-id."""
    accepted = with_stable_ids(InboundMessage(TO, "bob", "hi"))
    assert accepted.xmpp_id
    assert with_stable_ids(accepted) is accepted  # a stored event keeps the id it has
    sends = [
        message_xml(accepted, to=TO, sender=SENDER, msg_id=accepted.xmpp_id, domain=DOMAIN)
        for _ in range(2)
    ]
    assert sends[0] == sends[1]
    origin = ET.fromstring(sends[0]).find("{urn:xmpp:sid:0}origin-id")
    assert origin is not None and origin.get("id") == accepted.xmpp_id
    # A transport's own id (a mail's) is kept; a room line gets one unless it has an archive id.
    assert with_stable_ids(InboundMessage(TO, "bob", "hi", xmpp_id="mail-1")).xmpp_id == "mail-1"
    line = RoomMessage(TO, "#c%irc", ("phone",), "bob", "hi")
    assert with_stable_ids(line).xmpp_id
    archived = RoomMessage(TO, "#c%irc", ("phone",), "bob", "hi", stanza_id="s1")
    assert with_stable_ids(archived) is archived


def test_new_ids_are_uuid_shaped_and_distinct() -> None:
    ids = [new_stanza_id() for _ in range(1000)]
    assert len(set(ids)) == len(ids)
    assert all(str(uuid.UUID(value)) == value for value in ids)
