"""The IRC transport: channels as MUC rooms, nicks for private messages, servers as contacts.

One :class:`ServerSession` per (bare JID, IRC server), shared by all of the user's
resources. The MUC router (component/muc.py) calls the :class:`RoomService` methods; the
one-to-one path calls :meth:`send` and :meth:`user_presence`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import Any

from mappings.archive import RoomArchive
from transports.base import (
    AddressError,
    Command,
    CommandResult,
    Form,
    FormField,
    GatewayError,
    NotFound,
    OutboundMessage,
    Transport,
    TransportHost,
    UserPresence,
)
from transports.irc.addressing import (
    IrcAddress,
    check_channel,
    check_nick,
    format_address,
    is_channel_name,
)
from transports.irc.addressing import parse_address as parse_irc_address
from transports.irc.channel import fold
from transports.irc.connection import ConnectOptions
from transports.irc.protocol import UnsafeLine, parse_raw_command
from transports.irc.session import ServerSession
from transports.irc.settings import IrcServerSettings, IrcSettings
from transports.jid_escaping import unescape_localpart
from transports.rooms import ArchivePage, ArchiveQuery, RoomMessage, RoomService

log = logging.getLogger(__name__)

SETTINGS_SCOPE = "server:"
SETTINGS_NODE = "irc-server-settings"
AWAY_SHOWS = ("away", "xa", "dnd")


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
        self.sessions: dict[tuple[str, str], ServerSession] = {}
        #: bare JID → resource → (show, status) of each available resource
        self.presences: dict[str, dict[str, tuple[str, str]]] = {}
        self.archive: RoomArchive | None = None
        #: joins under way: a message sent right after the join presence waits for them
        self._joining: dict[tuple[str, str], asyncio.Event] = {}
        self.version_reply = settings.version_reply
        self.reconnect_attempts = settings.reconnect_attempts
        self.reconnect_delay = settings.reconnect_delay
        self.reconnect_max_delay = settings.reconnect_max_delay

    # -- lifecycle -----------------------------------------------------------------------------

    async def prepare(self) -> None:
        self.archive = RoomArchive(self.host.store, self.name)
        await self.archive.migrate()

    async def start(self) -> None:
        await self._restore_persistent_rooms()

    async def stop(self) -> None:
        sessions = list(self.sessions.values())
        self.sessions.clear()
        await asyncio.gather(
            *(s.stop("Gateway shutting down") for s in sessions), return_exceptions=True
        )
        if self.archive is not None:
            await self.archive.flush()

    async def _restore_persistent_rooms(self) -> None:
        """After a gateway restart, rejoin the rooms users marked persistent (bouncer mode)."""
        rows = await self.host.store.fetch_all(
            "SELECT user_jid, scope FROM user_settings WHERE transport = :transport",
            transport=self.name,
        )
        for user_jid, scope in rows:
            if not str(scope).startswith(SETTINGS_SCOPE):
                continue
            server = str(scope)[len(SETTINGS_SCOPE) :]
            overrides = await self._overrides(user_jid, server)
            rooms = [r for r in overrides.get("persistent_rooms", []) if r]
            if not rooms:
                continue
            try:
                self._check_server(server)
                session = await self._session(user_jid, server, overrides.get("nick"))
            except GatewayError as exc:
                log.warning("cannot restore %s's rooms on %s: %s", user_jid, server, exc.text)
                continue
            for room in rooms:
                with contextlib.suppress(GatewayError):
                    session.keep(check_channel(room))

    # -- hooks for sessions --------------------------------------------------------------------

    async def deliver_event(self, event: Any) -> bool:
        return await self.host.deliver(event)

    def archive_line(
        self, user_jid: str, room: str, nick: str, body: str, notice: bool
    ) -> str | None:
        if not self.settings.archive_rooms or self.archive is None:
            return None
        return self.archive.add_soon(user_jid, room, nick, body, notice=notice).stanza_id

    async def history(
        self, user_jid: str, room: str, resources: tuple[str, ...], max_history: int | None
    ) -> None:
        count = self.settings.history_lines
        if max_history is not None:
            count = min(count, max_history)
        if self.archive is None or count <= 0:
            return
        for item in await self.archive.last(user_jid, room, count):
            await self.host.deliver(
                RoomMessage(
                    user_jid,
                    room,
                    resources,
                    item.nick,
                    item.body,
                    item.stanza_id,
                    timestamp=item.timestamp,
                    notice=item.notice,
                )
            )

    # -- addressing ----------------------------------------------------------------------------

    def parse_address(self, localpart: str) -> str:
        return str(parse_irc_address(localpart, self.settings.fixed_server))

    def format_address(self, address: str) -> str:
        return format_address(self._address(address), self.settings.fixed_server)

    def display_name(self, address: str) -> str:
        parsed = self._address(address)
        return parsed.name or parsed.server

    def parse_room(self, localpart: str) -> str | None:
        if not is_channel_name(unescape_localpart(localpart)):
            return None
        return str(parse_irc_address(localpart, self.settings.fixed_server))

    def format_room(self, room: str) -> str:
        return self.format_address(room)

    def _address(self, address: str) -> IrcAddress:
        """Our own canonical address string back into its parts."""
        name, sep, server = address.rpartition("%")
        if not sep:
            return IrcAddress("server", address)
        if name[:1] in "#&+!":
            return IrcAddress("channel", server, name)
        return IrcAddress("nick", server, name)

    def _check_server(self, server: str) -> IrcServerSettings:
        config = self.settings.servers.get(server)
        if config is None:
            if not self.settings.allow_other_servers:
                raise NotFound(f"{server} is not an IRC server this gateway serves")
            config = IrcServerSettings()
        return config

    # -- sessions ------------------------------------------------------------------------------

    async def _overrides(self, user_jid: str, server: str) -> dict[str, Any]:
        return await self.host.store.settings.get(self.name, user_jid, SETTINGS_SCOPE + server)

    async def _session(self, user_jid: str, server: str, nick: str | None) -> ServerSession:
        session = self.sessions.get((user_jid, server))
        if session is not None:
            return session
        config = self._check_server(server)
        o = await self._overrides(user_jid, server)
        nick = nick or o.get("nick") or _default_nick(user_jid)
        throttle = config.throttle if o.get("throttle", True) else None

        def secret(key: str, value: Any) -> str | None:
            return o.get(key) or (value.get_secret_value() if value is not None else None)

        options = ConnectOptions(
            host=config.host or server,
            port=int(o.get("port") or config.port),
            nick=nick,
            tls=bool(o.get("tls", config.tls)),
            verify_cert=config.verify_cert,
            username=o.get("username") or config.username,
            realname=o.get("realname") or config.realname,
            password=secret("password", config.password),
            sasl_password=secret("sasl_password", config.sasl_password),
            encoding=o.get("encoding") or config.encoding,
            fallback_encoding=config.fallback_encoding,
            burst=throttle.burst if throttle else None,
            lines_per_second=throttle.lines_per_second if throttle else 1.0,
        )
        after = list(config.after_connect) + [c for c in o.get("after_connect", []) if c]
        session = ServerSession(self, user_jid, server, options, after, self._session_gone)
        self.sessions[(user_jid, server)] = session
        session.start()
        return session

    def _session_gone(self, session: ServerSession) -> None:
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
        address = self._address(room)
        check_nick(nick)
        done = self._joining.setdefault((full_jid, room), asyncio.Event())
        try:
            session = await self._session(user_jid, address.server, nick)
            self._presence_changed(user_jid, resource, True, show, status)
            await session.join(resource, address.name, nick, max_history)
        finally:
            done.set()
            self._joining.pop((full_jid, room), None)

    async def leave_room(self, full_jid: str, room: str, status: str = "") -> None:
        user_jid, _, resource = full_jid.partition("/")
        address = self._address(room)
        session = self.sessions.get((user_jid, address.server))
        if session is None:
            return
        await session.leave(resource, fold(address.name), status)
        await self._drop_if_unused(session)

    async def send_room_message(
        self, full_jid: str, room: str, body: str, xmpp_id: str | None, origin_id: str | None
    ) -> None:
        joining = self._joining.get((full_jid, room))
        if joining is not None:
            await joining.wait()
        session, address = self._room_session(full_jid, room)
        await session.say(full_jid, fold(address.name), body, xmpp_id, origin_id)

    async def send_private(
        self, full_jid: str, room: str, nick: str, body: str, xmpp_id: str | None
    ) -> None:
        session, _ = self._room_session(full_jid, room)
        await session.private(check_nick(nick), body, xmpp_id, full_jid)

    async def change_nick(self, full_jid: str, room: str, nick: str) -> None:
        session, address = self._room_session(full_jid, room)
        session.change_nick(fold(address.name), check_nick(nick))

    async def set_subject(self, full_jid: str, room: str, subject: str) -> None:
        session, address = self._room_session(full_jid, room)
        if "\n" in subject or "\r" in subject:
            subject = " ".join(subject.splitlines())
        session.command("TOPIC", address.name, subject)

    async def invite(self, full_jid: str, room: str, invitee: str, reason: str) -> None:
        """INVITE, as an IRC client sends it: IRC carries no reason, so ``reason`` is not sent.

        Mediated (XEP-0045) and direct (XEP-0249) invitations both come here. The user must
        be in the channel (any of their resources, or a persistent room): IRC requires it.
        """
        joining = self._joining.get((full_jid, room))
        if joining is not None:
            await joining.wait()
        address = self._address(room)
        target = parse_irc_address(invitee, self.settings.fixed_server)
        if target.kind != "nick" or target.server != address.server:
            example = self.format_address(f"nick%{address.server}")
            raise GatewayError(
                f"only a nick on {address.server} can be invited to {address.name} "
                f"({example}@{self.host.domain})",
                "not-acceptable",
                "modify",
            )
        session = self.sessions.get((full_jid.partition("/")[0], address.server))
        if session is None:
            raise GatewayError(f"you are not in {address.name}; join it first", "not-acceptable")
        session.invite(address.name, target.name)

    def takes_invitations(self, address: str) -> bool:
        """XEP-0249 invitations reach nicks (not channels, nor servers)."""
        return self._address(address).kind == "nick"

    async def kick(self, full_jid: str, room: str, nick: str, reason: str) -> None:
        session, address = self._room_session(full_jid, room)
        session.command("KICK", address.name, check_nick(nick), *((reason,) if reason else ()))

    async def room_archive(self, user_jid: str, room: str, query: ArchiveQuery) -> ArchivePage:
        if self.archive is None:
            return ArchivePage((), True)
        return await self.archive.query(user_jid, room, query)

    def _room_session(self, full_jid: str, room: str) -> tuple[ServerSession, IrcAddress]:
        user_jid = full_jid.partition("/")[0]
        address = self._address(room)
        session = self.sessions.get((user_jid, address.server))
        if session is None:
            raise GatewayError("you are not in this room; join it first", "not-acceptable")
        return session, address

    # -- one-to-one ----------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> None:
        address = self._address(message.contact)
        if address.kind == "channel":
            raise GatewayError("join the room to talk in it", "not-acceptable")
        session = await self._session(message.user_jid, address.server, None)
        if address.kind == "server":
            try:
                session.raw(parse_raw_command(message.body))
            except UnsafeLine as exc:
                raise GatewayError(str(exc), "bad-request", "modify") from exc
            return
        await session.private(address.name, message.body, message.xmpp_id, message.from_jid)

    async def user_presence(self, presence: UserPresence) -> None:
        user_jid, _, resource = presence.from_jid.partition("/")
        if presence.contact and self.parse_room_address(presence.contact):
            return  # room presence: the MUC router handles it
        self._presence_changed(
            user_jid, resource, presence.available, presence.show, presence.status
        )
        if not presence.available:
            await self.resource_gone(presence.from_jid)

    def parse_room_address(self, contact: str) -> bool:
        return self._address(contact).kind == "channel"

    async def resource_gone(self, full_jid: str) -> None:
        """A resource went offline: it leaves every room (bouncer rooms stay joined)."""
        user_jid, _, resource = full_jid.partition("/")
        for session in [s for (u, _), s in self.sessions.items() if u == user_jid]:
            for key in [k for k, c in session.channels.items() if resource in c.resources]:
                await session.leave(resource, key)
            await self._drop_if_unused(session)

    def _presence_changed(
        self, user_jid: str, resource: str, available: bool, show: str, status: str
    ) -> None:
        """Keep each resource's availability; AWAY on IRC when no resource is plainly online."""
        resources = self.presences.setdefault(user_jid, {})
        if available:
            resources[resource] = (show, status)
        else:
            resources.pop(resource, None)
        away: str | None = None
        if resources and all(show in AWAY_SHOWS for show, _ in resources.values()):
            show, status = next(iter(resources.values()))
            away = status or {"away": "Away", "xa": "Extended away", "dnd": "Busy"}[show]
        if not resources:
            self.presences.pop(user_jid, None)
            away = "Offline"
        for (user, _), session in self.sessions.items():
            if user == user_jid:
                session.set_away(away)

    async def unregistered(self, user_jid: str) -> None:
        for key in [k for k in self.sessions if k[0] == user_jid]:
            await self.sessions.pop(key).stop()

    # -- per-server settings (ad-hoc command) --------------------------------------------------

    def commands(self) -> list[Command]:
        """Per-server settings: on the gateway's JID (it asks which server), and on each server's
        JID (``irc.libera.chat@irc.example.org``), for that server, in one step."""
        return [
            Command(
                node=SETTINGS_NODE,
                name="IRC server settings",
                form=self._settings_first_form,
                run=self._settings_run,
                needs_registration=False,
                on_contact=self._settings_on_server,
            )
        ]

    def _settings_on_server(self, address: str) -> Command | None:
        """The settings command on a server's JID: bound to that server, asking nothing else."""
        parsed = self._address(address)
        if parsed.kind != "server":
            return None
        server = parsed.server
        try:
            self._check_server(server)
        except GatewayError:
            return None

        async def form(user_jid: str) -> Form:
            return await self._settings_form(user_jid, server, ask_server=False)

        async def run(user_jid: str, values: dict[str, Any]) -> CommandResult:
            return await self._save_settings(user_jid, server, values)

        return Command(
            node=SETTINGS_NODE,
            name=f"Settings for {server}",
            form=form,
            run=run,
            needs_registration=False,
        )

    async def _settings_first_form(self, user_jid: str) -> Form:
        if self.settings.fixed_server:
            return await self._settings_form(user_jid, self.settings.fixed_server)
        return Form(
            title="IRC server settings",
            instructions="Which IRC server?",
            fields=(FormField("server", "Server", required=True),),
        )

    async def _settings_form(self, user_jid: str, server: str, ask_server: bool = True) -> Form:
        """The settings, pre-filled; on the gateway's JID the server is a field of the form,
        as the next step needs it; on the server's JID, the JID says it."""
        o = await self._overrides(user_jid, server)
        config = self._check_server(server)
        server_field = (
            (FormField("server", "Server", "text-single", server, required=True),)
            if ask_server
            else ()
        )
        return Form(
            title=f"Settings for {server}",
            instructions="Your own settings for this server; empty fields keep the defaults.",
            fields=(
                *server_field,
                FormField("nick", "Nick", value=o.get("nick", "")),
                FormField("username", "User name", value=o.get("username", "")),
                FormField("realname", "Real name", value=o.get("realname", "")),
                FormField("port", "Port", value=str(o.get("port") or config.port)),
                FormField("tls", "Use TLS", "boolean", bool(o.get("tls", config.tls))),
                FormField("password", "Server password", "text-private"),
                FormField("sasl_password", "SASL password (account: user name)", "text-private"),
                FormField(
                    "after_connect",
                    "Commands after connecting",
                    "text-multi",
                    "\n".join(o.get("after_connect", [])),
                ),
                FormField(
                    "throttle", "Anti-flood throttling", "boolean", bool(o.get("throttle", True))
                ),
                FormField("encoding", "Encoding", value=o.get("encoding") or config.encoding),
                FormField(
                    "persistent_rooms",
                    "Persistent channels (stay joined when offline)",
                    "text-multi",
                    "\n".join(o.get("persistent_rooms", [])),
                ),
            ),
        )

    async def _settings_run(self, user_jid: str, values: dict[str, Any]) -> CommandResult:
        server = self.settings.fixed_server or str(values.get("server") or "").strip().lower()
        address = parse_irc_address(server) if not self.settings.fixed_server else None
        if address is not None and address.kind != "server":
            raise AddressError(f"not a server name: {server!r}")
        self._check_server(server)
        if set(values) <= {"server"}:
            return CommandResult("", next_form=await self._settings_form(user_jid, server))
        return await self._save_settings(user_jid, server, values)

    async def _save_settings(
        self, user_jid: str, server: str, values: dict[str, Any]
    ) -> CommandResult:
        """Validate the submitted settings and store them as the user's overrides."""
        data = await self._overrides(user_jid, server)
        for key in ("nick", "username", "realname", "encoding"):
            if key in values:
                data[key] = str(values[key] or "").strip()
        if data.get("nick"):
            check_nick(data["nick"])
        if data.get("encoding"):
            try:
                "".encode(data["encoding"])
            except LookupError as exc:
                raise GatewayError(
                    f"unknown encoding {data['encoding']!r}", "bad-request", "modify"
                ) from exc
        if str(values.get("port") or "").strip():
            port = str(values["port"]).strip()
            if not port.isdigit() or not 0 < int(port) < 65536:
                raise GatewayError(f"not a port: {port!r}", "bad-request", "modify")
            data["port"] = int(port)
        for key in ("tls", "throttle"):
            if key in values:
                data[key] = bool(values[key])
        for key in ("password", "sasl_password"):
            if str(values.get(key) or ""):
                data[key] = str(values[key])
        if "after_connect" in values:
            commands = [c for c in str(values["after_connect"] or "").splitlines() if c.strip()]
            for command in commands:
                try:
                    parse_raw_command(command)
                except UnsafeLine as exc:
                    raise GatewayError(f"{command!r}: {exc}", "bad-request", "modify") from exc
            data["after_connect"] = commands
        if "persistent_rooms" in values:
            rooms = [r.strip().lower() for r in str(values["persistent_rooms"] or "").split()]
            data["persistent_rooms"] = [check_channel(r) for r in rooms if r]
            session = self.sessions.get((user_jid, server))
            if session is not None:
                for key, channel in session.channels.items():
                    channel.persistent = key in {fold(r) for r in data["persistent_rooms"]}
        await self.host.store.settings.put(self.name, user_jid, SETTINGS_SCOPE + server, data)
        return CommandResult(f"Settings for {server} saved; they apply at the next connection.")


def _default_nick(user_jid: str) -> str:
    """A nick from the JID's local part, made valid for IRC."""
    local = user_jid.partition("@")[0]
    nick = re.sub(r"[^A-Za-z0-9\[\]\\`_^{|}-]", "_", local)[:30]
    if not nick or not re.match(r"[A-Za-z\[\]\\`_^{|}]", nick[0]):
        nick = "x" + nick
    return nick
