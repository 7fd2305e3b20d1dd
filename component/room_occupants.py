"""IQs to an occupant (``room/nick``) or to a nick's contact JID: self-ping and version.

- Self-ping (XEP-0410): a client pings its own occupant JID to learn whether it is still in
  the room. slixmpp's ping plugin would answer every ping, so a client that dropped out
  never noticed; here a resource the router does not count in the room is told
  ``not-acceptable``, as §4 asks.
- Software version (XEP-0092): asked of the person behind the nick (IRC: CTCP VERSION)
  through ``RoomService.occupant_version``. slixmpp's version plugin would answer for every
  JID with Portway's own version; only the gateway's own JID does that now.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from slixmpp import Iq
from slixmpp.xmlstream import StanzaBase

from component.room_namespaces import NS_PING, NS_VERSION
from transports.base import GatewayError

if TYPE_CHECKING:
    from component.muc import MucRouter


def answer(router: MucRouter, stanza: StanzaBase) -> StanzaBase | None:
    """The incoming filter: None for a ping or version query answered here, else ``stanza``."""
    if not isinstance(stanza, Iq) or stanza["type"] != "get" or not stanza["to"].user:
        return stanza
    ping = stanza.xml.find(f"{{{NS_PING}}}ping") is not None
    version = stanza.xml.find(f"{{{NS_VERSION}}}query") is not None
    if not (ping or version):
        return stanza
    try:
        room = router.room_of(stanza["to"])
    except GatewayError:
        return stanza
    nick = stanza["to"].resource
    if ping:
        if room is None or not nick:
            return stanza  # a contact or the room itself: the ping plugin answers
        if (str(stanza["from"]), room) in router.joined:
            stanza.reply(clear=True).send()
        else:
            error(stanza, GatewayError("you are not in this room", "not-acceptable"))
        return None
    if not router.component.host.is_allowed(stanza["from"].bare):
        error(stanza, GatewayError("your server may not use this gateway", "forbidden", "auth"))
    elif room is not None and not nick:
        error(
            stanza, GatewayError("a room has no software; ask an occupant", "service-unavailable")
        )
    else:
        router.run_soon(_version(router, stanza, room, nick))
    return None


async def _version(router: MucRouter, iq: Iq, room: str | None, nick: str) -> None:
    try:
        if room is None:
            nick = router.component.network.parse_address(iq["to"].user)
            if "%" not in nick:  # a server's JID: no one there to ask
                raise GatewayError("a server has no software to tell", "service-unavailable")
        text = await router.rooms.occupant_version(str(iq["from"]), room, nick)
    except GatewayError as exc:
        error(iq, exc)
        return
    # As biboumi: the whole CTCP reply is the name ("irssi v1.4.5 - running on Linux"),
    # since no client writes it in a form that splits into name and version reliably.
    reply = iq.reply(clear=True)
    query = ET.SubElement(reply.xml, f"{{{NS_VERSION}}}query")
    ET.SubElement(query, f"{{{NS_VERSION}}}name").text = text.strip() or "unknown"
    ET.SubElement(query, f"{{{NS_VERSION}}}version")  # required by XEP-0092; in the name
    reply.send()


def error(iq: Iq, exc: GatewayError) -> None:
    reply = iq.reply(clear=True)
    reply["type"] = "error"
    reply["error"]["type"] = exc.error_type
    reply["error"]["condition"] = exc.condition
    reply["error"]["text"] = exc.text
    reply.send()
