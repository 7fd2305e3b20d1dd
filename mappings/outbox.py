"""The durable outbox: what users send to SMS, email and webhooks.

A message is stored before anything is attempted, and a worker claims it with a lease. The
lease is what makes a crash safe: a row left in ``sending`` by a dead process becomes due again
when its lease runs out. On PostgreSQL, ``FOR UPDATE SKIP LOCKED`` lets several processes share
one queue without claiming the same row twice.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mappings.codec import dumps, loads
from mappings.sql import IntegrityError

if TYPE_CHECKING:
    from mappings.store import Store

PENDING, SENDING, DELIVERED, FAILED = "pending", "sending", "delivered", "failed"
#: Messages one user may have waiting in one transport's outbox. A destination that does not
#: answer (a hook's url, Twilio in an outage) keeps each message for a day of retries, and a
#: client sends as fast as its server relays: without a bound one user filled the database.
MAX_WAITING_PER_USER = 1000


class OutboxFull(Exception):
    """The user has as many messages waiting in a transport's outbox as allowed."""

    def __init__(self, max_waiting: int) -> None:
        super().__init__(max_waiting)
        self.max_waiting = max_waiting


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped, and a deadline after which we give up."""

    base_seconds: float = 2.0
    cap_seconds: float = 600.0
    give_up_after_seconds: float = 24 * 3600.0

    def delay(self, attempts: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (1-based)."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
        return (rng or random).uniform(ceiling / 2, ceiling)

    def gives_up(self, created_at: float, now: float) -> bool:
        return now - created_at >= self.give_up_after_seconds


@dataclass(frozen=True)
class OutboxItem:
    id: int
    transport: str
    user_jid: str
    contact: str
    xmpp_id: str | None
    payload: dict[str, Any]
    state: str
    attempts: int
    last_error: str | None
    remote_id: str | None
    created_at: float


_COLUMNS = (
    "id, transport, user_jid, contact, xmpp_id, payload, state, attempts, last_error, "
    "remote_id, created_at"
)


#: Only the oldest open message of each conversation is due: one contact gets them in order.
_OLDEST_OF_ITS_CONVERSATION = (
    " AND NOT EXISTS (SELECT 1 FROM outbox AS older WHERE older.transport = o.transport"
    " AND older.user_jid = o.user_jid AND older.contact = o.contact AND older.id < o.id"
    " AND older.state IN (:pending, :sending))"
)


class Outbox:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def enqueue(
        self,
        transport: str,
        user_jid: str,
        contact: str,
        payload: dict[str, Any],
        *,
        xmpp_id: str | None = None,
        dedup_key: str | None = None,
        now: float | None = None,
        max_waiting: int = MAX_WAITING_PER_USER,
    ) -> OutboxItem | None:
        """Store a message for delivery; ``None`` when ``dedup_key`` was seen before.

        Raises :class:`OutboxFull` when the user already has ``max_waiting`` messages of this
        transport waiting (pending or being sent).
        """
        now = time.time() if now is None else now
        try:
            async with self._store.transaction() as conn:
                if self._store.is_postgres:
                    # Ids of one conversation must follow commit order, or a later message
                    # could be claimed before an earlier one is visible (several processes);
                    # and the bound below must see the user's other messages. So one user's
                    # messages to a transport are stored one at a time.
                    await conn.execute(
                        "SELECT pg_advisory_xact_lock(hashtextextended(:user, 0))",
                        {"user": f"{transport}|{user_jid}"},
                    )
                # The bound is checked in the statement that inserts, so that messages
                # arriving together cannot all pass it before any is stored.
                row = (
                    await conn.execute(
                        "INSERT INTO outbox (transport, user_jid, contact, xmpp_id, dedup_key,"
                        " payload, state, attempts, next_attempt_at, created_at, updated_at)"
                        " SELECT :transport, :user_jid, :contact, :xmpp_id, :dedup_key,"
                        " :payload, :state, 0, :now, :now, :now"
                        " WHERE (SELECT count(*) FROM outbox WHERE transport = :transport"
                        " AND user_jid = :user_jid AND state IN (:state, :sending))"
                        " < :max_waiting"
                        f" RETURNING {_COLUMNS}",
                        {
                            "transport": transport,
                            "user_jid": user_jid,
                            "contact": contact,
                            "xmpp_id": xmpp_id,
                            "dedup_key": dedup_key,
                            "payload": dumps(payload),
                            "state": PENDING,
                            "sending": SENDING,
                            "now": now,
                            "max_waiting": max_waiting,
                        },
                    )
                ).first()
        except IntegrityError:
            return None
        if row is None:
            raise OutboxFull(max_waiting)
        return _item(row)

    async def claim(
        self,
        transport: str,
        *,
        limit: int = 16,
        lease_seconds: float = 300.0,
        now: float | None = None,
    ) -> list[OutboxItem]:
        """Take due items for delivery, oldest first, leasing them to this worker."""
        now = time.time() if now is None else now
        lock = " FOR UPDATE SKIP LOCKED" if self._store.is_postgres else ""
        rows = await self._store.fetch_all(
            "UPDATE outbox SET state = :sending, lease_until = :lease, attempts = attempts + 1,"
            " updated_at = :now WHERE id IN (SELECT id FROM outbox AS o"
            " WHERE transport = :transport"
            " AND ((state = :pending AND next_attempt_at <= :now)"
            " OR (state = :sending AND lease_until < :now))"
            f"{_OLDEST_OF_ITS_CONVERSATION}"
            f" ORDER BY id LIMIT :limit{lock}) RETURNING {_COLUMNS}",
            transport=transport,
            sending=SENDING,
            pending=PENDING,
            lease=now + lease_seconds,
            now=now,
            limit=limit,
        )
        return sorted((_item(row) for row in rows), key=lambda item: item.id)

    async def mark_delivered(self, item_id: int, remote_id: str | None = None) -> None:
        await self._finish(item_id, DELIVERED, None, remote_id)

    async def mark_failed(self, item_id: int, reason: str) -> None:
        await self._finish(item_id, FAILED, reason, None)

    async def retry_later(self, item_id: int, reason: str, at: float) -> None:
        await self._store.execute(
            "UPDATE outbox SET state = :pending, next_attempt_at = :at, lease_until = NULL,"
            " last_error = :reason, updated_at = :now WHERE id = :id AND state = :sending",
            pending=PENDING,
            sending=SENDING,
            at=at,
            reason=reason,
            now=time.time(),
            id=item_id,
        )

    async def release_leases(self) -> int:
        """Make every leased item due now: for the one process of an SQLite database, whose
        leases at start can only be left over from its own previous run."""
        return await self._store.execute(
            "UPDATE outbox SET state = :pending, lease_until = NULL, next_attempt_at = :now"
            " WHERE state = :sending",
            pending=PENDING,
            sending=SENDING,
            now=time.time(),
        )

    async def next_due(self, transport: str) -> float | None:
        """When the earliest pending item becomes due, so a worker knows how long to sleep."""
        # A message waiting behind an older one of its conversation is not due on its own.
        row = await self._store.fetch_one(
            "SELECT MIN(CASE WHEN state = :pending THEN next_attempt_at ELSE lease_until END)"
            " FROM outbox AS o WHERE transport = :transport AND state IN (:pending, :sending)"
            f"{_OLDEST_OF_ITS_CONVERSATION}",
            transport=transport,
            pending=PENDING,
            sending=SENDING,
        )
        return float(row[0]) if row and row[0] is not None else None

    async def get(self, item_id: int) -> OutboxItem | None:
        row = await self._store.fetch_one(
            f"SELECT {_COLUMNS} FROM outbox WHERE id = :id", id=item_id
        )
        return _item(row) if row else None

    async def counts(self) -> dict[tuple[str, str], int]:
        """Items per (transport, state), for /metrics."""
        rows = await self._store.fetch_all(
            "SELECT transport, state, COUNT(*) FROM outbox GROUP BY transport, state"
        )
        return {(row[0], row[1]): int(row[2]) for row in rows}

    async def _finish(
        self, item_id: int, state: str, reason: str | None, remote_id: str | None
    ) -> None:
        await self._store.execute(
            "UPDATE outbox SET state = :state, last_error = COALESCE(:reason, last_error),"
            " remote_id = COALESCE(:remote_id, remote_id), lease_until = NULL,"
            " updated_at = :now WHERE id = :id",
            state=state,
            reason=reason,
            remote_id=remote_id,
            now=time.time(),
            id=item_id,
        )


def _item(row: Any) -> OutboxItem:
    return OutboxItem(
        id=int(row[0]),
        transport=row[1],
        user_jid=row[2],
        contact=row[3],
        xmpp_id=row[4],
        payload=dict(loads(row[5])),
        state=row[6],
        attempts=int(row[7]),
        last_error=row[8],
        remote_id=row[9],
        created_at=float(row[10]),
    )
