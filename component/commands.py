"""XEP-0050 ad-hoc commands: runs a transport's :class:`Command` as a form-and-submit session."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from slixmpp.exceptions import XMPPError
from slixmpp.plugins.xep_0004 import Form as DataForm

from component.stanzas import form_values, missing_required, render_form
from transports.base import Command, Form, GatewayError

if TYPE_CHECKING:
    from component.host import Host

Session = dict[str, Any]


class CommandRunner:
    """Adapts transport commands to slixmpp's xep_0050 session handlers, with access checks."""

    def __init__(self, host: Host) -> None:
        self.host = host

    def handler(self, command: Command) -> Callable[[Any, Session], Awaitable[Session]]:
        async def start(_iq: Any, session: Session) -> Session:
            user = session["from"].bare
            await self._check_access(command, user)
            form = command.form if isinstance(command.form, Form) else await command.form(user)
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
            values = form_values(form, submitted) if isinstance(submitted, DataForm) else {}
            missing = missing_required(form, values)
            if missing:
                raise XMPPError("bad-request", f"please fill in: {', '.join(missing)}", "modify")
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
            return session

        return submit

    async def _check_access(self, command: Command, user: str) -> None:
        if not self.host.is_allowed(user):
            raise XMPPError("forbidden", "your server may not use this gateway", "auth")
        if command.admin_only and user not in self.host.admins:
            raise XMPPError("forbidden", "this command is for the gateway's admins", "auth")
        if command.needs_registration and user not in self.host.admins:
            registration = await self.host.store.registrations.get(self.host.transport_name, user)
            if registration is None:
                raise XMPPError("registration-required", "register with the gateway first", "auth")
