"""Typing notifications (XEP-0085) both ways, in rooms and to contacts.

From the user: a message that carries only a chat state (``<composing/>`` and no body)
becomes ``RoomService.room_chat_state`` when sent to a room the resource is in, or
``Transport.chat_state`` when sent to a contact. slixmpp raises its "message" event only for
messages with a body, so these have a handler of their own.

To the user: :class:`ContactChatState` and :class:`RoomChatState` events become bodiless
messages with the state and a ``<no-store/>`` hint (XEP-0334): typing is not worth an
archive's or an offline store's room.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any, cast

from slixmpp import Message
from slixmpp.xmlstream import StanzaBase
from slixmpp.xmlstream.handler import CoroutineCallback
from slixmpp.xmlstream.matcher.base import MatcherBase

from component.room_namespaces import NS_CHATSTATES, NS_HINTS
from transports.base import GatewayError
from transports.events import ContactChatState
from transports.rooms import RoomChatState

if TYPE_CHECKING:
    from component.muc import MucRouter
    from component.xmpp import GatewayComponent

log = logging.getLogger(__name__)

STATES = frozenset({"active", "composing", "paused", "inactive", "gone"})


def state_of(msg: StanzaBase) -> str | None:
    """The chat state a message carries, if any."""
    for child in msg.xml:
        namespace, _, name = child.tag[1:].partition("}")
        if namespace == NS_CHATSTATES and name in STATES:
            return name
    return None


class _OnlyChatState(MatcherBase):
    """Messages with a chat state and no body (those with a body are messages, and go as
    such)."""

    def match(self, xml: StanzaBase) -> bool:
        return isinstance(xml, Message) and not xml["body"] and state_of(xml) is not None


def install(component: GatewayComponent) -> None:
    async def handle(msg: Message) -> None:
        await from_user(component, msg)

    component.register_handler(
        CoroutineCallback("chat-state", _OnlyChatState(None), cast(Any, handle))
    )


async def from_user(component: GatewayComponent, msg: Message) -> None:
    """A user's chat state, to the room or the contact it is sent to; dropped when neither
    takes it (typing is never worth an error)."""
    state = state_of(msg)
    to = msg["to"]
    if state is None or msg["type"] == "error" or not to.user:
        return
    if component.occupancy.is_room_traffic(msg):
        return  # an XMPP room one of our contacts sits in, telling who types there
    if not component.host.is_allowed(msg["from"].bare):
        return
    sender = str(msg["from"])
    try:
        router = component.muc
        room = router.room_of(to) if router is not None else None
        if router is not None and room is not None:
            if not to.resource and (sender, room) in router.joined:
                await router.rooms.room_chat_state(sender, room, state)
            return
        await component.network.chat_state(sender, component.network.parse_address(to.user), state)
    except GatewayError as exc:
        log.debug("%s: chat state from %s not passed on: %s", component.domain, sender, exc.text)


def render_contact(component: GatewayComponent, event: ContactChatState) -> None:
    msg = component.make_message(
        mto=event.user_jid, mfrom=component.contact_jid(event.contact, event.resource), mtype="chat"
    )
    _mark(msg, event.state)
    msg.send()


def render_room(router: MucRouter, event: RoomChatState) -> None:
    sender = router.room_jid(event.room, event.nick)
    for resource in event.resources:
        msg = router.component.make_message(
            mto=f"{event.user_jid}/{resource}", mfrom=sender, mtype="groupchat"
        )
        _mark(msg, event.state)
        msg.send()


def _mark(msg: Message, state: str) -> None:
    ET.SubElement(msg.xml, f"{{{NS_CHATSTATES}}}{state if state in STATES else 'active'}")
    ET.SubElement(msg.xml, f"{{{NS_HINTS}}}no-store")
