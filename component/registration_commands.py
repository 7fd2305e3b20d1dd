"""Registration as an ad-hoc command ("Register"), for clients without an XEP-0077 form.

profanity, among others, can run ad-hoc commands but shows no registration form. The command
offers the transport's own registration form and binds through :func:`register_user`, the
one path XEP-0077 takes too, so both accept, refuse and answer alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mappings.registrations import AddressTaken, Registration
from transports.base import Command, CommandResult, Conflict, Form

if TYPE_CHECKING:
    from component.xmpp import GatewayComponent
    from transports.base import Transport

log = logging.getLogger(__name__)

REGISTER_NODE = "portway-register"


async def register_user(
    component: GatewayComponent,
    user: str,
    values: dict[str, Any],
    before_subscribe: Callable[[], Any] | None = None,
) -> Registration:
    """Bind ``user`` with the filled-in registration form; GatewayError says why not.

    The transport validates (an address, a number), the store binds one-to-one, and the
    gateway then asks for the user's presence (XEP-0100), as after any registration;
    ``before_subscribe`` answers the request first where XEP-0100 orders it so (XEP-0077).
    """
    network = component.network
    registered = await network.register(user, values)
    registration = Registration(network.name, user, registered.address, registered.data)
    try:
        await component.host.store.registrations.save(registration)
    except AddressTaken as taken:
        raise Conflict(f"{taken.args[0].split(' is ')[0]} is taken") from None
    log.info("%s: %s registered", component.domain, user)
    if before_subscribe is not None:
        before_subscribe()
    component.send_presence(pto=user, pfrom=component.domain, ptype="subscribe")
    return registration


def shown_address(network: Transport, address: str | None) -> str:
    """The user's own address as people write it (``alice@mail.example.org``, not ``alice``)."""
    return network.own_address_shown(address) if address else ""


def registered_text(component: GatewayComponent, registration: Registration) -> str:
    address = shown_address(component.network, registration.address)
    bound = f" Your address there: {address}." if address else ""
    return f"You are registered with {component.domain}.{bound}"


def register_command(component: GatewayComponent) -> Command:
    async def form(user: str) -> Form:
        current = await component.host.store.registrations.get(component.network.name, user)
        return component.network.registration_form(user, current)

    async def run(user: str, values: dict[str, Any]) -> CommandResult:
        registration = await register_user(component, user, values)
        return CommandResult(registered_text(component, registration))

    return Command(
        node=REGISTER_NODE, name="Register", form=form, run=run, needs_registration=False
    )
