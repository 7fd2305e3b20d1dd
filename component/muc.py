"""MUC semantics (XEP-0045) for transports whose contacts can be group chats (IRC).

The router sits between the component and a transport with ``supports_rooms``: it turns
room stanzas (joins, leaves, groupchat messages, nick changes, subjects, invitations,
private messages to occupants) into :class:`~transports.rooms.RoomService` calls, and the
transport's room events into presences and messages, one copy per resource that is in the
room. Disco and MAM on room JIDs are answered here too, through an incoming filter so that
they do not depend on the order in which disco handlers were registered.

Invitations go both ways. From the user: a mediated invitation (XEP-0045 §7.8.2, sent to
the room) or a direct one (XEP-0249, sent to the contact) becomes ``RoomService.invite``;
the foreign side may refuse it later, as a :class:`RoomError` with ``on="invite"``, which
comes back as an error answering the invitation's id. To the user: see ``_render_invite``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from slixmpp import JID, Iq, Message, Presence
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.jid import InvalidJID
from slixmpp.xmlstream import StanzaBase

from transports.base import GatewayError
from transports.rooms import (
    ArchiveQuery,
    OccupantPresence,
    RoomError,
    RoomInvite,
    RoomMessage,
    RoomService,
    RoomStatus,
    RoomSubject,
)

log = logging.getLogger(__name__)

NS_MUC = "http://jabber.org/protocol/muc"
NS_MUC_USER = "http://jabber.org/protocol/muc#user"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
NS_MAM = "urn:xmpp:mam:2"
NS_RSM = "http://jabber.org/protocol/rsm"
NS_SID = "urn:xmpp:sid:0"
NS_DELAY = "urn:xmpp:delay"
NS_FORWARD = "urn:xmpp:forward:0"
NS_DATA = "jabber:x:data"
NS_CLIENT = "jabber:client"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_CONFERENCE = "jabber:x:conference"

ROOM_FEATURES = (
    NS_MUC,
    NS_MAM,
    NS_SID,
    NS_DISCO_INFO,
    "muc_open",
    "muc_public",
    "muc_nonanonymous",
    "muc_unmoderated",
    "muc_unsecured",
)


#: Errors that mean a resource is no longer there (the conditions Prosody's MUC kicks on).
GONE_CONDITIONS = frozenset(
    {
        "gone",
        "internal-server-error",
        "item-not-found",
        "jid-malformed",
        "recipient-unavailable",
        "redirect",
        "remote-server-not-found",
        "remote-server-timeout",
        "service-unavailable",
    }
)


#: Checking who is still there after a reattach: questions in flight, and the wait for each.
CHECK_CONCURRENCY = 50
CHECK_TIMEOUT_SECONDS = 30


NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


def error_condition(stanza: StanzaBase) -> str:
    """An error stanza's defined condition.

    Read from the XML: slixmpp's error plugin looks for ``<error/>`` in jabber:client, and
    a component's stanzas are in jabber:component:accept, so ``stanza["error"]`` finds none.
    """
    for child in stanza.xml:
        if child.tag.rpartition("}")[2] == "error":
            for condition in child:
                namespace, _, name = condition.tag[1:].partition("}")
                if namespace == NS_STANZAS and name != "text":
                    return name
    return ""


def is_gone(stanza: StanzaBase) -> bool:
    """Whether an error stanza from a user's resource says that resource is gone."""
    return error_condition(stanza) in GONE_CONDITIONS


