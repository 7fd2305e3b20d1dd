"""Moderation from the room (XEP-0045 §8, §9: ``muc#admin``) as ``RoomService.moderate``.

A kick (role ``none``), voice (``participant``) or its removal (``visitor``), op
(``moderator``) and a ban (affiliation ``outcast``) each become one call; on IRC, KICK,
MODE ±v, ±o and a +b mask. The network's refusal (not a channel operator, say) comes back
as the IQ's error. Lists (an IQ get) are not kept on this side: IRC has no affiliations to
list but its ban list, so a get says feature-not-implemented, as biboumi does.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from slixmpp import JID, Iq
from slixmpp.jid import InvalidJID
from slixmpp.xmlstream import StanzaBase

from component.room_namespaces import NS_MUC_ADMIN
from component.room_occupants import error
from transports.base import GatewayError

if TYPE_CHECKING:
    from component.muc import MucRouter

ROLES = frozenset({"none", "visitor", "participant", "moderator"})
AFFILIATIONS = frozenset({"outcast", "none", "member", "admin", "owner"})


def answer(router: MucRouter, stanza: StanzaBase) -> StanzaBase | None:
    """The incoming filter: None for a muc#admin query to a room (answered), else ``stanza``."""
    if not isinstance(stanza, Iq) or stanza["type"] not in ("get", "set"):
        return stanza
    query = stanza.xml.find(f"{{{NS_MUC_ADMIN}}}query")
    if query is None:
        return stanza
    try:
        room = router.room_of(stanza["to"])
    except GatewayError as exc:
        error(stanza, exc)
        return None
    if room is None:
        return stanza
    if stanza["to"].resource:
        error(stanza, GatewayError("ask the room's bare JID", "bad-request", "modify"))
    elif not router.component.host.is_allowed(stanza["from"].bare):
        error(stanza, GatewayError("your server may not use this gateway", "forbidden", "auth"))
    elif stanza["type"] == "get":
        error(
            stanza,
            GatewayError(
                "this room keeps no lists of roles or affiliations", "feature-not-implemented"
            ),
        )
    else:
        router.run_soon(_moderate(router, stanza, room, query))
    return None


async def _moderate(router: MucRouter, iq: Iq, room: str, query: ET.Element) -> None:
    try:
        items = [_change(item) for item in query.iterfind(f"{{{NS_MUC_ADMIN}}}item")]
        if not items:
            raise GatewayError("no item to change", "bad-request", "modify")
        for nick, role, affiliation, reason in items:
            await router.rooms.moderate(
                str(iq["from"]), room, nick, role=role, affiliation=affiliation, reason=reason
            )
    except GatewayError as exc:
        error(iq, exc)
        return
    iq.reply(clear=True).send()


def _change(item: ET.Element) -> tuple[str, str | None, str | None, str]:
    """(nick, role, affiliation, reason) of one ``<item/>``; the occupant named by its nick,
    or by its real JID (``nick%server@gw``, as occupant items show it)."""
    role = item.get("role")
    affiliation = item.get("affiliation")
    if role is None and affiliation is None:
        raise GatewayError("an item changes a role or an affiliation", "bad-request", "modify")
    if role is not None and role not in ROLES:
        raise GatewayError(f"no such role: {role}", "bad-request", "modify")
    if affiliation is not None and affiliation not in AFFILIATIONS:
        raise GatewayError(f"no such affiliation: {affiliation}", "bad-request", "modify")
    nick = item.get("nick") or _nick_of(item.get("jid", ""))
    if not nick:
        raise GatewayError("name the occupant by nick or JID", "bad-request", "modify")
    reason = item.findtext(f"{{{NS_MUC_ADMIN}}}reason") or ""
    return nick, role, affiliation, reason


def _nick_of(text: str) -> str:
    if not text:
        return ""
    try:
        local = JID(text).user
    except InvalidJID:
        return ""
    return local.rpartition("%")[0] if "%" in local else local
