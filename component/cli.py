"""``portway``: run the gateway, check a config, and manage mappings."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from component.config import Config, ConfigError, load_config, readable_secrets_warning
from component.queue_cli import add_queue_parser, run_queue
from transports.base import AddressError


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "config", None):
        parser.error("the config file is required: -c FILE")
    try:
        config = load_config(args.config)
    except ConfigError as error:
        for problem in error.problems:
            print(f"{args.config}: {problem}", file=sys.stderr)
        return 2
    if args.command == "check-config":
        enabled = ", ".join(config.transports.enabled()) or "none"
        print(f"{args.config}: OK (transports: {enabled})")
        warning = readable_secrets_warning(args.config, config)
        if warning:
            print(warning, file=sys.stderr)
        return 0
    if args.command == "run":
        return _run(config, readable_secrets_warning(args.config, config))
    if args.command == "queue":
        return run_queue(config, args)
    try:
        return asyncio.run(_mappings(config, args))
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


class CliError(Exception):
    """A mistake in the command line or its input, explained to the admin."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="portway", description="XMPP gateway to IRC, SMS, email and webhooks"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def with_config(sub: argparse.ArgumentParser, required: bool = True) -> argparse.ArgumentParser:
        sub.add_argument("-c", "--config", required=required, help="the YAML config file")
        return sub

    with_config(commands.add_parser("run", help="run the gateway"))
    with_config(commands.add_parser("check-config", help="validate a config file"))
    # -c may come before or after the action: `portway mappings list -c FILE`
    mappings = with_config(
        commands.add_parser("mappings", help="list and edit mappings"), required=False
    )
    actions = mappings.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="registrations (and contacts with --contacts)")
    listing.add_argument("--transport")
    listing.add_argument("--contacts", action="store_true")
    add = actions.add_parser("add", help="bind a user's own foreign address")
    add.add_argument("transport")
    add.add_argument("user_jid")
    add.add_argument("address")
    remove = actions.add_parser("remove", help="unregister a user and forget their data")
    remove.add_argument("transport")
    remove.add_argument("user_jid")
    export = actions.add_parser("export", help="write everything as JSON lines")
    export.add_argument("--output", "-o", help="file (default: standard output)")
    load = actions.add_parser("import", help="read JSON lines written by export")
    load.add_argument("input", nargs="?", help="file (default: standard input)")
    for sub in (listing, add, remove, export, load):
        sub.add_argument("-c", "--config", dest="config", default=argparse.SUPPRESS)
    add_queue_parser(commands)
    return parser


def _run(config: Config, config_warning: str | None) -> int:
    from component.gateway import Gateway
    from component.logs import setup_logging

    setup_logging(config.log_level, config.log_format, config.secrets())
    if config_warning:
        logging.getLogger("portway").warning("%s", config_warning)
    return asyncio.run(Gateway(config).run())


async def _mappings(config: Config, args: argparse.Namespace) -> int:
    from mappings.store import Store

    store = await Store.open(config.database)
    try:
        if args.action == "list":
            await _list(store, args.transport, args.contacts, sys.stdout)
        elif args.action == "add":
            await _add(config, store, args.transport, args.user_jid, args.address)
        elif args.action == "remove":
            await _remove(config, store, args.transport, args.user_jid)
        elif args.action == "export":
            if args.output:
                with open(args.output, "w", encoding="utf-8") as out:
                    await _export(store, out)
            else:
                await _export(store, sys.stdout)
        elif args.action == "import":
            if args.input:
                with open(args.input, encoding="utf-8") as source:
                    count = await _import(config, store, source)
            else:
                count = await _import(config, store, sys.stdin)
            print(f"imported {count} records", file=sys.stderr)
    finally:
        await store.close()
    return 0


def _known_transport(config: Config, transport: str) -> None:
    enabled = config.transports.enabled()
    if transport not in enabled:
        names = ", ".join(enabled) or "none"
        raise CliError(f"unknown transport {transport!r} (enabled in this config: {names})")


