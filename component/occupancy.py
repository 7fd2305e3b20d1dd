"""Contacts as occupants of the XMPP side's MUC rooms (a hook posting into ops@conference…).

The component joins a room the first time a contact posts there, and remembers it per stream:
after a reconnect, or after a kick, the next post joins again. A join and the groupchat
message sent right after it on the same stream are processed in order by the server, so the
post does not wait for the room's self-presence.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from slixmpp import JID, Message, Presence

from component.message_refs import with_refers
from transports.events import RoomLeave, RoomPost

if TYPE_CHECKING:
    from component.xmpp import GatewayComponent

log = logging.getLogger(__name__)

MUC_NS = "http://jabber.org/protocol/muc"
#: status codes on our own unavailable presence that mean we are out of the room
REMOVED = {"301", "307", "321", "322", "332"}


class RoomOccupancy:
    def __init__(self, component: GatewayComponent) -> None:
        self.component = component
        # (room bare JID, occupant bare JID) -> nick we joined with
        self.joined: dict[tuple[str, str], str] = {}
        component.add_event_handler("disconnected", lambda _reason: self.joined.clear())

    def post(self, event: RoomPost) -> None:
        occupant = self.component.contact_jid(event.contact)
        key = (event.room_jid, occupant.bare)
        if key not in self.joined:
            self._join(event.room_jid, occupant, event.nick)
        message = self.component.make_message(mto=event.room_jid, mfrom=occupant, mtype="groupchat")
        message["body"] = with_refers(message.xml, event.refers, event.body)
        if event.remote_id:
            # The same id every time it is sent (after a crash too), so copies can be dropped.
            message["id"] = event.remote_id
            message["origin_id"]["id"] = event.remote_id
        message.send()

    def leave(self, event: RoomLeave) -> None:
        occupant = self.component.contact_jid(event.contact)
        nick = self.joined.pop((event.room_jid, occupant.bare), event.nick)
        self.component.send_presence(
            pto=JID(f"{event.room_jid}/{nick}"), pfrom=occupant, ptype="unavailable"
        )

    def _join(self, room: str, occupant: JID, nick: str) -> None:
        presence = self.component.make_presence(pto=JID(f"{room}/{nick}"), pfrom=occupant)
        muc = presence.xml.makeelement(f"{{{MUC_NS}}}x", {})
        history = muc.makeelement(f"{{{MUC_NS}}}history", {"maxchars": "0"})
        muc.append(history)
        presence.xml.append(muc)
        presence.send()
        self.joined[(room, occupant.bare)] = nick

    def is_room_traffic(self, stanza: Message | Presence) -> bool:
        """Whether a stanza comes from a room one of our contacts has joined."""
        return (stanza["from"].bare, stanza["to"].bare) in self.joined

    def on_room_presence(self, presence: Presence) -> None:
        """Forget a room we were removed from, or could not join; retry a taken nick once."""
        key = (presence["from"].bare, presence["to"].bare)
        nick = self.joined.get(key)
        if nick is None or presence["from"].resource != nick:
            return
        if presence["type"] == "error":
            self.joined.pop(key, None)
            if presence["error"]["condition"] == "conflict" and not nick.endswith("_"):
                self._join(key[0], presence["to"], nick + "_")
            else:
                log.warning(
                    "%s could not join %s: %s",
                    key[1],
                    key[0],
                    presence["error"]["condition"],
                )
            return
        codes = {child.get("code", "") for child in presence.xml.iter(f"{{{MUC_NS}#user}}status")}
        if presence["type"] == "unavailable" and (codes & REMOVED or not codes):
            self.joined.pop(key, None)
