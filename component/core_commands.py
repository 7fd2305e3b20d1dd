"""Ad-hoc commands every component offers, whatever its transport.

Not every client has a registration UI, but most can run ad-hoc commands: these give such
users (and admins) the same things through XEP-0050.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from component.registration_commands import register_command, registered_text, shown_address
from transports.base import Command, CommandResult, Form, FormField, GatewayError

if TYPE_CHECKING:
    from component.xmpp import GatewayComponent


def core_commands(component: GatewayComponent) -> list[Command]:
    transport = component.network.name
    store = component.host.store

    async def status(user: str, _values: dict[str, Any]) -> CommandResult:
        registration = await store.registrations.get(transport, user)
        if registration is not None:
            return CommandResult(registered_text(component, registration))
        if component.network.requires_registration:
            return CommandResult(
                f"You are not registered with {component.domain}. "
                "Register with the command 'Register', or your client's registration."
            )
        # Where registration is optional, the transport's form says what it is for.
        return CommandResult(component.network.registration_form(user, None).instructions)

    async def unregister(user: str, values: dict[str, Any]) -> CommandResult:
        if not values.get("confirm"):
            return CommandResult("Nothing changed.")
        if await store.registrations.get(transport, user) is None:
            raise GatewayError("you are not registered", "item-not-found")
        await component.forget_user(user)
        return CommandResult(f"You are no longer registered with {component.domain}.")

    async def registrations(_user: str, _values: dict[str, Any]) -> CommandResult:
        listed = await store.registrations.list(transport)
        lines = [
            f"{r.user_jid}  {shown_address(component.network, r.address)}".rstrip() for r in listed
        ]
        return CommandResult(f"{len(lines)} registered:\n" + "\n".join(lines))

    return [
        register_command(component),
        Command(
            node="portway-status",
            name="Show my registration",
            form=Form("Registration", "Show whether you are registered, and your address."),
            run=status,
            needs_registration=False,
        ),
        Command(
            node="portway-unregister",
            name="Unregister",
            form=Form(
                "Unregister",
                f"Forget your registration with {component.domain} and everything kept for it.",
                (FormField("confirm", "Yes, unregister me", type="boolean", value=False),),
            ),
            run=unregister,
        ),
        Command(
            node="portway-registrations",
            name="List registered users (admins)",
            form=Form("Registered users", "List the users registered with this gateway."),
            run=registrations,
            admin_only=True,
            needs_registration=False,
        ),
    ]
