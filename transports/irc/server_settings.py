"""The per-server settings of the IRC transport, as an ad-hoc command (XEP-0050).

On the gateway's JID it asks which server first; on a server's JID
(``irc.libera.chat@irc.example.org``) it is bound to that server, in one step. The form and
its checks are in settings_command.py; this holds the steps and the store.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from transports.base import Command, CommandResult, Form, GatewayError
from transports.irc.settings_command import (
    OTHER_SERVER,
    SETTINGS_SCOPE,
    server_choice,
    server_of,
    settings_form,
    validated,
    without_admin_values,
)
from transports.irc.user_settings import ServerPolicy

if TYPE_CHECKING:
    from transports.irc.transport import IrcTransport

SETTINGS_NODE = "irc-server-settings"


class ServerSettingsCommand:
    """The settings command of one transport: its steps, reading and writing the store."""

    def __init__(self, transport: IrcTransport) -> None:
        self.transport = transport

    def commands(self) -> list[Command]:
        """Per-server settings: on the gateway's JID (it asks which server), and on each server's
        JID (``irc.libera.chat@irc.example.org``), for that server, in one step."""
        return [
            Command(
                node=SETTINGS_NODE,
                name="IRC server settings",
                form=self._first_form,
                run=self._run,
                needs_registration=False,
                on_contact=self._on_server,
            )
        ]

    def _on_server(self, address: str) -> Command | None:
        """The settings command on a server's JID: bound to that server, asking nothing else."""
        parsed = self.transport.split_address(address)
        if parsed.kind != "server":
            return None
        server = parsed.server
        try:
            self.transport.check_server(server)
        except GatewayError:
            return None

        async def form(user_jid: str) -> Form:
            return await self._form(user_jid, server, ask_server=False)

        async def run(user_jid: str, values: dict[str, Any]) -> CommandResult:
            return await self._save(user_jid, server, values)

        return Command(
            node=SETTINGS_NODE,
            name=f"Settings for {server}",
            form=form,
            run=run,
            needs_registration=False,
        )

    async def _first_form(self, user_jid: str) -> Form:
        if self.transport.settings.fixed_server:
            return await self._form(user_jid, self.transport.settings.fixed_server)
        settings = self.transport.settings
        return Form(
            title="IRC server settings",
            instructions="Which IRC server?",
            fields=server_choice(list(settings.servers), settings.allow_other_servers),
        )

    async def _form(self, user_jid: str, server: str, ask_server: bool = True) -> Form:
        """On the gateway's JID the server is a field of the form, as the next step needs it;
        on the server's JID, the JID says it."""
        config = self.transport.check_server(server)
        policy = ServerPolicy.of(self.transport.settings, server)
        overrides = await self.transport.overrides(user_jid, server)
        return settings_form(server, config, policy, overrides, default_nick(user_jid), ask_server)

    async def _run(self, user_jid: str, values: dict[str, Any]) -> CommandResult:
        server = server_of(values, self.transport.settings.fixed_server)
        self.transport.check_server(server)
        if set(values) <= {"server", OTHER_SERVER}:
            return CommandResult("", next_form=await self._form(user_jid, server))
        return await self._save(user_jid, server, values)

    async def _save(self, user_jid: str, server: str, values: dict[str, Any]) -> CommandResult:
        """Validate the submitted settings, and store what differs from the admin's."""
        config = self.transport.check_server(server)
        policy = ServerPolicy.of(self.transport.settings, server)
        stored = await self.transport.overrides(user_jid, server)
        data = await validated(server, config, policy, stored, values, default_nick(user_jid))
        data = without_admin_values(server, config, data)
        if "persistent_rooms" in values:
            session = self.transport.sessions.get((user_jid, server))
            if session is not None:
                keep = {session.fold(r) for r in data.get("persistent_rooms", [])}
                for key, channel in session.channels.items():
                    channel.persistent = key in keep
        await self.transport.host.store.settings.put(
            self.transport.name, user_jid, SETTINGS_SCOPE + server, data
        )
        return CommandResult(f"Settings for {server} saved; they apply at the next connection.")


def default_nick(user_jid: str) -> str:
    """A nick from the JID's local part, made valid for IRC."""
    local = user_jid.partition("@")[0]
    nick = re.sub(r"[^A-Za-z0-9\[\]\\`_^{|}-]", "_", local)[:30]
    if not nick or not re.match(r"[A-Za-z\[\]\\`_^{|}]", nick[0]):
        nick = "x" + nick
    return nick
