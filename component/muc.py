"""MUC semantics (XEP-0045) for transports whose contacts can be group chats (IRC).

The router sits between the component and a transport with ``supports_rooms``: it turns
room stanzas (joins, leaves, groupchat messages, nick changes, subjects, private messages
to occupants) into :class:`~transports.rooms.RoomService` calls, keeps which of the user's
resources is in which room, and hands the transport's room events to the module that
renders them. The rest lives beside it:
- room_render.py: room events as presences and messages, one copy per resource;
- room_invites.py: invitations, both ways;
- room_queries.py: disco and MAM on room JIDs;
- room_history.py: the limits a join puts on its history (XEP-0045 §7.2.15);
- room_occupants.py: self-ping and version on occupants; room_admin.py: moderation;
- room_directory.py: a server's room list, paged; room_stanza_ids.py: ids kept on echoes;
- chat_states.py (typing) and goodbye.py (rooms closed at shutdown), beside the router;
- room_namespaces.py: the namespaces they share.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

from slixmpp import JID, Message, Presence
from slixmpp.xmlstream import StanzaBase

from component import chat_states, room_admin, room_occupants, room_queries, room_render
from component.message_refs import refers_of, shared_link
from component.room_directory import RoomDirectory
from component.room_gone import gone_resources, is_gone
from component.room_history import HistoryHold, HistoryLimit, parse_limit
from component.room_invites import Invitations, is_invitation
from component.room_members import RoomMembers
from component.room_namespaces import NS_MAM, NS_MUC, NS_PING, NS_SID
from component.room_posts import is_plain_room_post
from component.room_stanza_ids import ForeignStanzaIds
from transports.base import GatewayError, UserPresence
from transports.rooms import (
    OccupantPresence,
    RoomChatState,
    RoomError,
    RoomInvite,
    RoomMessage,
    RoomService,
    RoomStatus,
    RoomSubject,
)

log = logging.getLogger(__name__)
#: slixmpp's own log of what it reads, kept for the room posts taken before it sees them
slixmpp_log = logging.getLogger("slixmpp.xmlstream.xmlstream")


class MucRouter:
    def __init__(self, component: Any, transport: RoomService) -> None:
        self.component = component
        self.rooms = transport
        #: (full JID, room) → the nick this resource has in the room
        self.joined: dict[tuple[str, str], str] = {}
        self.invitations = Invitations(self)
        self.history = HistoryHold()
        self.directory = RoomDirectory(self)
        self.foreign_ids = ForeignStanzaIds()
        self.members = RoomMembers()
        #: the gateway is stopping: rooms were closed for every resource (goodbye.py)
        self.closing = False
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def domain(self) -> str:
        return str(self.component.boundjid.bare)

    def setup(self) -> None:
        # Clients that look for MUC services find rooms here (biboumi says the same).
        network = self.component.network
        disco = self.component.plugin["xep_0030"]
        disco.add_identity(
            category="conference",
            itype=network.gateway_type,
            name=network.settings.name or f"Portway {network.title}",
            jid=JID(self.domain),
        )
        for feature in (NS_PING, NS_MAM):  # what its rooms answer, said of the service too
            disco.add_feature(feature, jid=JID(self.domain))
        self.component.add_event_handler("session_start", self._on_attached)
        self.component.add_event_handler("message_error", self._on_bounce)
        self.component.add_filter("in", self._answer_query)
        # A subject change has no body, so slixmpp raises only "groupchat_subject" for it;
        # invitations seldom have one: they have events of their own (xep_0045, xep_0249).
        self.component.add_event_handler("groupchat_subject", self._on_subject)
        self.component.register_plugin("xep_0249")  # also advertises jabber:x:conference
        self.component.add_event_handler("groupchat_invite", self.invitations.on_mediated)
        self.component.add_event_handler("groupchat_direct_invite", self.invitations.on_direct)

    def _answer_query(self, stanza: StanzaBase) -> StanzaBase | None:
        """IQs to rooms, occupants and servers' JIDs, answered before slixmpp's plugins
        (which would answer pings and versions for any JID); None when answered.

        A plain room post (:func:`is_plain_room_post`) is raised here as the "message"
        event, as slixmpp's "IM" handler raises it, without matching it against every
        handler first."""
        if is_plain_room_post(stanza):
            slixmpp_log.debug("RECV: %s", stanza)
            self.component.event("message", stanza)
            return None
        for answer in (room_queries.answer, room_occupants.answer, room_admin.answer):
            if answer(self, stanza) is None:
                return None
        return self.directory.answer(stanza)

    def run_soon(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in its own task, kept until it ends."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_subject(self, msg: Message) -> None:
        # With a body, it is a message too, and the "message" event takes it.
        if not msg["body"] and self.allowed(msg):
            await self.handle_message(msg)

    def allowed(self, msg: Message) -> bool:
        if msg["type"] == "error":
            return False
        if self.component.host.is_allowed(msg["from"].bare):
            return True
        self.error_message(msg, "forbidden", "your server may not use this gateway", "auth")
        return False

    def contact_features(self, address: str) -> tuple[str, ...]:
        """What a contact's disco#info adds for rooms: XEP-0249, where it can be invited."""
        return self.invitations.contact_features(address)

    # -- JIDs ----------------------------------------------------------------------------------

    def room_of(self, jid: JID) -> str | None:
        if jid.domain != self.domain or not jid.user:
            return None
        return self.rooms.parse_room(jid.user)

    def room_jid(self, room: str, nick: str = "") -> str:
        bare = f"{self.rooms.format_room(room)}@{self.domain}"
        return f"{bare}/{nick}" if nick else bare

    # -- stanzas from users --------------------------------------------------------------------

    async def handle_message(self, msg: Message) -> bool:
        if is_invitation(msg):
            return True  # the invitation events take it, body or not: the body is a fallback
        to, mtype = msg["to"], msg["type"]  # each read builds its value anew: once each
        try:
            room = self.room_of(to)
        except GatewayError as exc:
            self.error_message(msg, exc.condition, exc.text, exc.error_type)
            return True
        if room is None:
            if mtype == "groupchat":
                self.error_message(msg, "item-not-found", "not a room")
                return True
            return False
        if mtype == "error":
            return True
        sender = str(msg["from"])
        nick = to.resource
        body, refers = refers_of(msg.xml, shared_link(msg.xml, msg["body"]))
        try:
            if nick:
                if body or refers:
                    await self.rooms.send_private(
                        sender, room, nick, body, msg["id"] or None, refers
                    )
                return True
            if mtype != "groupchat":
                raise GatewayError("send groupchat messages to a room", "bad-request", "modify")
            if msg.xml.find(f"{{{msg.namespace}}}subject") is not None and not msg["body"]:
                await self.rooms.set_subject(sender, room, msg["subject"])
                return True
            if body or refers:
                origin = msg.xml.find(f"{{{NS_SID}}}origin-id")
                origin_id = origin.get("id") if origin is not None else None
                self.foreign_ids.remember(msg, to.bare)
                await self.rooms.send_room_message(
                    sender, room, body, msg["id"] or None, origin_id, refers
                )
        except GatewayError as exc:
            self.error_message(msg, exc.condition, exc.text, exc.error_type)
        return True

    # -- presence from users -------------------------------------------------------------------

    async def handle_presence(self, pres: Presence) -> bool:
        try:
            room = self.room_of(pres["to"])
        except GatewayError as exc:
            if pres["type"] not in ("unavailable", "error"):
                self.error_presence(pres, exc.condition, exc.text, exc.error_type)
            return True
        if room is None:
            return False
        sender = str(pres["from"])
        nick = pres["to"].resource
        ptype = pres["type"]
        key = (sender, room)
        try:
            if ptype == "unavailable":
                self.joined.pop(key, None)
                self.invitations.last.pop((pres["from"].bare, room), None)
                await self.rooms.leave_room(sender, room, pres["status"])
            elif ptype in ("available", "") or ptype in ("away", "xa", "dnd", "chat"):
                if not nick:
                    raise GatewayError(
                        "join with a nick: room@domain/nick", "jid-malformed", "modify"
                    )
                current = self.joined.get(key)
                # The MUC element makes it a join even for a resource we count in the room:
                # its client lost track (its server restarted, say, and we never heard of
                # that session's end), and a join is owed occupants, history and subject.
                muc_x = pres.xml.find(f"{{{NS_MUC}}}x")
                joining = muc_x is not None
                if current is not None and current != nick:
                    await self.rooms.change_nick(sender, room, nick)  # joined follows the echo
                if current is None or joining:
                    self.joined[key] = nick
                    limit = HistoryLimit() if muc_x is None else parse_limit(muc_x, time.time())
                    self.history.start(key, limit)
                    await self.rooms.join_room(
                        sender, room, nick, limit.transport_count(), pres["show"], pres["status"]
                    )
                elif current == nick:  # a new show or status: AWAY only, as biboumi
                    await self.rooms.user_presence(
                        UserPresence(sender, room, True, pres["show"] or "", pres["status"] or "")
                    )
        except GatewayError as exc:
            if ptype != "unavailable" and self.joined.get(key) == nick:
                self.joined.pop(key, None)
                self.history.release(key)
            self.error_presence(pres, exc.condition, exc.text, exc.error_type)
        return True

    async def _on_bounce(self, msg: Message) -> None:
        """A room stanza to one of the user's resources came back: that resource is gone."""
        try:
            room = self.room_of(msg["to"])
        except GatewayError:
            return
        key = (str(msg["from"]), room) if room is not None else None
        if key is not None and key in self.joined and is_gone(msg):
            await self._occupant_gone(*key)

    def _on_attached(self, _event: Any) -> None:
        if self.joined:  # attached again: the XMPP server may have restarted meanwhile
            self.run_soon(self.check_occupants())

    async def check_occupants(self) -> None:
        """After the link to the XMPP server comes back, the resources that are gone leave
        (see :func:`component.room_gone.gone_resources`)."""
        full_jids = {jid for jid, _ in self.joined}
        for full_jid in await gone_resources(self.component, self.domain, full_jids):
            for jid, room in [key for key in self.joined if key[0] == full_jid]:
                await self._occupant_gone(jid, room)

    async def _occupant_gone(self, full_jid: str, room: str) -> None:
        """A resource that went away without a word (its server died): out of the room, as
        if it had left. A persistent room stays joined on the other side."""
        log.info("%s is gone from %s; it leaves the room", full_jid, room)
        self.joined.pop((full_jid, room), None)
        await self.rooms.leave_room(full_jid, room, "")

    # -- events from the transport -------------------------------------------------------------

    def render(self, event: Any) -> bool:
        if self.closing and isinstance(
            event, (OccupantPresence, RoomStatus, RoomSubject, RoomError, RoomChatState)
        ):
            return True  # the rooms were closed (332): the transports' goodbyes say no more
        if isinstance(event, OccupantPresence):
            room_render.render_presence(self, event)
        elif isinstance(event, RoomMessage):
            room_render.render_message(self, event)
        elif isinstance(event, RoomSubject):
            room_render.render_subject(self, event)
        elif isinstance(event, RoomStatus):
            room_render.render_status(self, event)
        elif isinstance(event, RoomChatState):
            chat_states.render_room(self, event)
        elif isinstance(event, RoomInvite):
            self.invitations.render(event)
        elif isinstance(event, RoomError) and event.on == "invite":
            self.invitations.render_refusal(event)
        elif isinstance(event, RoomError):
            room_render.render_error(self, event)
        else:
            return False
        return True

    # -- errors answering the user's stanzas ---------------------------------------------------

    def error_message(self, msg: Message, condition: str, text: str, etype: str = "cancel") -> None:
        reply = msg.reply(clear=False)
        reply["id"] = msg["id"]  # slixmpp gives replies a new id; an error must answer this one
        reply["type"] = "error"
        reply["error"]["type"] = etype
        reply["error"]["condition"] = condition
        reply["error"]["text"] = text
        reply.send()

    def error_presence(self, pres: Presence, condition: str, text: str, etype: str) -> None:
        reply = self.component.make_presence(pto=pres["from"], pfrom=pres["to"], ptype="error")
        reply["error"]["type"] = etype
        reply["error"]["condition"] = condition
        reply["error"]["text"] = text
        reply.send()
