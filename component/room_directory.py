"""A network's room list: disco#items on a server's JID (``irc.example.net@gw``), paged.

Networks list tens of thousands of channels (IRC's LIST), so the answer is paged with RSM
(XEP-0059: ``max``, ``after``, ``before``, ``index``; ``<set>`` with first, last and count).
The list is fetched once when a client starts browsing (a request that names no place in
the list) and then kept for that user and server a short while, so the pages of one
browsing session come from one fetch, and from one consistent list. A request without RSM
gets at most :data:`MAX_ITEMS`, with the ``<set>`` that lets it ask for more.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from slixmpp import Iq
from slixmpp.xmlstream import StanzaBase

from component.room_namespaces import NS_DISCO_ITEMS, NS_RSM
from component.room_occupants import error
from transports.base import GatewayError
from transports.rooms import RoomListing

if TYPE_CHECKING:
    from component.muc import MucRouter

#: Items in one answer, whatever the client asks (a stanza stays well under server limits)
MAX_ITEMS = 500
#: How long a fetched list serves the pages of one browsing session
CACHE_SECONDS = 60.0
#: Lists kept at once (one per user and server); the oldest goes first
CACHE_KEYS = 64


@dataclass(frozen=True)
class PageRequest:
    """An RSM ``<set/>`` of a request; ``before=""`` is the empty ``<before/>`` (last page)."""

    max: int | None = None
    after: str | None = None
    before: str | None = None
    index: int | None = None

    @property
    def starts_browsing(self) -> bool:
        return self.after is None and not self.before and not self.index


@dataclass(frozen=True)
class Page:
    start: int
    end: int


def parse_request(query: ET.Element) -> PageRequest:
    rsm = query.find(f"{{{NS_RSM}}}set")
    if rsm is None:
        return PageRequest()
    values: dict[str, int | None] = {}
    for name in ("max", "index"):
        text = rsm.findtext(f"{{{NS_RSM}}}{name}")
        if text is not None and not text.strip().isdigit():
            raise GatewayError(f"RSM {name} must be a number", "bad-request", "modify")
        values[name] = int(text) if text is not None else None
    before = rsm.find(f"{{{NS_RSM}}}before")
    return PageRequest(
        values["max"],
        rsm.findtext(f"{{{NS_RSM}}}after"),
        None if before is None else (before.text or ""),
        values["index"],
    )


def page(ids: list[str], request: PageRequest) -> Page:
    """The slice of ``ids`` a request asks for (XEP-0059 §2); an unknown ``after`` or
    ``before`` is item-not-found (§2.6: the list changed, or the client is wrong)."""
    size = min(MAX_ITEMS, request.max if request.max is not None else MAX_ITEMS)
    if request.before is not None:
        end = len(ids) if request.before == "" else _position(ids, request.before)
        return Page(max(0, end - size), end)
    if request.after is not None:
        start = _position(ids, request.after) + 1
    else:
        start = min(request.index or 0, len(ids))
    return Page(start, min(len(ids), start + size))


def _position(ids: list[str], item: str) -> int:
    try:
        return ids.index(item)
    except ValueError:
        raise GatewayError(f"{item} is not in the list", "item-not-found") from None


def item_name(listing: RoomListing) -> str:
    """``#chan (12 users): topic``, as clients show a room list."""
    name = listing.room.rpartition("%")[0] or listing.room
    if listing.users is not None:
        name += f" ({listing.users} user{'s' if listing.users != 1 else ''})"
    return f"{name}: {listing.topic}" if listing.topic else name


class RoomDirectory:
    """Room lists of the networks, fetched per browsing session and kept a short while."""

    def __init__(self, router: MucRouter) -> None:
        self.router = router
        self._lists: OrderedDict[tuple[str, str], tuple[float, list[RoomListing]]] = OrderedDict()

    def answer(self, stanza: StanzaBase) -> StanzaBase | None:
        """The incoming filter: None for disco#items on a server's JID (answered), else it."""
        if not isinstance(stanza, Iq) or stanza["type"] != "get":
            return stanza
        to = stanza["to"]
        query = stanza.xml.find(f"{{{NS_DISCO_ITEMS}}}query")
        if query is None or query.get("node") or not to.user or to.resource:
            return stanza
        try:
            if self.router.room_of(to) is not None:
                return stanza
            server = self.router.component.network.parse_address(to.user)
        except GatewayError:
            return stanza
        if "%" in server:
            return stanza  # a nick, not a server
        if not self.router.component.host.is_allowed(stanza["from"].bare):
            error(stanza, GatewayError("your server may not use this gateway", "forbidden", "auth"))
            return None
        self.router.run_soon(self._list(stanza, server, query))
        return None

    async def _list(self, iq: Iq, server: str, query: ET.Element) -> None:
        try:
            request = parse_request(query)
            listings = await self.listings(iq["from"].bare, server, request.starts_browsing)
            ids = [self.router.room_jid(listing.room) for listing in listings]
            selected = page(ids, request)
        except GatewayError as exc:
            error(iq, exc)
            return
        reply = iq.reply(clear=True)
        answer = ET.SubElement(reply.xml, f"{{{NS_DISCO_ITEMS}}}query")
        for index in range(selected.start, selected.end):
            item = ET.SubElement(answer, f"{{{NS_DISCO_ITEMS}}}item")
            item.set("jid", ids[index])
            item.set("name", item_name(listings[index]))
        rsm = ET.SubElement(answer, f"{{{NS_RSM}}}set")
        if selected.end > selected.start:
            first = ET.SubElement(rsm, f"{{{NS_RSM}}}first")
            first.set("index", str(selected.start))
            first.text = ids[selected.start]
            ET.SubElement(rsm, f"{{{NS_RSM}}}last").text = ids[selected.end - 1]
        ET.SubElement(rsm, f"{{{NS_RSM}}}count").text = str(len(ids))
        reply.send()

    async def listings(self, user: str, server: str, fresh: bool) -> list[RoomListing]:
        """The list, from the last fetch for this user and server unless ``fresh`` is asked
        (a new browsing session) or it is older than :data:`CACHE_SECONDS`."""
        key = (user, server)
        kept = self._lists.get(key)
        now = time.monotonic()
        if kept is not None and not fresh and now - kept[0] < CACHE_SECONDS:
            return kept[1]
        listings = await self.router.rooms.list_rooms(user, server)
        for old in [k for k, (when, _) in self._lists.items() if now - when >= CACHE_SECONDS]:
            del self._lists[old]
        self._lists.pop(key, None)
        self._lists[key] = (now, listings)
        while len(self._lists) > CACHE_KEYS:
            self._lists.popitem(last=False)
        return listings
