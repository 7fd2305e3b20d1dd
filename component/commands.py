"""XEP-0050 ad-hoc commands: runs a transport's :class:`Command` as a form-and-submit session.

Commands live on the gateway's own JID, and those with ``on_contact`` on contact JIDs too
(:class:`ContactCommands`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

from slixmpp import JID
from slixmpp.exceptions import XMPPError
from slixmpp.plugins.xep_0004 import Form as DataForm
from slixmpp.plugins.xep_0030.stanza import DiscoInfo, DiscoItems

from component.stanzas import form_values, missing_required, render_form, unknown_fields
from transports.base import Command, Form, GatewayError

if TYPE_CHECKING:
    from component.host import Host
    from component.xmpp import GatewayComponent

Session = dict[str, Any]
NS_COMMANDS = "http://jabber.org/protocol/commands"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
#: How long an unfinished command may wait for its form, and how many may wait at once.
SESSION_SECONDS = 600.0
MAX_SESSIONS = 1000
#: Keys this runner adds to slixmpp's session dicts.
STARTED = "portway_started"
DONE = "portway_done"


class CommandRunner:
    """Adapts transport commands to slixmpp's xep_0050 session handlers, with access checks."""

    def __init__(self, host: Host) -> None:
        self.host = host

    def handler(self, command: Command) -> Callable[[Any, Session], Awaitable[Session]]:
        """The command's first step: its form, or at once its result when it asks nothing.

        A command whose form has no field (a status, a list) only shows: sending it as a form
        to submit made clients show an empty form and a "complete" button before the answer.
        """

        async def start(iq: Any, session: Session) -> Session:
            forget_stale(iq.stream.plugin["xep_0050"].sessions, time.monotonic())
            session[STARTED] = time.monotonic()
            user = session["from"].bare
            await self._check_access(command, user)
            form = command.form if isinstance(command.form, Form) else await command.form(user)
            if not form.fields:
                return await self._run(session, command, user, {})
            return self._ask(session, command, form)

        return start

    def _ask(self, session: Session, command: Command, form: Form) -> Session:
        data_form = DataForm()
        render_form(form, data_form)
        session["payload"] = data_form
        session["has_next"] = False
        session["next"] = self._submit(command, form)
        return session

    def _submit(self, command: Command, form: Form) -> Callable[[Any, Session], Awaitable[Session]]:
        async def submit(payload: Any, session: Session) -> Session:
            user = session["from"].bare
            await self._check_access(command, user)
            submitted = payload[0] if isinstance(payload, list) and payload else payload
            values: dict[str, Any] = {}
            if isinstance(submitted, DataForm):
                unknown = unknown_fields(form, submitted)
                if unknown:
                    raise XMPPError(
                        "not-allowed",
                        f"this form does not let you set {', '.join(unknown)}",
                        "cancel",
                    )
                values = form_values(form, submitted)
            missing = missing_required(form, values)
            if missing:
                raise XMPPError("bad-request", f"please fill in: {', '.join(missing)}", "modify")
            return await self._run(session, command, user, values)

        return submit

    async def _run(
        self, session: Session, command: Command, user: str, values: dict[str, Any]
    ) -> Session:
        """Run the command: completed with its note, or on to the form it asks next."""
        try:
            result = await command.run(user, values)
        except GatewayError as error:
            raise XMPPError(
                cast(Any, error.condition), error.text, cast(Any, error.error_type)
            ) from None
        if result.next_form is not None:
            session["notes"] = [("info", result.text)] if result.text else None
            return self._ask(session, command, result.next_form)
        session["payload"] = None
        session["next"] = None
        session["has_next"] = False
        session["notes"] = [("info", result.text)]
        session[DONE] = True
        return session

    async def _check_access(self, command: Command, user: str) -> None:
        if not self.host.is_allowed(user):
            raise XMPPError("forbidden", "your server may not use this gateway", "auth")
        if command.admin_only and user not in self.host.admins:
            raise XMPPError("forbidden", "this command is for the gateway's admins", "auth")
        if command.needs_registration and user not in self.host.admins:
            registration = await self.host.store.registrations.get(self.host.transport_name, user)
            if registration is None:
                raise XMPPError("registration-required", "register with the gateway first", "auth")


