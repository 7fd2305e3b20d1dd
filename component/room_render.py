"""Room events from a transport, as XEP-0045 stanzas to each resource in the room.

Each event names the resources it is for; each gets its own copy. The router's record of
who is in which room (``router.joined``) follows the user's own presences here: a nick
change moves it, leaving or a failed join ends it.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from slixmpp import Message
from slixmpp.xmlstream import StanzaBase

from component.message_refs import refers_parts
from component.outgoing import send_written, written_message
from component.room_namespaces import NS_DELAY, NS_MUC_USER, NS_SID
from component.xml_text import attr, text
from transports.rooms import OccupantPresence, RoomError, RoomMessage, RoomStatus, RoomSubject

if TYPE_CHECKING:
    from component.muc import MucRouter


def stamp(timestamp: float) -> str:
    """A XEP-0082 date-time, as delays and MAM results carry it."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def message(
    router: MucRouter, user_jid: str, resource: str, sender: str, mtype: str = "groupchat"
) -> Message:
    to = f"{user_jid}/{resource}" if resource else user_jid
    msg = router.component.make_message(mto=to, mfrom=sender, mtype=mtype)
    return msg


def render_presence(router: MucRouter, event: OccupantPresence) -> None:
    occupant = event.occupant
    leaving = event.is_self and not event.available and not event.new_nick
    if not leaving:
        router.members.note(event)
    for resource in event.resources:
        key = (f"{event.user_jid}/{resource}", event.room)
        if event.is_self and not event.available:
            if event.new_nick:
                router.joined[key] = event.new_nick
            else:
                router.joined.pop(key, None)
                router.history.release(key)
        pres = router.component.make_presence(
            pto=f"{event.user_jid}/{resource}",
            pfrom=router.room_jid(event.room, occupant.nick),
            ptype=None if event.available else "unavailable",
        )
        if event.show:
            pres["show"] = event.show
        status = occupant_status(event)
        if status:
            pres["status"] = status
        x = ET.SubElement(pres.xml, f"{{{NS_MUC_USER}}}x")
        occupant_item(router, x, event)
        for code in status_codes(event):
            ET.SubElement(x, f"{{{NS_MUC_USER}}}status").set("code", code)
        pres.send()
    if leaving and not any(
        room == event.room and jid.startswith(f"{event.user_jid}/") for jid, room in router.joined
    ):
        router.members.forget(event.user_jid, event.room)  # the user's last resource left


def occupant_status(event: OccupantPresence) -> str:
    """The presence's status text, with the network account the occupant is logged in to.

    XEP-0045 has no place for an account, and users of IRC rely on it to tell a nick's
    owner from someone who took the nick; the status text is what every client shows.
    """
    account = event.occupant.account
    if not account or not event.available:
        return event.status
    logged_in = f"logged in as {account}"
    return f"{event.status} ({logged_in})" if event.status else logged_in


def occupant_item(router: MucRouter, x: ET.Element, event: OccupantPresence) -> None:
    """The ``<item/>``: role, affiliation, the real JID (the room is non-anonymous), and who
    removed the occupant and why (XEP-0045 §9.2, §9.1: ``<actor nick/>``, ``<reason/>``)."""
    occupant = event.occupant
    item = ET.SubElement(x, f"{{{NS_MUC_USER}}}item")
    item.set("affiliation", "outcast" if event.banned else occupant.affiliation)
    item.set("role", "none" if not event.available else occupant.role)
    if occupant.address:
        # profanity (and others) take status 100 at its word and crash on an item without one.
        item.set("jid", str(router.component.contact_jid(occupant.address, occupant.identity)))
    if event.new_nick:
        item.set("nick", event.new_nick)
    if event.kicked or event.banned:
        if event.actor:
            ET.SubElement(item, f"{{{NS_MUC_USER}}}actor").set("nick", event.actor)
        if event.reason:
            ET.SubElement(item, f"{{{NS_MUC_USER}}}reason").text = event.reason


def status_codes(event: OccupantPresence) -> list[str]:
    """XEP-0045 status codes: 100 non-anonymous, 110 self, 210 nick assigned by the service,
    301 banned, 303 nick change, 307 kicked."""
    codes = []
    if event.is_self and event.available:
        codes.append("100")
    if event.is_self:
        codes.append("110")
    if event.is_self and event.available and event.nick_assigned:
        codes.append("210")
    if event.banned:
        codes.append("301")
    if event.new_nick:
        codes.append("303")
    if event.kicked and not event.banned:
        codes.append("307")
    return codes


