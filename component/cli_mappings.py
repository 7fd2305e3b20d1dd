"""``portway mappings list|add|remove``: who is registered, bound to what, from the shell.

These work on the database alone, so an admin can bind a user's number or address while
the gateway is stopped, and ``remove`` forgets what the transport keeps exactly as an
unregistration over XMPP does.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from component.config import Config, Transports
from transports.base import AddressError, Transport

#: every transport Portway has, enabled in this config or not: a database shared by several
#: processes (each running some transports) holds them all
TRANSPORT_NAMES: tuple[str, ...] = tuple(Transports.model_fields)


class CliError(Exception):
    """A mistake in the command line or its input, explained to the admin."""


def known_transport(transport: str) -> str:
    if transport not in TRANSPORT_NAMES:
        raise CliError(f"unknown transport {transport!r} (known: {', '.join(TRANSPORT_NAMES)})")
    return transport


def transport_argument(text: str) -> str:
    """``--transport``: an unknown name is a usage error (exit 2) naming the known ones."""
    try:
        return known_transport(text)
    except CliError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def enabled_transport(config: Config, transport: str) -> Any:
    """The transport's config section: binding an address needs its settings (region, domain)."""
    enabled = config.transports.enabled()
    if transport not in enabled:
        names = ", ".join(enabled) or "none"
        raise CliError(f"unknown transport {transport!r} (enabled in this config: {names})")
    return enabled[transport]


def check_user(config: Config, user_jid: str) -> str:
    """The bare JID, lower-cased; it must be of an allowed domain, as over XMPP."""
    user = user_jid.strip().lower()
    local, at, domain = user.partition("@")
    if not at or not local or not domain or "/" in domain:
        raise CliError(f"not a bare JID: {user_jid!r}")
    if domain not in config.allowed_domains:
        raise CliError(
            f"{user_jid} is not in allowed_domains ({', '.join(config.allowed_domains)})"
        )
    return user


def binds_address(network: type[Transport]) -> bool:
    """Whether users have an identity of their own there (a number, a mailbox) to bind."""
    inherited: Any = Transport.own_address
    return getattr(network.own_address, "__func__", None) is not inherited.__func__


async def list_mappings(store: Any, transport: str | None, contacts: bool, out: TextIO) -> None:
    """Tab-separated lines on ``out``; "nothing" is said on standard error, so that the
    output stays empty for scripts."""
    registrations = await store.registrations.list(transport)
    for registration in registrations:
        print(
            f"{registration.transport}\t{registration.user_jid}\t{registration.address or '-'}",
            file=out,
        )
    found = await store.contacts.list(transport) if contacts else []
    for contact in found:
        print(
            f"{contact.transport}\t{contact.user_jid}\tcontact {contact.address}"
            f"\t{contact.display_name or ''}\t{contact.subscription}",
            file=out,
        )
    if not registrations and not found:
        what = "no registrations and no contacts" if contacts else "no registrations"
        print(f"{what} with {transport}" if transport else what, file=sys.stderr)


async def add(
    config: Config,
    store: Any,
    transport: str,
    user_jid: str,
    address: str | None,
    replace: bool,
) -> str:
    """Register the user, binding their own address where the transport has one."""
    from component.gateway import transport_class
    from mappings.registrations import AddressTaken, Registration

    settings = enabled_transport(config, transport)
    user = check_user(config, user_jid)
    network = transport_class(transport)
    current = await store.registrations.get(transport, user)
    if not binds_address(network):
        if address is not None:
            raise CliError(
                f"the {transport} transport binds no address to users; register them with"
                f" `portway mappings add {transport} {user}`"
            )
        if current is not None:
            return f"{user} is already registered with {transport}"
        await store.registrations.save(Registration(transport, user))
        return f"registered {user} with {transport} (it binds no address)"
    if address is None:
        raise CliError(
            f"the {transport} transport binds each user to an address of their own:"
            f" `portway mappings add {transport} {user} ADDRESS`"
        )
    try:
        normalised = network.own_address(settings, address)
    except AddressError as error:
        raise CliError(f"{address!r}: {error.text}") from None
    if current is not None and current.address == normalised:
        return f"{user} is already bound to {transport} address {normalised}"
    if current is not None and current.address and not replace:
        raise CliError(
            f"{user} is already bound to {current.address} on {transport};"
            f" add --replace to bind {normalised} instead"
        )
    try:
        await store.registrations.save(
            Registration(transport, user, normalised, current.data if current else {})
        )
    except AddressTaken as taken:
        raise CliError(f"{normalised} is already bound to {taken.owner}") from None
    return f"bound {transport} address {normalised} to {user}"


async def remove(config: Config, store: Any, transport: str, user_jid: str) -> str:
    """Unregister as over XMPP: the transport forgets its own data (hooks, threads) too."""
    from aiohttp import web

    from component.gateway import transport_class
    from component.host import Host
    from component.metrics import Metrics

    settings = enabled_transport(config, transport)
    user = user_jid.strip().lower()
    if await store.registrations.get(transport, user) is None:
        raise CliError(f"{user_jid} is not registered with {transport}")
    host = Host(transport, settings.jid, config, store, web.Application(), Metrics())
    network = transport_class(transport)(settings, host)
    await network.prepare()
    await network.unregistered(user)
    await store.registrations.remove(transport, user)
    return f"removed {user} from {transport}"
