"""``portway queue``: the inbound events set aside, for the admin to see, retry or drop.

An event the XMPP server refused, or closed the stream on, too many times is set aside so that
it does not hold up the queue (mappings/inbound.py). It stays in the database until the admin
decides: ``retry`` after fixing the cause (a server limit, a bad address), or ``drop``.
The listing names who and from whom, never the content, which is the recipient's to read.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any, TextIO

from component.config import Config
from mappings.inbound import QueuedEvent

USAGE = """examples:
  portway queue list -c portway.yaml
  portway queue retry 42 -c portway.yaml      (queued again, first in line)
  portway queue retry --all -c portway.yaml
  portway queue drop 42 -c portway.yaml       (forgotten for good)"""


class QueueCommandError(Exception):
    """A mistake the admin can fix: an unknown id, an unknown transport."""


def add_queue_parser(commands: Any) -> None:
    """Add ``queue list|retry|drop`` to the ``portway`` command line."""
    queue = commands.add_parser(
        "queue",
        help="inbound events set aside after failed deliveries: list, retry, drop",
        description="Inbound events the XMPP server refused or closed the stream on, "
        "set aside so that the queue behind them keeps flowing.",
        epilog=USAGE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    queue.add_argument("-c", "--config", help="the YAML config file")
    actions = queue.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="the events set aside, oldest first")
    listing.add_argument("--transport", help="only this transport's (irc, sms, email, webhook)")
    retry = actions.add_parser("retry", help="queue set-aside events again")
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?", type=int, help="the event's id, as listed")
    which.add_argument("--all", action="store_true", help="every set-aside event")
    drop = actions.add_parser("drop", help="forget a set-aside event for good")
    drop.add_argument("id", type=int, help="the event's id, as listed")
    for sub in (listing, retry, drop):
        sub.add_argument(
            "-c", "--config", dest="config", default=argparse.SUPPRESS, help="the YAML config file"
        )


def run_queue(config: Config, args: argparse.Namespace) -> int:
    """Run one ``queue`` action; 1 with a message on standard error for a mistake."""
    try:
        return asyncio.run(_queue(config, args, sys.stdout))
    except QueueCommandError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


async def _queue(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    from mappings.store import Store

    store = await Store.open(config.database)
    try:
        if args.action == "list":
            if args.transport is not None and args.transport not in config.transports.enabled():
                raise QueueCommandError(f"{args.transport} is not an enabled transport")
            events = await store.inbound.set_aside(args.transport)
            out.write(describe(events))
        elif args.action == "retry":
            count = await store.inbound.retry(None if args.all else args.id)
            if not count and not args.all:
                raise QueueCommandError(_unknown(args.id))
            out.write(
                f"queued {count} event{'s' if count != 1 else ''} again; a running gateway "
                "delivers them within a minute\n"
            )
        elif args.action == "drop":
            if not await store.inbound.drop(args.id):
                raise QueueCommandError(_unknown(args.id))
            out.write(f"dropped event {args.id}\n")
    finally:
        await store.close()
    return 0


def describe(events: list[QueuedEvent]) -> str:
    """One line per event: id, transport, attempts, when it came, for whom, from whom."""
    if not events:
        return "no events set aside\n"
    lines = ["ID\tTRANSPORT\tATTEMPTS\tRECEIVED (UTC)\tTO\tWHAT"]
    for event in events:
        received = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(event.created_at))
        lines.append(
            f"{event.id}\t{event.transport}\t{event.attempts}\t{received}\t{event.user_jid}"
            f"\t{_what(event.event)}"
        )
    return "\n".join(lines) + "\n"


def _what(event: dict[str, Any]) -> str:
    fields = event.get("fields") or {}
    sender = fields.get("contact") or fields.get("room") or "the gateway"
    size = len(str(fields.get("body") or ""))
    return f"{event.get('kind', '?')} from {sender}" + (f", {size} characters" if size else "")


def _unknown(event_id: int) -> str:
    return f"no set-aside event {event_id} (see `portway queue list`)"
