"""``portway``: run the gateway, check a config, and manage mappings."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import version

# slixmpp imports pygments, where it is installed (pytest brings it), only to colour the
# output of its own test helpers: 1.6 MiB and 20 ms at every start for nothing the gateway
# uses. Without it, slixmpp's fallback is plain text.
sys.modules.setdefault("pygments", None)  # type: ignore[arg-type]

from component.cli_mappings import TRANSPORT_NAMES, CliError, transport_argument  # noqa: E402
from component.config import Config, ConfigError, load_config, readable_secrets_warning  # noqa: E402
from component.queue_cli import add_queue_parser, run_queue  # noqa: E402

CONFIG_HELP = "the YAML config file"


def main(argv: Sequence[str] | None = None) -> int:
    command_line = parser()
    args = command_line.parse_args(argv)
    path = getattr(args, "config", None) or getattr(args, "file", None)
    if not path:
        command_line.error("the config file is required: -c FILE")
    try:
        config = load_config(path)
    except ConfigError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return 2
    if args.command == "check-config":
        enabled = ", ".join(config.transports.enabled()) or "none"
        print(f"{path}: OK (transports: {enabled})")
        warning = readable_secrets_warning(path, config)
        if warning:
            print(warning, file=sys.stderr)
        return 0
    if args.command == "run":
        return _run(config, path, readable_secrets_warning(path, config))
    if args.command == "queue":
        return run_queue(config, args)
    try:
        return asyncio.run(_mappings(config, args))
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def parser() -> argparse.ArgumentParser:
    """The whole command line; every command and argument says what it is for."""
    top = argparse.ArgumentParser(
        prog="portway", description="XMPP gateway to IRC, SMS, email and webhooks"
    )
    top.add_argument(
        "--version",
        action="version",
        version=f"portway {version('portway')}",
        help="print Portway's version and exit",
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run", help="run the gateway until SIGTERM or Ctrl-C; SIGHUP reloads the config"
    )
    run.add_argument("-c", "--config", required=True, help=CONFIG_HELP)
    check = commands.add_parser(
        "check-config", help="validate a config file and say what is wrong, line by line"
    )
    check.add_argument(
        "file", nargs="?", metavar="FILE", help="the config file to check (or give it with -c)"
    )
    check.add_argument("-c", "--config", help=CONFIG_HELP)
    _add_mappings_parser(commands)
    add_queue_parser(commands)
    return top


def _add_mappings_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    mappings = commands.add_parser(
        "mappings", help="list, add, remove, export and import users' registrations"
    )
    # -c may come before or after the action: `portway mappings list -c FILE`
    mappings.add_argument("-c", "--config", help=CONFIG_HELP)
    actions = mappings.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="registrations (and contacts with --contacts)")
    listing.add_argument(
        "--transport",
        type=transport_argument,
        help=f"only this transport's: {', '.join(TRANSPORT_NAMES)}",
    )
    listing.add_argument("--contacts", action="store_true", help="list users' contacts too")
    add = actions.add_parser(
        "add", help="register a user, binding their own number or address where there is one"
    )
    add.add_argument(
        "transport", metavar="TRANSPORT", help="irc, sms, email or webhook (enabled in the config)"
    )
    add.add_argument(
        "user_jid", metavar="USER_JID", help="the user's bare JID, of an allowed domain"
    )
    add.add_argument(
        "address",
        nargs="?",
        metavar="ADDRESS",
        help="their own identity there: a Twilio number (sms), a local part or address"
        " (email); none for irc and webhook",
    )
    add.add_argument(
        "--replace", action="store_true", help="bind the new address over the user's current one"
    )
    remove = actions.add_parser("remove", help="unregister a user and forget their data")
    remove.add_argument(
        "transport", metavar="TRANSPORT", help="irc, sms, email or webhook (enabled in the config)"
    )
    remove.add_argument("user_jid", metavar="USER_JID", help="the user's bare JID")
    export = actions.add_parser(
        "export",
        help="write registrations, contacts, user settings and user hooks (with their secrets)"
        " as JSON lines",
    )
    export.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="file, created readable by you alone (default: standard output)",
    )
    load = actions.add_parser(
        "import", help="restore what export wrote; records already there are replaced"
    )
    load.add_argument(
        "input",
        nargs="?",
        metavar="FILE",
        help="a file `portway mappings export` wrote (default: standard input)",
    )
    for sub in (listing, add, remove, export, load):
        sub.add_argument(
            "-c", "--config", dest="config", default=argparse.SUPPRESS, help=CONFIG_HELP
        )


def _run(config: Config, path: str, config_warning: str | None) -> int:
    from component.gateway import Gateway
    from component.logs import setup_logging

    setup_logging(config.log_level, config.log_format, config.secrets())
    if config_warning:
        logging.getLogger("portway").warning("%s", config_warning)
    try:
        return asyncio.run(Gateway(config, path).run())
    except KeyboardInterrupt:  # Ctrl-C before the gateway's own handler is in place
        return 130


async def _mappings(config: Config, args: argparse.Namespace) -> int:
    from component import cli_backup, cli_mappings
    from mappings.store import Store

    store = await Store.open(config.database)
    try:
        if args.action == "list":
            await cli_mappings.list_mappings(store, args.transport, args.contacts, sys.stdout)
        elif args.action == "add":
            print(
                await cli_mappings.add(
                    config, store, args.transport, args.user_jid, args.address, args.replace
                )
            )
        elif args.action == "remove":
            print(await cli_mappings.remove(config, store, args.transport, args.user_jid))
        elif args.action == "export":
            if args.output:
                with cli_backup.private_file(args.output) as out:
                    await cli_backup.export(store, out)
            else:
                await cli_backup.export(store, sys.stdout)
        elif args.action == "import":
            if args.input:
                with open(args.input, encoding="utf-8") as source:
                    count = await cli_backup.restore(config, store, source)
            else:
                count = await cli_backup.restore(config, store, sys.stdin)
            print(f"imported {count} records", file=sys.stderr)
    finally:
        await store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