def render_message(router: MucRouter, event: RoomMessage) -> None:
    """One copy for each of the user's resources in the room, written as text.

    Room messages are most of what a busy IRC gateway sends: written as text, they skip
    slixmpp's stanza objects, filters and serialiser (see ``outgoing.send_written``). A
    join's history is held as stanza objects, which room_history.py measures and sends.
    """
    room_bare = router.room_jid(event.room)
    foreign = router.foreign_ids.take(event.user_jid, event.xmpp_id) if event.xmpp_id else []
    sender = f"{room_bare}/{event.nick}" if event.nick else room_bare  # as router.room_jid
    head = (
        f'<message type="groupchat" from={attr(sender)}'
        f" id={attr(event.xmpp_id or event.stanza_id or uuid.uuid4().hex)} to="
    )
    tail = message_children(event, room_bare, foreign) + "</message>"
    for resource in event.resources:
        key = (f"{event.user_jid}/{resource}", event.room)
        written = head + attr(key[0] if resource else event.user_jid) + ">" + tail
        if event.timestamp is None:
            router.history.release(key)
        elif router.history.holding(key):
            router.history.take(key, event.timestamp, written_message(router.component, written))
            continue
        send_written(router.component, written)


def message_children(event: RoomMessage, room_bare: str, foreign: list[tuple[str, str]]) -> str:
    """What a room message carries, as text: what it does to an earlier one, its body, its
    ids (origin-id; the room's stanza-id; those of other entities kept for the echo), and
    the delay of a message from the room's history."""
    body, parts = refers_parts(event.refers, event.body) if event.refers else (event.body, "")
    if body:
        parts += f"<body>{text(body)}</body>"
    if event.origin_id:
        parts += f'<origin-id xmlns="{NS_SID}" id={attr(event.origin_id)} />'
    stanza_ids = [(event.stanza_id, room_bare)] if event.stanza_id else []
    for stanza_id, by in stanza_ids + foreign:
        parts += f'<stanza-id xmlns="{NS_SID}" id={attr(stanza_id)} by={attr(by)} />'
    if event.timestamp is not None:
        when = stamp(event.timestamp)
        parts += f'<delay xmlns="{NS_DELAY}" stamp="{when}" from={attr(room_bare)} />'
    return parts


def render_subject(router: MucRouter, event: RoomSubject) -> None:
    for resource in event.resources:
        router.history.release((f"{event.user_jid}/{resource}", event.room))  # the join ends
        msg = message(router, event.user_jid, resource, router.room_jid(event.room, event.nick))
        ET.SubElement(msg.xml, f"{{{msg.namespace}}}subject").text = event.subject
        msg.send()


def render_status(router: MucRouter, event: RoomStatus) -> None:
    for resource in event.resources:
        msg = message(router, event.user_jid, resource, router.room_jid(event.room))
        msg["body"] = event.text
        msg.send()


def render_error(router: MucRouter, event: RoomError) -> None:
    """A failed join, message or nick change (a refused invitation: room_invites.py)."""
    for resource in event.resources or ("",):
        to = f"{event.user_jid}/{resource}" if resource else event.user_jid
        stanza: StanzaBase
        if event.on == "message":
            # A private message's error (a nick): from room/nick, where it was sent.
            stanza = router.component.make_message(
                mto=to, mfrom=router.room_jid(event.room, event.nick), mtype="error"
            )
            if event.xmpp_id:
                stanza["id"] = event.xmpp_id
        else:
            nick = event.nick or router.joined.get((to, event.room), "")
            if event.on == "join":
                router.joined.pop((to, event.room), None)
                router.history.release((to, event.room))
            stanza = router.component.make_presence(
                pto=to, pfrom=router.room_jid(event.room, nick), ptype="error"
            )
        send_error(stanza, event)


def send_error(stanza: StanzaBase, event: RoomError) -> None:
    stanza["error"]["type"] = "cancel" if event.condition != "not-authorized" else "auth"
    stanza["error"]["condition"] = event.condition
    stanza["error"]["text"] = event.text
    stanza.send()