def forget_stale(sessions: dict[str, Session], now: float) -> None:
    """Drop this runner's sessions that are done or were left unfinished.

    slixmpp keeps a session until its last step, and a command that completes in its first
    step (a status) or that a client abandons never has one: its sessions would pile up for
    the process's life. (slixmpp's own timeout would send the user a command of ours to
    cancel.) Sessions without ``STARTED`` are not this runner's and are left alone.
    """
    ours = sorted(
        ((session[STARTED], key) for key, session in sessions.items() if STARTED in session),
    )
    for started, key in ours:
        if sessions[key].get(DONE) or now - started > SESSION_SECONDS:
            del sessions[key]
    kept = [key for _started, key in ours if key in sessions]
    for key in kept[: max(0, len(kept) - MAX_SESSIONS + 1)]:
        del sessions[key]


def offered_on(commands: Iterable[Command], address: str) -> list[Command]:
    """The commands a contact's JID offers, each bound to the contact's address."""
    bound = (command.on_contact(address) for command in commands if command.on_contact)
    return [command for command in bound if command is not None]


class ContactCommands:
    """XEP-0050 on contact JIDs (``irc.libera.chat@irc.example.org``): discovery and execution.

    Contact JIDs are not known in advance (any IRC server may be one), so these commands
    cannot be registered per JID the way the gateway's own are. Instead, slixmpp's disco and
    ad-hoc plugins ask the hooks below for every JID; a contact's JID is answered from the
    transport's ``on_contact`` commands, and everything else from the static registrations,
    as before. ``features`` adds what else a contact's disco#info says (the MUC router's
    ``jabber:x:conference``).
    """

    def __init__(
        self,
        component: GatewayComponent,
        commands: Sequence[Command],
        features: Callable[[str], Iterable[str]],
    ) -> None:
        self.component = component
        self.commands = [command for command in commands if command.on_contact is not None]
        self.features = features

    def install(self) -> None:
        adhoc = self.component.plugin["xep_0050"]
        disco = self.component.plugin["xep_0030"]
        adhoc.api.register(self._get_command, "get_command")
        disco.api.register(self._get_info, "get_info")
        disco.api.register(self._get_items, "get_items")

    def address(self, jid: JID) -> str | None:
        """The contact a bare JID of ours names, or None (the gateway, a full JID, no contact)."""
        if jid.domain != self.component.domain or not jid.user or jid.resource:
            return None
        try:
            return self.component.network.parse_address(jid.user)
        except GatewayError:
            return None

    def offered(self, jid: JID) -> list[Command]:
        address = self.address(jid)
        return offered_on(self.commands, address) if address is not None else []

    # slixmpp's API hooks: (jid, node, requester, data); slixmpp always gives the first two.

    async def _get_command(
        self, jid: JID | None, node: str | None, _ifrom: JID | None, _args: Any
    ) -> Any:
        jid = jid or JID(self.component.domain)
        registered = self.component.plugin["xep_0050"].commands.get((jid.full, node))
        if registered is not None:
            return registered
        for command in self.offered(jid):
            if command.node == node:
                return (command.name, self.component.host.commands.handler(command), None, 0)
        return None

    async def _get_info(
        self, jid: JID | None, node: str | None, ifrom: JID | None, args: Any
    ) -> Any:
        address = self.address(jid) if jid is not None else None
        if address is None:
            return self.component.plugin["xep_0030"].static.get_info(jid, node, ifrom, args)
        offered = offered_on(self.commands, address)
        info = DiscoInfo()
        if not node:
            category, kind, name = self.component.network.contact_identity(address)
            info.add_identity(category, kind, name=name)
            info.add_feature(NS_DISCO_INFO)
            if offered:
                info.add_feature(NS_COMMANDS)
            for feature in self.features(address):
                info.add_feature(feature)
            return info
        if node == NS_COMMANDS:
            info.add_identity("automation", "command-list", name="Ad-Hoc commands")
            return info
        for command in offered:
            if command.node == node:
                info.add_identity("automation", "command-node", name=command.name)
                info.add_feature(NS_COMMANDS)
                info.add_feature("jabber:x:data")
                return info
        raise XMPPError("item-not-found")

    async def _get_items(
        self, jid: JID | None, node: str | None, ifrom: JID | None, args: Any
    ) -> Any:
        if jid is None or node != NS_COMMANDS or self.address(jid) is None:
            return self.component.plugin["xep_0030"].static.get_items(jid, node, ifrom, args)
        items = DiscoItems()
        for command in self.offered(jid):
            items.add_item(JID(jid.bare), node=command.node, name=command.name)
        return items