def _stamp(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_stamp(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@runtime_checkable
class DirectInvitations(Protocol):
    """A room service that says which of its contacts take XEP-0249 invitations (disco)."""

    def takes_invitations(self, address: str) -> bool:
        """Whether an invitation sent to this contact's JID can reach it (an IRC nick)."""


class MucRouter:
    def __init__(self, component: Any, transport: RoomService) -> None:
        self.component = component
        self.rooms = transport
        #: (full JID, room) → the nick this resource has in the room
        self.joined: dict[tuple[str, str], str] = {}
        #: (bare JID, room) → (full JID, JID it was sent to, id) of the user's last invitation
        #: there, for the foreign side's refusal, which comes later and names no stanza
        self.invitations: dict[tuple[str, str], tuple[str, str, str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def domain(self) -> str:
        return str(self.component.boundjid.bare)

    def setup(self) -> None:
        self.component.add_event_handler("session_start", self._on_attached)
        self.component.add_event_handler("message_error", self._on_bounce)
        self.component.add_filter("in", self._filter_iq)
        # A subject change has no body, so slixmpp raises only "groupchat_subject" for it;
        # invitations seldom have one: they have events of their own (xep_0045, xep_0249).
        self.component.add_event_handler("groupchat_subject", self._on_subject)
        self.component.register_plugin("xep_0249")  # also advertises jabber:x:conference
        self.component.add_event_handler("groupchat_invite", self._on_mediated_invitation)
        self.component.add_event_handler("groupchat_direct_invite", self._on_direct_invitation)

    async def _on_subject(self, msg: Message) -> None:
        # With a body, it is a message too, and the "message" event takes it.
        if not msg["body"] and self._allowed(msg):
            await self.handle_message(msg)

    def _allowed(self, msg: Message) -> bool:
        if msg["type"] == "error":
            return False
        if self.component.host.is_allowed(msg["from"].bare):
            return True
        self._error_message(msg, "forbidden", "your server may not use this gateway", "auth")
        return False

    def contact_features(self, address: str) -> tuple[str, ...]:
        """What a contact's disco#info adds for rooms: XEP-0249, where it can be invited."""
        if isinstance(self.rooms, DirectInvitations) and self.rooms.takes_invitations(address):
            return (NS_CONFERENCE,)
        return ()

    @staticmethod
    def is_invitation(msg: Message) -> bool:
        return (
            msg.xml.find(f"{{{NS_MUC_USER}}}x/{{{NS_MUC_USER}}}invite") is not None
            or msg.xml.find(f"{{{NS_CONFERENCE}}}x") is not None
        )

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
        if self.is_invitation(msg):
            return True  # the invitation events take it, body or not: the body is a fallback
        try:
            room = self.room_of(msg["to"])
        except GatewayError as exc:
            self._error_message(msg, exc.condition, exc.text, exc.error_type)
            return True
        if room is None:
            if msg["type"] == "groupchat":
                self._error_message(msg, "item-not-found", "not a room")
                return True
            return False
        if msg["type"] == "error":
            return True
        sender = str(msg["from"])
        nick = msg["to"].resource
        try:
            if nick:
                if msg["body"]:
                    await self.rooms.send_private(
                        sender, room, nick, msg["body"], msg["id"] or None
                    )
                return True
            if msg["type"] != "groupchat":
                raise GatewayError("send groupchat messages to a room", "bad-request", "modify")
            if msg.xml.find(f"{{{msg.namespace}}}subject") is not None and not msg["body"]:
                await self.rooms.set_subject(sender, room, msg["subject"])
                return True
            if msg["body"]:
                origin = msg.xml.find(f"{{{NS_SID}}}origin-id")
                origin_id = origin.get("id") if origin is not None else None
                await self.rooms.send_room_message(
                    sender, room, msg["body"], msg["id"] or None, origin_id
                )
        except GatewayError as exc:
            self._error_message(msg, exc.condition, exc.text, exc.error_type)
        return True

    # -- invitations from users ----------------------------------------------------------------

    async def _on_mediated_invitation(self, msg: Message) -> None:
        """XEP-0045 §7.8.2: ``<x muc#user><invite to='nick%server@gw'/></x>`` to the room."""
        if not self._allowed(msg):
            return
        try:
            room = self.room_of(msg["to"])
            if room is None or msg["to"].resource:
                raise GatewayError(
                    "send a mediated invitation to the room's bare JID", "bad-request", "modify"
                )
            for invite in msg.xml.iterfind(f"{{{NS_MUC_USER}}}x/{{{NS_MUC_USER}}}invite"):
                invitee = self._invitee(invite.get("to", ""))
                reason = invite.findtext(f"{{{NS_MUC_USER}}}reason") or ""
                await self._invite(msg, room, invitee, reason)
        except GatewayError as exc:
            self._error_message(msg, exc.condition, exc.text, exc.error_type)

    async def _on_direct_invitation(self, msg: Message) -> None:
        """XEP-0249: ``<x xmlns='jabber:x:conference' jid='#chan%server@gw'/>`` to the contact."""
        if msg.xml.find(f"{{{NS_MUC_USER}}}x/{{{NS_MUC_USER}}}invite") is not None:
            return  # a mediated one with the legacy element besides: taken as mediated
        if not self._allowed(msg):
            return
        x = msg.xml.find(f"{{{NS_CONFERENCE}}}x")
        to = msg["to"]
        try:
            if x is None or to.resource or not to.user or self.room_of(to) is not None:
                raise GatewayError(
                    "send a direct invitation to the bare JID of a user "
                    f"(nick%server@{self.domain})",
                    "bad-request",
                    "modify",
                )
            text = x.get("jid", "")
            room = self.room_of(self._jid(text))
            if room is None:
                title = self.component.network.title
                raise GatewayError(
                    f"{text or 'no room'} is not a room of {self.domain}; "
                    f"an {title} user can only be invited to an {title} room",
                    "not-acceptable",
                )
            await self._invite(msg, room, to.user, x.get("reason", ""))
        except GatewayError as exc:
            self._error_message(msg, exc.condition, exc.text, exc.error_type)

    def _invitee(self, text: str) -> str:
        """The local part of the JID a mediated invitation names: a contact of this gateway."""
        jid = self._jid(text)
        if jid.domain != self.domain:
            raise GatewayError(
                f"{jid} is not on {self.domain}: this room can only invite its own network's "
                f"users (nick%server@{self.domain}); invite XMPP users directly (XEP-0249)",
                "feature-not-implemented",
            )
        if not jid.user or jid.resource:
            raise GatewayError(
                f"invite a user by their bare JID (nick%server@{self.domain})",
                "jid-malformed",
                "modify",
            )
        return jid.user

    @staticmethod
    def _jid(text: str) -> JID:
        try:
            jid = JID(text)
        except InvalidJID:
            jid = JID()
        if not jid.domain:
            raise GatewayError(f"not a JID: {text!r}", "jid-malformed", "modify")
        return jid

    async def _invite(self, msg: Message, room: str, invitee: str, reason: str) -> None:
        await self.rooms.invite(str(msg["from"]), room, invitee, reason)
        key = (msg["from"].bare, room)
        if msg["id"]:
            self.invitations[key] = (str(msg["from"]), str(msg["to"].bare), msg["id"])
        else:
            self.invitations.pop(key, None)  # a refusal must not answer an older invitation

    # -- presence from users -------------------------------------------------------------------

    async def handle_presence(self, pres: Presence) -> bool:
        try:
            room = self.room_of(pres["to"])
        except GatewayError as exc:
            if pres["type"] not in ("unavailable", "error"):
                self._error_presence(pres, exc.condition, exc.text, exc.error_type)
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
                self.invitations.pop((pres["from"].bare, room), None)
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
                joining = pres.xml.find(f"{{{NS_MUC}}}x") is not None
                if current is not None and current != nick:
                    await self.rooms.change_nick(sender, room, nick)  # joined follows the echo
                if current is None or joining:
                    self.joined[key] = nick
                    await self.rooms.join_room(
                        sender, room, nick, self._max_history(pres), pres["show"], pres["status"]
                    )
                elif current == nick:
                    await self.rooms.join_room(sender, room, nick, 0, pres["show"], pres["status"])
        except GatewayError as exc:
            if ptype != "unavailable" and self.joined.get(key) == nick:
                self.joined.pop(key, None)
            self._error_presence(pres, exc.condition, exc.text, exc.error_type)
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
            task = asyncio.create_task(self.check_occupants())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def check_occupants(self) -> None:
        """After the link to the XMPP server comes back, find the resources that are gone.

        If the server itself went down, the sessions it held ended without a word to us, and
        those resources would stay in their rooms for good (their IRC connections with them).
        Each one is asked for its disco#info, which every client answers: the server answers
        for a resource that no longer exists (service-unavailable), and that resource leaves.
        No answer in time proves nothing, and the resource stays.
        """
        limit = asyncio.Semaphore(CHECK_CONCURRENCY)

        async def check(full_jid: str) -> None:
            async with limit:
                try:
                    await self.component.plugin["xep_0030"].get_info(
                        jid=full_jid, ifrom=self.domain, timeout=CHECK_TIMEOUT_SECONDS
                    )
                except IqError as exc:
                    if is_gone(exc.iq):
                        for jid, room in [key for key in self.joined if key[0] == full_jid]:
                            await self._occupant_gone(jid, room)
                except IqTimeout:
                    pass
                except Exception:
                    log.exception("checking whether %s is still there failed", full_jid)

        await asyncio.gather(*(check(jid) for jid in {jid for jid, _ in self.joined}))

    async def _occupant_gone(self, full_jid: str, room: str) -> None:
        """A resource that went away without a word (its server died): out of the room, as
        if it had left. A persistent room stays joined on the other side."""
        log.info("%s is gone from %s; it leaves the room", full_jid, room)
        self.joined.pop((full_jid, room), None)
        await self.rooms.leave_room(full_jid, room, "")

    @staticmethod
    def _max_history(pres: Presence) -> int | None:
        history = pres.xml.find(f"{{{NS_MUC}}}x/{{{NS_MUC}}}history")
        if history is None:
            return None
        value = history.get("maxstanzas")
        if value is not None and value.isdigit():
            return int(value)
        return None

    # -- events from the transport -------------------------------------------------------------

    def render(self, event: Any) -> bool:
        if isinstance(event, OccupantPresence):
            self._render_presence(event)
        elif isinstance(event, RoomMessage):
            self._render_message(event)
        elif isinstance(event, RoomSubject):
            for resource in event.resources:
                msg = self._message(event.user_jid, resource, self.room_jid(event.room, event.nick))
                ET.SubElement(msg.xml, f"{{{msg.namespace}}}subject").text = event.subject
                msg.send()
        elif isinstance(event, RoomStatus):
            for resource in event.resources:
                msg = self._message(event.user_jid, resource, self.room_jid(event.room))
                msg["body"] = event.text
                msg.send()
        elif isinstance(event, RoomInvite):
            self._render_invite(event)
        elif isinstance(event, RoomError):
            self._render_error(event)
        else:
            return False
        return True

    def _message(
        self, user_jid: str, resource: str, sender: str, mtype: str = "groupchat"
    ) -> Message:
        to = f"{user_jid}/{resource}" if resource else user_jid
        msg = self.component.make_message(mto=to, mfrom=sender, mtype=mtype)
        return msg

    def _render_presence(self, event: OccupantPresence) -> None:
        occupant = event.occupant
        for resource in event.resources:
            key = (f"{event.user_jid}/{resource}", event.room)
            if event.is_self and not event.available:
                if event.new_nick:
                    self.joined[key] = event.new_nick
                else:
                    self.joined.pop(key, None)
            pres = self.component.make_presence(
                pto=f"{event.user_jid}/{resource}",
                pfrom=self.room_jid(event.room, occupant.nick),
                ptype=None if event.available else "unavailable",
            )
            if event.show:
                pres["show"] = event.show
            if event.status:
                pres["status"] = event.status
            x = ET.SubElement(pres.xml, f"{{{NS_MUC_USER}}}x")
            item = ET.SubElement(x, f"{{{NS_MUC_USER}}}item")
            item.set("affiliation", occupant.affiliation)
            item.set("role", "none" if not event.available else occupant.role)
            if event.new_nick:
                item.set("nick", event.new_nick)
            codes = []
            if event.is_self and event.available:
                codes.append("100")
            if event.is_self:
                codes.append("110")
            if event.new_nick:
                codes.append("303")
            if event.kicked:
                codes.append("307")
            for code in codes:
                ET.SubElement(x, f"{{{NS_MUC_USER}}}status").set("code", code)
            pres.send()

    def _render_message(self, event: RoomMessage) -> None:
        room_bare = self.room_jid(event.room)
        for resource in event.resources:
            msg = self._message(event.user_jid, resource, self.room_jid(event.room, event.nick))
            msg["id"] = event.xmpp_id or event.stanza_id or uuid.uuid4().hex
            msg["body"] = event.body
            if event.origin_id:
                ET.SubElement(msg.xml, f"{{{NS_SID}}}origin-id").set("id", event.origin_id)
            if event.stanza_id:
                sid = ET.SubElement(msg.xml, f"{{{NS_SID}}}stanza-id")
                sid.set("id", event.stanza_id)
                sid.set("by", room_bare)
            if event.timestamp is not None:
                delay = ET.SubElement(msg.xml, f"{{{NS_DELAY}}}delay")
                delay.set("stamp", _stamp(event.timestamp))
                delay.set("from", room_bare)
            msg.send()

    def _render_invite(self, event: RoomInvite) -> None:
        """A foreign user invites the user: a mediated invitation (XEP-0045 §7.8.2).

        Mediated, from the room, rather than direct (XEP-0249) from the inviter's JID, and
        not both:
        - the invitation comes from the very JID the client will join, known as a room; a
          direct one would come from ``nick%server@gw``, a stranger's JID, which servers and
          clients that filter messages from strangers may drop;
        - biboumi does the same, so users and clients that know it see what they expect;
        - both at once would show two prompts for one invitation in clients that take both.
        It goes to the bare JID: every client of the user can take it, and the XMPP server
        keeps it offline when none is connected (a persistent room stays joined meanwhile).
        """
        room = self.room_jid(event.room)
        msg = self._message(event.user_jid, "", room, mtype="normal")
        msg["id"] = uuid.uuid4().hex
        x = ET.SubElement(msg.xml, f"{{{NS_MUC_USER}}}x")
        invite = ET.SubElement(x, f"{{{NS_MUC_USER}}}invite")
        invite.set("from", self._inviter_jid(event))
        if event.reason:
            ET.SubElement(invite, f"{{{NS_MUC_USER}}}reason").text = event.reason
        name = event.room.rpartition("%")[0] or event.room
        msg["body"] = f"{event.inviter} invites you to {name}: {room}"
        msg.send()

    def _inviter_jid(self, event: RoomInvite) -> str:
        server = event.room.rpartition("%")[2]
        local = self.rooms.format_room(f"{event.inviter}%{server}")
        return f"{local}@{self.domain}"

    def _render_error(self, event: RoomError) -> None:
        if event.on == "invite":
            self._render_invitation_error(event)
            return
        for resource in event.resources or ("",):
            to = f"{event.user_jid}/{resource}" if resource else event.user_jid
            stanza: StanzaBase
            if event.on == "message":
                stanza = self.component.make_message(
                    mto=to, mfrom=self.room_jid(event.room), mtype="error"
                )
                if event.xmpp_id:
                    stanza["id"] = event.xmpp_id
            else:
                nick = event.nick or self.joined.get((to, event.room), "")
                if event.on == "join":
                    self.joined.pop((to, event.room), None)
                stanza = self.component.make_presence(
                    pto=to, pfrom=self.room_jid(event.room, nick), ptype="error"
                )
            self._send_error(stanza, event)

    def _render_invitation_error(self, event: RoomError) -> None:
        """The foreign side refused an invitation: an error answering the user's last one.

        The refusal names the invitee and the room, not the stanza; the last invitation the
        user sent there is the one it answers (they come back within a round trip).
        """
        sent = self.invitations.pop((event.user_jid, event.room), None)
        to, sender, msg_id = sent or (event.user_jid, self.room_jid(event.room), "")
        msg = self.component.make_message(mto=to, mfrom=sender, mtype="error")
        if msg_id:
            msg["id"] = msg_id
        self._send_error(msg, event)

    @staticmethod
    def _send_error(stanza: StanzaBase, event: RoomError) -> None:
        stanza["error"]["type"] = "cancel" if event.condition != "not-authorized" else "auth"
        stanza["error"]["condition"] = event.condition
        stanza["error"]["text"] = event.text
        stanza.send()

    def _error_message(
        self, msg: Message, condition: str, text: str, etype: str = "cancel"
    ) -> None:
        reply = msg.reply(clear=False)
        reply["id"] = msg["id"]  # slixmpp gives replies a new id; an error must answer this one
        reply["type"] = "error"
        reply["error"]["type"] = etype
        reply["error"]["condition"] = condition
        reply["error"]["text"] = text
        reply.send()

    def _error_presence(self, pres: Presence, condition: str, text: str, etype: str) -> None:
        reply = self.component.make_presence(pto=pres["from"], pfrom=pres["to"], ptype="error")
        reply["error"]["type"] = etype
        reply["error"]["condition"] = condition
        reply["error"]["text"] = text
        reply.send()

    # -- disco and MAM on room JIDs ------------------------------------------------------------

    def _filter_iq(self, stanza: StanzaBase) -> StanzaBase | None:
        if not isinstance(stanza, Iq) or stanza["type"] not in ("get", "set"):
            return stanza
        try:
            room = self.room_of(stanza["to"])
        except GatewayError:
            return stanza
        if room is None or stanza["to"].resource:
            return stanza
        if stanza.xml.find(f"{{{NS_DISCO_INFO}}}query") is not None and stanza["type"] == "get":
            self._disco_info(stanza, room)
            return None
        if stanza.xml.find(f"{{{NS_DISCO_ITEMS}}}query") is not None and stanza["type"] == "get":
            reply = stanza.reply(clear=True)
            ET.SubElement(reply.xml, f"{{{NS_DISCO_ITEMS}}}query")
            reply.send()
            return None
        query = stanza.xml.find(f"{{{NS_MAM}}}query")
        if query is not None and stanza["type"] == "set":
            task = asyncio.ensure_future(self._mam(stanza, room, query))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return None
        return stanza

    def _disco_info(self, iq: Iq, room: str) -> None:
        reply = iq.reply(clear=True)
        query = ET.SubElement(reply.xml, f"{{{NS_DISCO_INFO}}}query")
        identity = ET.SubElement(query, f"{{{NS_DISCO_INFO}}}identity")
        identity.set("category", "conference")
        identity.set("type", "irc")
        identity.set("name", room.rpartition("%")[0] or room)
        for feature in ROOM_FEATURES:
            ET.SubElement(query, f"{{{NS_DISCO_INFO}}}feature").set("var", feature)
        reply.send()

    async def _mam(self, iq: Iq, room: str, query: ET.Element) -> None:
        user_jid = iq["from"].bare
        try:
            archive_query = self._archive_query(query)
            page = await self.rooms.room_archive(user_jid, room, archive_query)
        except GatewayError as exc:
            reply = iq.reply(clear=True)
            reply["type"] = "error"
            reply["error"]["type"] = exc.error_type
            reply["error"]["condition"] = exc.condition
            reply["error"]["text"] = exc.text
            reply.send()
            return
        queryid = query.get("queryid")
        room_bare = self.room_jid(room)
        for item in page.messages:
            msg = self.component.make_message(mto=iq["from"], mfrom=room_bare, mtype="normal")
            result = ET.SubElement(msg.xml, f"{{{NS_MAM}}}result")
            if queryid:
                result.set("queryid", queryid)
            result.set("id", item.stanza_id)
            forwarded = ET.SubElement(result, f"{{{NS_FORWARD}}}forwarded")
            ET.SubElement(forwarded, f"{{{NS_DELAY}}}delay").set("stamp", _stamp(item.timestamp))
            inner = ET.SubElement(forwarded, f"{{{NS_CLIENT}}}message")
            inner.set("type", "groupchat")
            inner.set("from", self.room_jid(room, item.nick))
            inner.set("id", item.stanza_id)
            ET.SubElement(inner, f"{{{NS_CLIENT}}}body").text = item.body
            msg.send()
        reply = iq.reply(clear=True)
        fin = ET.SubElement(reply.xml, f"{{{NS_MAM}}}fin")
        if page.complete:
            fin.set("complete", "true")
        rsm = ET.SubElement(fin, f"{{{NS_RSM}}}set")
        if page.messages:
            ET.SubElement(rsm, f"{{{NS_RSM}}}first").text = page.messages[0].stanza_id
            ET.SubElement(rsm, f"{{{NS_RSM}}}last").text = page.messages[-1].stanza_id
        reply.send()

    def _archive_query(self, query: ET.Element) -> ArchiveQuery:
        values: dict[str, str] = {}
        for field in query.iterfind(f"{{{NS_DATA}}}x/{{{NS_DATA}}}field"):
            values[field.get("var", "")] = field.findtext(f"{{{NS_DATA}}}value") or ""
        start = _parse_stamp(values["start"]) if values.get("start") else None
        end = _parse_stamp(values["end"]) if values.get("end") else None
        if (values.get("start") and start is None) or (values.get("end") and end is None):
            raise GatewayError("start and end must be XEP-0082 date-times", "bad-request", "modify")
        with_nick = JID(values["with"]).resource if values.get("with") else None
        rsm = query.find(f"{{{NS_RSM}}}set")
        max_items, after, before = 50, None, None
        if rsm is not None:
            text = rsm.findtext(f"{{{NS_RSM}}}max")
            if text is not None:
                if not text.strip().isdigit():
                    raise GatewayError("RSM max must be a number", "bad-request", "modify")
                max_items = int(text)
            after = rsm.findtext(f"{{{NS_RSM}}}after") or None
            before_el = rsm.find(f"{{{NS_RSM}}}before")
            if before_el is not None:
                before = before_el.text or ""
        return ArchiveQuery(start, end, with_nick or None, after, before, max_items)
