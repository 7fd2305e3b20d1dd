"""Forgetting what the gateway no longer needs, table by table, and how big each table is.

Every table keyed by outside traffic grows with it: a gateway that runs for years must let
go of delivered messages, old id maps and old room lines, or its database only grows. Which
rows are old is decided here, in SQL; how old is old is the admin's (``retention:``).

Rows go in batches of :data:`BATCH_ROWS`, each in its own transaction: the first prune after
an upgrade may find millions, and one statement deleting them all would hold SQLite's only
writer for as long, stopping every delivery meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mappings.store import Store

BATCH_ROWS = 2000

#: Every table of the gateway, core and transports', for ``portway_table_rows`` on /metrics.
#: A transport's tables exist once it has run; a table missing is left out, not counted 0.
TABLES = (
    "registrations",
    "contacts",
    "user_settings",
    "outbox",
    "inbound",
    "message_ids",
    "reactions",
    "room_archive",
    "media",
    "sms_messages",
    "email_headers",
    "webhook_hooks",
    "webhook_health",
)


@dataclass(frozen=True)
class Rule:
    """Which rows of ``table`` are old: ``key`` names a row, ``old`` is true of an old one
    (``:horizon`` is the oldest time kept, ``:now`` the present)."""

    table: str
    key: str | None
    old: str


#: Delivered and failed messages, and the SMS delivery records that tie Twilio's SIDs to them.
#: Messages still pending or being sent are never old: the outbox gives up on them itself.
OUTBOX = (
    Rule("outbox", "id", "state IN ('delivered', 'failed') AND updated_at < :horizon"),
    Rule("sms_messages", "sid", "updated_at < :horizon"),
)
#: What a correction, retraction, reaction or reply finds its target by, and mail threading.
MESSAGE_IDS = (
    Rule("message_ids", "id", "created_at < :horizon"),
    Rule("reactions", None, "created_at < :horizon"),
    Rule("email_headers", "id", "created_at < :horizon"),
)
ARCHIVE = (Rule("room_archive", "id", "created_at < :horizon"),)
#: Delivered inbound events: their dedup keys recognise a sender's retry until then.
INBOUND = (Rule("inbound", "id", "state = 'delivered' AND delivered_at < :horizon"),)
#: Served media go when their transport said (``expires_at``), whatever the horizon.
MEDIA = (Rule("media", "token", "expires_at <= :now"),)


async def existing_tables(store: Store) -> set[str]:
    """The gateway's tables in this database (a transport's appear once it has run)."""
    if store.is_postgres:
        sql = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    return {str(row[0]) for row in await store.fetch_all(sql)} & set(TABLES)


async def prune(
    store: Store, rules: tuple[Rule, ...], horizon: float, now: float | None = None
) -> dict[str, int]:
    """Delete the old rows of each rule's table (those present); rows deleted per table."""
    present = await existing_tables(store)
    now = time.time() if now is None else now
    deleted: dict[str, int] = {}
    for rule in rules:
        if rule.table in present:
            deleted[rule.table] = await _delete(store, rule, horizon, now)
    return deleted


async def table_rows(store: Store) -> dict[str, int]:
    """Rows in each of the gateway's tables."""
    counts: dict[str, int] = {}
    for table in sorted(await existing_tables(store)):
        row = await store.fetch_one(f"SELECT COUNT(*) FROM {table}")  # a name of TABLES
        counts[table] = int(row[0]) if row else 0
    return counts


async def _delete(store: Store, rule: Rule, horizon: float, now: float) -> int:
    params = {"horizon": horizon, "now": now, "batch": BATCH_ROWS}
    if rule.key is None:  # a table without a one-column key; its rows are few per message
        return await store.execute(f"DELETE FROM {rule.table} WHERE {rule.old}", **params)
    statement = (
        f"DELETE FROM {rule.table} WHERE {rule.key} IN (SELECT {rule.key} FROM {rule.table}"
        f" WHERE {rule.old} LIMIT :batch)"
    )
    total = 0
    while True:
        count = await store.execute(statement, **params)
        total += count
        if count < BATCH_ROWS:
            return total
        await asyncio.sleep(0)  # let deliveries waiting for the database go between batches
