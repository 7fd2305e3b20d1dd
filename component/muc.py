"""MUC semantics (XEP-0045) for transports whose contacts can be group chats (IRC).

The router sits between the component and a transport with ``supports_rooms``: it turns
room stanzas (joins, leaves, groupchat messages, nick changes, subjects, invitations,
private messages to occupants) into :class:`~transports.rooms.RoomService` calls, and the
transport's room events into presences and messages, one copy per resource that is in the
room. Disco and MAM on room JIDs are answered here too, through an incoming filter so that
they do not depend on the order in which disco handlers were registered.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

from slixmpp import JID, Iq, Message, Presence
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


def _stamp(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_stamp(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class MucRouter:
    def __init__(self, component: Any, transport: RoomService) -> None:
        self.component = component
        self.rooms = transport
        #: (full JID, room) → the nick this resource has in the room
        self.joined: dict[tuple[str, str], str] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def domain(self) -> str:
        return str(self.component.boundjid.bare)

    def setup(self) -> None:
        self.component.add_filter("in", self._filter_iq)
        # A subject change has no body, so slixmpp raises only "groupchat_subject" for it.
        self.component.add_event_handler("groupchat_subject", self._on_subject)

    async def _on_subject(self, msg: Message) -> None:
        if self.component.host.is_allowed(msg["from"].bare):
            await self.handle_message(msg)

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
            invite = msg.xml.find(f"{{{NS_MUC_USER}}}x/{{{NS_MUC_USER}}}invite")
            if invite is not None:
                invitee = JID(invite.get("to", ""))
                reason = invite.findtext(f"{{{NS_MUC_USER}}}reason") or ""
                if invitee.domain != self.domain or not invitee.user:
                    raise GatewayError("invite someone of this gateway", "bad-request", "modify")
                await self.rooms.invite(sender, room, invitee.user, reason)
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
                await self.rooms.leave_room(sender, room, pres["status"])
            elif ptype in ("available", "") or ptype in ("away", "xa", "dnd", "chat"):
                if not nick:
                    raise GatewayError(
                        "join with a nick: room@domain/nick", "jid-malformed", "modify"
                    )
                current = self.joined.get(key)
                if current is None:
                    self.joined[key] = nick
                    await self.rooms.join_room(
                        sender, room, nick, self._max_history(pres), pres["show"], pres["status"]
                    )
                elif current != nick:
                    await self.rooms.change_nick(sender, room, nick)
                else:
                    await self.rooms.join_room(sender, room, nick, 0, pres["show"], pres["status"])
        except GatewayError as exc:
            if ptype != "unavailable" and self.joined.get(key) == nick:
                self.joined.pop(key, None)
            self._error_presence(pres, exc.condition, exc.text, exc.error_type)
        return True

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
        msg = self._message(event.user_jid, "", self.room_jid(event.room), mtype="normal")
        inviter = f"{self.rooms.format_room(event.room).split('%')[0]}"
        x = ET.SubElement(msg.xml, f"{{{NS_MUC_USER}}}x")
        invite = ET.SubElement(x, f"{{{NS_MUC_USER}}}invite")
        invite.set("from", self._inviter_jid(event))
        if event.reason:
            ET.SubElement(invite, f"{{{NS_MUC_USER}}}reason").text = event.reason
        msg["body"] = f"{event.inviter} invites you to {inviter}"
        msg.send()

    def _inviter_jid(self, event: RoomInvite) -> str:
        server = event.room.rpartition("%")[2]
        local = self.rooms.format_room(f"{event.inviter}%{server}")
        return f"{local}@{self.domain}"

    def _render_error(self, event: RoomError) -> None:
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
            stanza["error"]["type"] = "cancel" if event.condition != "not-authorized" else "auth"
            stanza["error"]["condition"] = event.condition
            stanza["error"]["text"] = event.text
            stanza.send()

    def _error_message(
        self, msg: Message, condition: str, text: str, etype: str = "cancel"
    ) -> None:
        reply = msg.reply(clear=False)
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
