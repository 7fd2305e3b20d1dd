"""Events from transports into stanzas: the only way back from a foreign network to XMPP."""

from __future__ import annotations

import datetime
import itertools
import secrets
from typing import TYPE_CHECKING, Any, cast

from transports.base import ContactPresence, DeliveryReport, InboundMessage

if TYPE_CHECKING:
    from component.xmpp import GatewayComponent


_ID_PREFIX = secrets.token_hex(6)
_ID_COUNTER = itertools.count()


def new_id() -> str:
    """A stanza id unique to this process run (random prefix), cheaper than uuid4 per message."""
    return f"{_ID_PREFIX}-{next(_ID_COUNTER)}"


def send_event(component: GatewayComponent, event: Any) -> None:
    if isinstance(event, InboundMessage):
        send_message(component, event)
    elif isinstance(event, ContactPresence):
        send_presence(component, event)
    elif isinstance(event, DeliveryReport):
        send_report(component, event)
    else:
        raise TypeError(f"no renderer for event {type(event).__name__}")


def send_message(component: GatewayComponent, event: InboundMessage) -> None:
    msg = component.make_message(
        mto=event.user_jid,
        mfrom=component.contact_jid(event.contact, event.resource),
        mbody=event.body,
        msubject=event.subject,
        mtype=cast(Any, event.message_type),
    )
    msg["id"] = event.xmpp_id or new_id()
    if event.thread:
        msg["thread"] = event.thread
    if event.oob_urls:
        msg["oob"]["url"] = event.oob_urls[0]
    if event.nick:
        msg["nick"]["nick"] = event.nick
    if event.timestamp is not None:
        msg["delay"]["stamp"] = datetime.datetime.fromtimestamp(event.timestamp, datetime.UTC)
        msg["delay"]["from"] = component.domain
    if event.remote_id:
        msg["stanza_id"]["id"] = event.remote_id
        msg["stanza_id"]["by"] = component.domain
    msg.send()


def send_presence(component: GatewayComponent, event: ContactPresence) -> None:
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
    error["error"]["condition"] = "undefined-condition"
    error["error"]["text"] = event.reason or "the message could not be delivered"
    error.send()
