"""Events from transports into stanzas: the only way back from a foreign network to XMPP."""

from __future__ import annotations

import dataclasses
import datetime
from typing import TYPE_CHECKING, Any

from slixmpp import JID
from slixmpp.plugins.xep_0082 import format_datetime

from component import chat_states
from component.message_refs import refers_parts
from component.xml_text import attr as _attr
from component.xml_text import text as _text
from transports.events import (
    ContactChatState,
    ContactPresence,
    DeliveryReport,
    InboundMessage,
    new_stanza_id,
)
from transports.rooms import RoomMessage

if TYPE_CHECKING:
    from component.xmpp import GatewayComponent


def with_stable_ids(event: Any) -> Any:
    """``event`` with the ids its stanzas will carry, chosen once, when it is accepted.

    An event is stored with these ids, so every send of it (at once, or again from the queue
    after a crash or a reconnect) carries the same ``id`` and origin-id, and a client or an
    archive can tell the copy from a new message. Ids chosen at send time were new each time.
    """
    if isinstance(event, InboundMessage) and not event.xmpp_id:
        return dataclasses.replace(event, xmpp_id=new_stanza_id())
    if isinstance(event, RoomMessage) and not (event.xmpp_id or event.stanza_id):
        return dataclasses.replace(event, xmpp_id=new_stanza_id())
    return event


def send_event(component: GatewayComponent, event: Any) -> None:
    if isinstance(event, InboundMessage):
        send_message(component, event)
    elif isinstance(event, ContactPresence):
        send_presence(component, event)
    elif isinstance(event, DeliveryReport):
        send_report(component, event)
    elif isinstance(event, ContactChatState):
        chat_states.render_contact(component, event)
    else:
        raise TypeError(f"no renderer for event {type(event).__name__}")


def send_message(component: GatewayComponent, event: InboundMessage) -> None:
    # Written as text rather than built as a slixmpp stanza: messages are most of what a busy
    # gateway sends, and building the stanza objects was the largest cost of sending them.
    # It goes through the same send queue, so it keeps its place among the other stanzas.
    # no contact: a word from the gateway itself (a message set aside, …)
    sender = component.contact_jid(event.contact or None, event.resource)
    muc = component.muc
    component.send(
        message_xml(
            event,
            to=str(JID(event.user_jid)),
            sender=str(sender),
            msg_id=event.xmpp_id or new_stanza_id(),
            domain=component.domain,
            # from room/nick: a private message in a room (XEP-0045 §7.5)
            occupant=bool(event.resource) and muc is not None and muc.room_of(sender) is not None,
        )
    )


def message_xml(
    event: InboundMessage, *, to: str, sender: str, msg_id: str, domain: str, occupant: bool = False
) -> str:
    """An inbound message as a ``<message/>`` of the component stream.

    It says what slixmpp's stanza objects would (``tests/unit/test_render.py`` holds it to
    that): empty texts but the subject are left out, one out-of-band URL (with its file's
    name), what the message does to an earlier one (``message_refs.py``), the delay and
    stanza id stamped by the gateway's domain. The origin-id (XEP-0359) repeats ``msg_id``:
    the gateway is where this stanza starts, and a copy sent again carries the same one.
    From a room occupant (``occupant``), it carries the empty muc#user ``<x/>`` that marks
    a private message in a room (XEP-0045 §7.5), so clients keep it in the room's window.
    """
    parts = [
        f"<message type={_attr(event.message_type)} to={_attr(to)} from={_attr(sender)}"
        f" id={_attr(msg_id)}>"
    ]
    body, refers = refers_parts(event.refers, event.body) if event.refers else (event.body, "")
    if body:
        parts.append(f"<body>{_text(body)}</body>")
    if event.subject is not None:  # even empty: in a room, that clears the subject
        parts.append(f"<subject>{_text(event.subject)}</subject>")
    if event.thread:
        parts.append(f"<thread>{_text(event.thread)}</thread>")
    if event.oob_urls and event.oob_urls[0]:
        desc = f"<desc>{_text(event.oob_desc)}</desc>" if event.oob_desc else ""
        parts.append(f'<x xmlns="jabber:x:oob"><url>{_text(event.oob_urls[0])}</url>{desc}</x>')
    parts.append(refers)
    if event.nick:
        parts.append(f'<nick xmlns="http://jabber.org/protocol/nick">{_text(event.nick)}</nick>')
    if event.timestamp is not None:
        stamp = format_datetime(datetime.datetime.fromtimestamp(event.timestamp, datetime.UTC))
        parts.append(f'<delay xmlns="urn:xmpp:delay" stamp="{stamp}" from={_attr(domain)} />')
    if event.remote_id:
        parts.append(
            f'<stanza-id xmlns="urn:xmpp:sid:0" id={_attr(event.remote_id)} by={_attr(domain)} />'
        )
    if occupant:
        parts.append('<x xmlns="http://jabber.org/protocol/muc#user" />')
    parts.append(f'<origin-id xmlns="urn:xmpp:sid:0" id={_attr(msg_id)} />')
    parts.append("</message>")
    return "".join(parts)


def send_presence(component: GatewayComponent, event: ContactPresence) -> None:
    component.contacts_shown.note(event)
    presence = component.make_presence(
        pto=event.user_jid,
        pfrom=component.contact_jid(event.contact),
        ptype=None if event.available else "unavailable",
        pshow=event.show or None,
        pstatus=event.status or None,
    )
    presence.send()


def send_report(component: GatewayComponent, event: DeliveryReport) -> None:
    """A receipt (XEP-0184) when delivered; otherwise an error stanza on the message's id."""
    sender = component.contact_jid(event.contact)
    if event.delivered:
        receipt = component.make_message(mto=event.user_jid, mfrom=sender)
        receipt["receipt"] = event.xmpp_id
        receipt.send()
        return
    error = component.make_message(mto=event.user_jid, mfrom=sender, mtype="error")
    error["id"] = event.xmpp_id
    error["error"]["type"] = "cancel"
    error["error"]["condition"] = event.condition
    error["error"]["text"] = event.reason or "the message could not be delivered"
    error.send()
