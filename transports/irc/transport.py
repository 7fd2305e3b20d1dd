"""The IRC transport: channels as MUC rooms, nicks for private messages, servers as contacts.

One :class:`ServerSession` per (bare JID, IRC server), shared by all of the user's
resources. The MUC router (component/muc.py) calls the :class:`RoomService` methods; the
one-to-one path calls :meth:`send` and :meth:`user_presence`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from mappings.archive import ArchivePage, ArchiveQuery, RoomArchive
from mappings.registrations import Registration
from transports.base import (
    Command,
    Form,
    GatewayError,
    NotFound,
    OutboundMessage,
    Transport,
    TransportHost,
    UserPresence,
)
from transports.events import ContactPresence, Refers
from transports.irc import (
    away,
    channel_list,
    channel_messages,
    chat_states,
    identd,
    invites,
    membership,
    moderation,
    refers_store,
    room_names,
    user_commands,
    versions,
)
from transports.irc.addressing import IrcAddress, check_nick, format_address, from_canonical
from transports.irc.addressing import parse_address as parse_irc_address
from transports.irc.history import send_last_lines
from transports.irc.limits import one_line
from transports.irc.opening import open_session, restore_persistent_rooms
from transports.irc.protocol import UnsafeLine, parse_raw_command
from transports.irc.server_settings import ServerSettingsCommand
from transports.irc.session import ServerSession
from transports.irc.session_table import SessionTable
from transports.irc.settings import IrcServerSettings, IrcSettings
from transports.irc.settings_command import SETTINGS_SCOPE
from transports.rooms import RoomListing, RoomService

log = logging.getLogger(__name__)


class IrcTransport(Transport, RoomService):
    name = "irc"
    gateway_type = "irc"
    title = "IRC"
    requires_registration = False
    supports_rooms = True
    roster_contacts = False
    prompt_desc = "Enter an IRC nick or channel, as nick%server or #channel%server"
    prompt_label = "IRC address"

    settings: IrcSettings

    def __init__(self, settings: IrcSettings, host: TransportHost) -> None:
        super().__init__(settings, host)
        self.sessions = SessionTable()
        #: bare JID → resource → (show, status) of each available resource
        self.presences: dict[str, dict[str, tuple[str, str]]] = {}
        self.archive: RoomArchive | None = None
        #: the identd listener (identd_port), while the transport runs
        self._identd: identd.IdentServer | None = None
        #: joins under way: a message sent right after the join presence waits for them
        self._joining: dict[tuple[str, str], asyncio.Event] = {}
        #: sessions being opened (opening.py): joins at once wait for the first
        self.opening: dict[tuple[str, str], asyncio.Future[ServerSession]] = {}
        self.reload(settings)

    def reload(self, settings: IrcSettings) -> None:
        """At start, and on SIGHUP: servers and defaults apply to the next connection; the
        open ones stay as they are (identd keeps its port until a restart)."""
        self.settings = settings
        self.version_reply = settings.version_reply
        self.reconnect_attempts = settings.reconnect_attempts
        self.reconnect_delay = settings.reconnect_delay
        self.reconnect_max_delay = settings.reconnect_max_delay

    # -- lifecycle -----------------------------------------------------------------------------

    async def prepare(self) -> None:
        self.archive = RoomArchive(self.host.store, self.name)
        await self.archive.migrate()

    async def start(self) -> None:
        if self.settings.identd_port is not None:  # before any connection asks for ident
            self._identd = await identd.serve(self.settings.identd_host, self.settings.identd_port)
        await restore_persistent_rooms(self)

    async def stop(self) -> None:
        sessions = list(self.sessions.values())
        self.sessions.clear()
        await asyncio.gather(
            *(s.stop("Gateway shutting down") for s in sessions), return_exceptions=True
        )
        if self.archive is not None:
            await self.archive.flush()
        if self._identd is not None:
            self._identd.close()
            await self._identd.wait_closed()
            self._identd = None

    # -- hooks for sessions --------------------------------------------------------------------

    async def deliver_event(self, event: Any) -> bool:
        event = await refers_store.tie(self, event)
        if event is None:
            return True
        server = isinstance(event, ContactPresence) and "%" not in (event.contact or "%")
        if server:  # the server JID's "connected as": to its subscribers only (as biboumi)
            known = await self.host.store.contacts.get(self.name, event.user_jid, event.contact)
            if known is None or known.subscription == "none":
                return False
        return await self.host.deliver(event)

    def archive_line(
        self,
        user_jid: str,
        room: str,
        nick: str,
        body: str,
        notice: bool,
        *,
        timestamp: float | None = None,
        msgid: str | None = None,
    ) -> str | None:
        if not self.settings.archive_rooms or self.archive is None:
            return None
        kept = self.archive.add_soon(
            user_jid, room, nick, body, notice=notice, timestamp=timestamp, stanza_id=msgid
        )
        return kept.stanza_id

    async def history(
        self, user_jid: str, room: str, resources: tuple[str, ...], max_history: int | None
    ) -> None:
        await send_last_lines(self, user_jid, room, resources, max_history)

    def handed_out(self, taken_at: float) -> None:
        # IRC has no outbox, so no worker counts its delivery: the line on the socket does.
        self.host.handed_out(self.name, taken_at)

    # -- addressing ----------------------------------------------------------------------------

    def parse_address(self, localpart: str) -> str:
        return str(parse_irc_address(localpart, self.settings.fixed_server))

    def format_address(self, address: str) -> str:
        return format_address(self.split_address(address), self.settings.fixed_server)

    def display_name(self, address: str) -> str:
        parsed = self.split_address(address)
        return parsed.name or parsed.server

    def contact_identity(self, address: str) -> tuple[str, str, str]:
        parsed = self.split_address(address)
        if parsed.kind == "server":  # as biboumi's: its rooms are listed here (disco#items)
            return ("conference", "irc", f"IRC server {parsed.server} over Portway")
        return super().contact_identity(address)

    def parse_room(self, localpart: str) -> str | None:
        return room_names.parse_room(localpart, self.settings.fixed_server)

    def format_room(self, room: str) -> str:
        if room.rpartition("%")[0][:1] not in ("#", "&", "+", "!"):
            return self.format_address(room)  # not a channel: no room of ours, never kept
        return room_names.format_room(room, self.settings.fixed_server)

    def split_address(self, address: str) -> IrcAddress:
        return from_canonical(address)

    def check_server(self, server: str) -> IrcServerSettings:
        config = self.settings.servers.get(server)
        if config is None:
            if not self.settings.allow_other_servers:
                raise NotFound(f"{server} is not an IRC server this gateway serves")
            config = IrcServerSettings()
        return config

    # -- sessions ------------------------------------------------------------------------------

    async def overrides(self, user_jid: str, server: str) -> dict[str, Any]:
        return await self.host.store.settings.get(self.name, user_jid, SETTINGS_SCOPE + server)

    async def _session(self, user_jid: str, server: str, nick: str | None) -> ServerSession:
        return await open_session(self, user_jid, server, nick)

    def session_gone(self, session: ServerSession) -> None:
        if self.sessions.get((session.user_jid, session.server)) is session:
            del self.sessions[(session.user_jid, session.server)]

    async def _drop_if_unused(self, session: ServerSession) -> None:
        if not session.wanted and self.sessions.get((session.user_jid, session.server)) is session:
            del self.sessions[(session.user_jid, session.server)]
            await session.stop()

    # -- rooms (called by component/muc.py) ----------------------------------------------------

    async def join_room(
        self, full_jid: str, room: str, nick: str, max_history: int | None, show: str, status: str
    ) -> None:
        user_jid, _, resource = full_jid.partition("/")
        address = self.split_address(room)
        check_nick(nick)
        done = self._joining.setdefault((full_jid, room), asyncio.Event())
        try:
            session = await self._session(user_jid, address.server, nick)
            away.presence_changed(self, user_jid, resource, True, show, status)
            await membership.join(session, resource, address.name, nick, max_history)
        finally:
            done.set()
            self._joining.pop((full_jid, room), None)

    async def leave_room(self, full_jid: str, room: str, status: str = "") -> None:
        user_jid, _, resource = full_jid.partition("/")
        address = self.split_address(room)
        session = self.sessions.get((user_jid, address.server))
        if session is None:
            return
        await membership.leave(session, resource, session.fold(address.name), status)
        await self._drop_if_unused(session)

    async def send_room_message(
        self,
        full_jid: str,
        room: str,
        body: str,
        xmpp_id: str | None,
        origin_id: str | None,
        refers: Refers | None = None,
    ) -> None:
        taken_at = time.time()
        await self._joined(full_jid, room)
        session, address = self._room_session(full_jid, room)
        referring = None
        if refers is not None:
            referring = await refers_store.room_outgoing(self, session, room, body, refers)
        await channel_messages.say(
            session,
            full_jid,
            session.fold(address.name),
            body,
            xmpp_id,
            origin_id,
            referring,
            taken_at,
        )

    async def send_private(
        self,
        full_jid: str,
        room: str,
        nick: str,
        body: str,
        xmpp_id: str | None,
        refers: Refers | None = None,
    ) -> None:
        taken_at = time.time()
        session, address = self._room_session(full_jid, room)
        key = session.fold(address.name)
        await refers_store.send_private(
            self, session, check_nick(nick), body, xmpp_id, full_jid, refers, key, taken_at
        )

    async def change_nick(self, full_jid: str, room: str, nick: str) -> None:
        session, address = self._room_session(full_jid, room)
        session.change_nick(session.fold(address.name), check_nick(nick))

    async def set_subject(self, full_jid: str, room: str, subject: str) -> None:
        session, address = self._room_session(full_jid, room)
        session.command("TOPIC", address.name, one_line(subject))

    async def invite(self, full_jid: str, room: str, invitee: str, reason: str) -> None:
        await self._joined(full_jid, room)
        invites.invite(self, full_jid.partition("/")[0], self.split_address(room), invitee)

    def takes_invitations(self, address: str) -> bool:
        """XEP-0249 invitations reach nicks (not channels, nor servers)."""
        return self.split_address(address).kind == "nick"

    async def kick(self, full_jid: str, room: str, nick: str, reason: str) -> None:
        session, address = self._room_session(full_jid, room)
        # As an IRC client's /kick: the reason is one line (its line breaks become spaces).
        reason = one_line(reason)
        session.command("KICK", address.name, check_nick(nick), *((reason,) if reason else ()))

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
        session, address = self._room_session(full_jid, room)
        await moderation.moderate(
            session, address.name, check_nick(nick), role, affiliation, reason
        )

    async def list_rooms(self, user_jid: str, server: str) -> list[RoomListing]:
        session = await self._session(user_jid, self.split_address(server).server, None)
        await session.wait_connected(channel_list.LIST_TIMEOUT)
        return await channel_list.list_channels(session)

    async def occupant_version(self, full_jid: str, room: str | None, nick: str) -> str:
        address = self.split_address(room if room is not None else nick)
        session = self.sessions.get((full_jid.partition("/")[0], address.server))
        if session is None:
            raise GatewayError(f"not connected to {address.server}", "service-unavailable")
        return await versions.ask(session, check_nick(nick if room else address.name))

    async def room_chat_state(self, full_jid: str, room: str, state: str) -> None:
        with contextlib.suppress(GatewayError):
            session, address = self._room_session(full_jid, room)
            if session.fold(address.name) in session.channels:
                chat_states.send_typing(session, address.name, state)

    async def chat_state(self, from_jid: str, contact: str, state: str) -> None:
        address = self.split_address(contact)
        session = self.sessions.get((from_jid.partition("/")[0], address.server))
        if session is not None and address.kind == "nick":
            chat_states.send_typing(session, address.name, state)

    async def room_archive(self, user_jid: str, room: str, query: ArchiveQuery) -> ArchivePage:
        if self.archive is None:
            return ArchivePage((), True)
        return await self.archive.query(user_jid, room, query)

    async def _joined(self, full_jid: str, room: str) -> None:
        """Return once a join of ``room`` by ``full_jid`` under way (if any) is done."""
        joining = self._joining.get((full_jid, room))
        if joining is not None:
            await joining.wait()

    def _room_session(self, full_jid: str, room: str) -> tuple[ServerSession, IrcAddress]:
        user_jid = full_jid.partition("/")[0]
        address = self.split_address(room)
        session = self.sessions.get((user_jid, address.server))
        if session is None:
            raise GatewayError("you are not in this room; join it first", "not-acceptable")
        return session, address

    # -- one-to-one ----------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> None:
        taken_at = time.time()
        address = self.split_address(message.contact)
        if address.kind == "channel":
            raise GatewayError("join the room to talk in it", "not-acceptable")
        session = await self._session(message.user_jid, address.server, None)
        if address.kind == "server":
            try:
                user_commands.raw(
                    session, parse_raw_command(message.body), message.xmpp_id, message.from_jid
                )
            except UnsafeLine as exc:
                raise GatewayError(str(exc), "bad-request", "modify") from exc
            return
        m = message
        await refers_store.send_private(
            self, session, address.name, m.body, m.xmpp_id, m.from_jid, m.refers, None, taken_at
        )

    async def user_presence(self, presence: UserPresence) -> None:
        user_jid, _, resource = presence.from_jid.partition("/")
        if presence.contact and self.parse_room_address(presence.contact):
            if presence.available:  # a show in a room: AWAY only, the join is not replayed
                away.presence_changed(
                    self, user_jid, resource, True, presence.show, presence.status
                )
            return  # joins and leaves: the MUC router handles them
        away.presence_changed(
            self, user_jid, resource, presence.available, presence.show, presence.status
        )
        if not presence.available:
            await self.resource_gone(presence.from_jid)

    def parse_room_address(self, contact: str) -> bool:
        return self.split_address(contact).kind == "channel"

    async def resource_gone(self, full_jid: str) -> None:
        """A resource went offline: it leaves every room (bouncer rooms stay joined)."""
        user_jid, _, resource = full_jid.partition("/")
        for session in self.sessions.of_user(user_jid):
            for key in [k for k, c in session.channels.items() if resource in c.resources]:
                await membership.leave(session, resource, key)
            await self._drop_if_unused(session)

    def registration_form(self, user_jid: str, current: Registration | None) -> Form:
        """IRC needs none: the form says so, and what registering does all the same."""
        return Form(
            f"Register with {self.title}",
            f"{self.settings.jid} needs no registration: join channels and write to nicks as"
            " you are. Registering only adds the gateway to your contacts.",
        )

    async def unregistered(self, user_jid: str) -> None:
        for session in self.sessions.of_user(user_jid):
            await self.sessions.pop((user_jid, session.server)).stop()

    # -- per-server settings (ad-hoc command) --------------------------------------------------

    def commands(self) -> list[Command]:
        return ServerSettingsCommand(self).commands()