def _check_user(config: Config, user_jid: str) -> str:
    user = user_jid.strip().lower()
    local, at, domain = user.partition("@")
    if not at or not local or not domain or "/" in domain:
        raise CliError(f"not a bare JID: {user_jid!r}")
    if domain not in config.allowed_domains:
        raise CliError(
            f"{user_jid} is not in allowed_domains ({', '.join(config.allowed_domains)})"
        )
    return user


async def _add(config: Config, store: Any, transport: str, user_jid: str, address: str) -> None:
    from component.gateway import transport_class
    from mappings.registrations import AddressTaken, Registration

    _known_transport(config, transport)
    user = _check_user(config, user_jid)
    settings = config.transports.enabled()[transport]
    try:
        normalised = transport_class(transport).own_address(settings, address)
    except AddressError as error:
        raise CliError(f"{address!r}: {error.text}") from None
    current = await store.registrations.get(transport, user)
    try:
        await store.registrations.save(
            Registration(transport, user, normalised, current.data if current else {})
        )
    except AddressTaken as taken:
        raise CliError(f"{normalised} is already bound to {taken.owner}") from None
    print(f"bound {transport} address {normalised} to {user}")


async def _remove(config: Config, store: Any, transport: str, user_jid: str) -> None:
    """Unregister as over XMPP: the transport forgets its own data (hooks, threads) too."""
    from aiohttp import web

    from component.gateway import transport_class
    from component.host import Host
    from component.metrics import Metrics

    _known_transport(config, transport)
    user = user_jid.strip().lower()
    if await store.registrations.get(transport, user) is None:
        raise CliError(f"{user_jid} is not registered with {transport}")
    settings = config.transports.enabled()[transport]
    host = Host(transport, settings.jid, config, store, web.Application(), Metrics())  # type: ignore[attr-defined]
    network = transport_class(transport)(settings, host)  # type: ignore[arg-type]
    await network.prepare()
    await network.unregistered(user)
    await store.registrations.remove(transport, user)
    print(f"removed {user} from {transport}")


async def _list(store: Any, transport: str | None, contacts: bool, out: TextIO) -> None:
    for registration in await store.registrations.list(transport):
        print(
            f"{registration.transport}\t{registration.user_jid}\t{registration.address or '-'}",
            file=out,
        )
    if contacts:
        for contact in await store.contacts.list(transport):
            print(
                f"{contact.transport}\t{contact.user_jid}\tcontact {contact.address}"
                f"\t{contact.display_name or ''}\t{contact.subscription}",
                file=out,
            )


async def _export(store: Any, out: TextIO) -> None:
    from mappings.codec import dumps

    for registration in await store.registrations.list():
        out.write(
            dumps(
                {
                    "type": "registration",
                    "transport": registration.transport,
                    "user_jid": registration.user_jid,
                    "address": registration.address,
                    "data": registration.data,
                }
            )
            + "\n"
        )
    for contact in await store.contacts.list():
        out.write(
            dumps(
                {
                    "type": "contact",
                    "transport": contact.transport,
                    "user_jid": contact.user_jid,
                    "address": contact.address,
                    "display_name": contact.display_name,
                    "subscription": contact.subscription,
                }
            )
            + "\n"
        )


async def _import(config: Config, store: Any, source: TextIO) -> int:
    from mappings.contacts import ContactMapping
    from mappings.registrations import AddressTaken, Registration

    count = 0
    for number, line in enumerate(source, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            kind = record["type"]
            transport = record["transport"]
            user = _check_user(config, record["user_jid"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise CliError(f"line {number}: not an exported record ({exc})") from None
        except CliError as error:
            raise CliError(f"line {number}: {error}") from None
        if kind == "registration":
            try:
                await store.registrations.save(
                    Registration(transport, user, record.get("address"), record.get("data") or {})
                )
            except AddressTaken as taken:
                raise CliError(f"line {number}: {taken}") from None
        elif kind == "contact":
            await store.contacts.add(
                ContactMapping(
                    transport,
                    user,
                    record["address"],
                    record.get("display_name"),
                    record.get("subscription") or "none",
                )
            )
        else:
            raise CliError(f"line {number}: unknown record type {kind!r}")
        count += 1
    return count


if __name__ == "__main__":
    sys.exit(main())
