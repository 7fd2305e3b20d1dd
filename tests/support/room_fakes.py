"""A room service and a component that record, for unit tests of the MUC side.

The component is a real slixmpp ``ComponentXMPP`` (so stanzas are built and serialised as
they are on the wire, in ``jabber:component:accept``) whose sending only records.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from types import SimpleNamespace
from typing import Any

from slixmpp import JID, ComponentXMPP
from slixmpp.xmlstream import StanzaBase

from component.goodbye import ContactsShown
from component.muc import MucRouter
from mappings.archive import ArchivePage, ArchiveQuery
from transports.base import GatewayError
from transports.events import Refers
from transports.rooms import RoomListing, RoomService

GW = "irc.gw"
COMPONENT_NS = "jabber:component:accept"


class FakeRooms(RoomService):
    """Records every call; ``fail`` makes the named method raise that GatewayError."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.fail: dict[str, GatewayError] = {}
        self.listing: list[RoomListing] = []
        self.version = "irssi 1.4"

    def _call(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append((name, args, kwargs))
        if name in self.fail:
            raise self.fail[name]

    def called(self, name: str) -> list[tuple[Any, ...]]:
        return [args for call, args, _ in self.calls if call == name]

    def parse_room(self, localpart: str) -> str | None:
        local = localpart.replace("\\23", "#")
        return local if local.startswith("#") else None

    def format_room(self, room: str) -> str:
        return room

    async def join_room(
        self, full_jid: str, room: str, nick: str, max_history: int | None, show: str, status: str
    ) -> None:
        self._call("join_room", full_jid, room, nick, max_history, show, status)

    async def leave_room(self, full_jid: str, room: str, status: str = "") -> None:
        self._call("leave_room", full_jid, room, status)

    async def send_room_message(
        self,
        full_jid: str,
        room: str,
        body: str,
        xmpp_id: str | None,
        origin_id: str | None,
        refers: Refers | None = None,
    ) -> None:
        # what a message refers to is recorded only when there is something
        extra = (refers,) if refers else ()
        self._call("send_room_message", full_jid, room, body, xmpp_id, origin_id, *extra)

    async def send_private(
        self,
        full_jid: str,
        room: str,
        nick: str,
        body: str,
        xmpp_id: str | None,
        refers: Refers | None = None,
    ) -> None:
        extra = (refers,) if refers else ()
        self._call("send_private", full_jid, room, nick, body, xmpp_id, *extra)

    async def change_nick(self, full_jid: str, room: str, nick: str) -> None:
        self._call("change_nick", full_jid, room, nick)

    async def set_subject(self, full_jid: str, room: str, subject: str) -> None:
        self._call("set_subject", full_jid, room, subject)

    async def invite(self, full_jid: str, room: str, invitee: str, reason: str) -> None:
        self._call("invite", full_jid, room, invitee, reason)

    async def kick(self, full_jid: str, room: str, nick: str, reason: str) -> None:
        self._call("kick", full_jid, room, nick, reason)

    async def room_archive(self, user_jid: str, room: str, query: ArchiveQuery) -> ArchivePage:
        return ArchivePage((), True)

    async def moderate(
        self,
        full_jid: str,
        room: str,
        nick: str,
        *,
        role: str | None = None,
        affiliation: str | None = None,
        reason: str = "",
    ) -> None:
        self._call(
            "moderate", full_jid, room, nick, role=role, affiliation=affiliation, reason=reason
        )

    async def room_chat_state(self, full_jid: str, room: str, state: str) -> None:
        self._call("room_chat_state", full_jid, room, state)

    async def list_rooms(self, user_jid: str, server: str) -> list[RoomListing]:
        self._call("list_rooms", user_jid, server)
        return list(self.listing)

    async def occupant_version(self, full_jid: str, room: str | None, nick: str) -> str:
        self._call("occupant_version", full_jid, room, nick)
        return self.version


class FakeHost:
    def is_allowed(self, user: str) -> bool:
        return not user.endswith("@evil.example")


class FakeNetwork:
    title = "IRC"
    gateway_type = "irc"
    settings = SimpleNamespace(name="")

    def __init__(self) -> None:
        self.chat_states: list[tuple[str, str, str]] = []

    def format_address(self, address: str) -> str:
        return address

    def parse_address(self, localpart: str) -> str:
        """``nick%server``, or ``server`` alone (the server's own JID), as IRC has them."""
        if not localpart or localpart.startswith("%"):
            raise GatewayError("not an address", "jid-malformed", "modify")
        return localpart

    async def chat_state(self, from_jid: str, contact: str, state: str) -> None:
        self.chat_states.append((from_jid, contact, state))


class FakeComponent(ComponentXMPP):
    """A component that keeps what it sends (after its outgoing filters) instead."""

    def __init__(self) -> None:
        super().__init__(GW, "secret")
        self.sent: list[StanzaBase] = []
        self.host = FakeHost()
        self.network = FakeNetwork()
        self.domain = GW
        self.occupancy = SimpleNamespace(is_room_traffic=lambda _stanza: False)
        self.contacts_shown = ContactsShown()
        self.online: dict[str, set[str]] = {}
        self.muc: MucRouter | None = None
        self.register_plugin("xep_0030")

    def send(self, data: Any, use_filters: bool = True) -> None:
        if use_filters:
            for keep in getattr(self, "_XMLStream__filters")["out"]:  # noqa: B009
                data = keep(data)
        self.sent.append(data)

    def contact_jid(self, address: str | None, resource: str | None = None) -> JID:
        if address is None:
            return JID(GW)
        return JID(f"{address}@{GW}/{resource}" if resource else f"{address}@{GW}")

    def take(self) -> list[StanzaBase]:
        sent, self.sent = self.sent, []
        return sent


def make_router() -> tuple[MucRouter, FakeRooms, FakeComponent]:
    component = FakeComponent()
    rooms = FakeRooms()
    router = MucRouter(component, rooms)
    component.muc = router
    router.setup()
    return router, rooms, component


def incoming(component: FakeComponent, xml: str) -> StanzaBase:
    """A stanza as the component receives it from the XMPP server."""
    element = ET.fromstring(
        xml.replace("<message ", f"<message xmlns='{COMPONENT_NS}' ", 1)
        .replace("<presence ", f"<presence xmlns='{COMPONENT_NS}' ", 1)
        .replace("<iq ", f"<iq xmlns='{COMPONENT_NS}' ", 1)
    )
    return component._build_stanza(element)
