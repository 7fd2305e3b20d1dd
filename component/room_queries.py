"""Queries on room JIDs: disco#info, disco#items and MAM (XEP-0313, paged with RSM).

They are answered from an incoming filter, so that they do not depend on the order in
which disco handlers were registered; a query these do not answer goes on its way.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime
from typing import TYPE_CHECKING

from slixmpp import JID, Iq
from slixmpp.xmlstream import StanzaBase

from component.room_namespaces import (
    NS_CLIENT,
    NS_COMMANDS,
    NS_DATA,
    NS_DELAY,
    NS_DISCO_INFO,
    NS_DISCO_ITEMS,
    NS_FORWARD,
    NS_MAM,
    NS_MUC,
    NS_MUC_TRAFFIC,
    NS_PING,
    NS_RSM,
    NS_SID,
    NS_VERSION,
)
from component.room_occupants import error
from component.room_render import stamp
from mappings.archive import ArchiveQuery
from transports.base import GatewayError

if TYPE_CHECKING:
    from component.muc import MucRouter

NS_ROOMINFO = "http://jabber.org/protocol/muc#roominfo"
FORM_TYPE = "FORM_TYPE"
ROOMINFO_OCCUPANTS = "muc#roominfo_occupants"

ROOM_FEATURES = (
    NS_MUC,
    NS_MAM,
    NS_SID,
    NS_DISCO_INFO,
    NS_PING,
    NS_VERSION,
    NS_COMMANDS,
    "muc_open",
    "muc_public",
    "muc_nonanonymous",
    "muc_unmoderated",
    "muc_unsecured",
)


def answer(router: MucRouter, stanza: StanzaBase) -> StanzaBase | None:
    """The incoming filter: None for a query answered here, else the stanza, untouched."""
    if not isinstance(stanza, Iq) or stanza["type"] not in ("get", "set"):
        return stanza
    try:
        room = router.room_of(stanza["to"])
    except GatewayError:
        return stanza
    if room is None or stanza["to"].resource:
        return stanza
    if stanza.xml.find(f"{{{NS_DISCO_INFO}}}query") is not None and stanza["type"] == "get":
        _disco_info(stanza, room, router.members.count(stanza["from"].bare, room))
        return None
    if stanza.xml.find(f"{{{NS_DISCO_ITEMS}}}query") is not None and stanza["type"] == "get":
        reply = stanza.reply(clear=True)
        ET.SubElement(reply.xml, f"{{{NS_DISCO_ITEMS}}}query")
        reply.send()
        return None
    query = stanza.xml.find(f"{{{NS_MAM}}}query")
    if query is not None and stanza["type"] == "set":
        router.run_soon(_mam(router, stanza, room, query))
        return None
    return stanza


def _disco_info(iq: Iq, room: str, occupants: int | None) -> None:
    """The room's identity and features; once the user is in it, how many occupants it
    has (XEP-0045 §6.4 muc#roominfo), as biboumi says."""
    reply = iq.reply(clear=True)
    query = ET.SubElement(reply.xml, f"{{{NS_DISCO_INFO}}}query")
    node = iq.xml.find(f"{{{NS_DISCO_INFO}}}query").get("node")  # type: ignore[union-attr]
    if node == NS_MUC_TRAFFIC:  # XEP-0045 §6.6: no traffic types beyond the usual
        query.set("node", node)
        reply.send()
        return
    identity = ET.SubElement(query, f"{{{NS_DISCO_INFO}}}identity")
    identity.set("category", "conference")
    identity.set("type", "irc")
    channel, _, server = room.rpartition("%")
    identity.set("name", f"{channel} on {server}" if channel else room)
    for feature in ROOM_FEATURES:
        ET.SubElement(query, f"{{{NS_DISCO_INFO}}}feature").set("var", feature)
    if occupants is not None:
        form = ET.SubElement(query, f"{{{NS_DATA}}}x")
        form.set("type", "result")
        for var, value in ((FORM_TYPE, NS_ROOMINFO), (ROOMINFO_OCCUPANTS, str(occupants))):
            field = ET.SubElement(form, f"{{{NS_DATA}}}field")
            field.set("var", var)
            if var == FORM_TYPE:
                field.set("type", "hidden")
            ET.SubElement(field, f"{{{NS_DATA}}}value").text = value
    reply.send()


async def _mam(router: MucRouter, iq: Iq, room: str, query: ET.Element) -> None:
    user_jid = iq["from"].bare
    try:
        archive_query = _archive_query(query)
        page = await router.rooms.room_archive(user_jid, room, archive_query)
    except GatewayError as exc:
        error(iq, exc)
        return
    queryid = query.get("queryid")
    room_bare = router.room_jid(room)
    for item in page.messages:
        msg = router.component.make_message(mto=iq["from"], mfrom=room_bare, mtype="normal")
        result = ET.SubElement(msg.xml, f"{{{NS_MAM}}}result")
        if queryid:
            result.set("queryid", queryid)
        result.set("id", item.stanza_id)
        forwarded = ET.SubElement(result, f"{{{NS_FORWARD}}}forwarded")
        ET.SubElement(forwarded, f"{{{NS_DELAY}}}delay").set("stamp", stamp(item.timestamp))
        inner = ET.SubElement(forwarded, f"{{{NS_CLIENT}}}message")
        inner.set("type", "groupchat")
        inner.set("from", router.room_jid(room, item.nick))
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


def _parse_stamp(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _archive_query(query: ET.Element) -> ArchiveQuery:
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
