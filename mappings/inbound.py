"""The inbound queue: what could not be handed to XMPP yet, in arrival order.

Rows are kept after delivery (state ``delivered``) for a while, because their dedup keys
(Twilio MessageSid, Message-ID, webhook-id) are what stop a retried callback from being
delivered twice; :meth:`InboundQueue.prune` forgets them past a horizon.

An event sent whose confirmation never came (the XMPP server closed the stream, or went away)
counts an attempt. While the oldest event has failed attempts, events are claimed one at a time,
so that of a failed batch only the one that breaks the stream goes on failing; past
``max_attempts`` it is set aside (state ``set-aside``), kept for the admin (``portway queue``),
and everything behind it flows again.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mappings.codec import dumps, loads
from mappings.message_ids import MessageIdMapping, insert_statements
from mappings.sql import IntegrityError, Row

if TYPE_CHECKING:
    from mappings.store import Store

QUEUED, DELIVERING, DELIVERED = "queued", "delivering", "delivered"
SET_ASIDE = "set-aside"
_CHUNK = 200  # rows per multi-row INSERT (6 parameters each, well within SQLite's limit)


@dataclass(frozen=True)
class QueuedEvent:
    id: int
    transport: str
    user_jid: str
    event: dict[str, Any]
    attempts: int = 0
    created_at: float = 0.0


class InboundQueue:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def put(
        self,
        transport: str,
        user_jid: str,
        event: dict[str, Any],
        *,
        dedup_key: str | None = None,
        delivered: bool = False,
    ) -> int | None:
        """Store an event; ``None`` when ``dedup_key`` was seen before (a duplicate).

        ``delivered=True`` records a dedup key for an event that went out at once.
        """
        try:
            async with self._store.transaction() as conn:
                row = (
                    await conn.execute(
                        "INSERT INTO inbound (transport, user_jid, dedup_key, event, state,"
                        " created_at, delivered_at) VALUES (:transport, :user_jid,"
                        " :dedup_key, :event, :state, :now, :delivered_at) RETURNING id",
                        {
                            "transport": transport,
                            "user_jid": user_jid,
                            "dedup_key": dedup_key,
                            "event": dumps(event),
                            "state": DELIVERED if delivered else QUEUED,
                            "now": time.time(),
                            "delivered_at": time.time() if delivered else None,
                        },
                    )
                ).first()
        except IntegrityError:
            return None
        return int(row[0]) if row else None

    async def put_many(
        self,
        transport: str,
        items: list[tuple[str, dict[str, Any], str | None]],
        *,
        confirm_ids: list[str] | None = None,
        lease_seconds: float = 60.0,
        confirmed: list[str] | None = None,
        riders: list[tuple[MessageIdMapping, ...]] | None = None,
    ) -> list[bool]:
        """Store several ``(user_jid, event, dedup_key)`` in one transaction (group commit).

        Returns, for each, whether it was stored (``False``: a duplicate, dropped). One
        multi-row INSERT per chunk keeps a busy batch to a few statements.

        With ``confirm_ids`` (one per item), the events are stored as already claimed and tied
        to the pings that will confirm them, for a caller that sends them at once: reading
        them back to claim them would cost two more statements per batch. ``confirmed``
        pings' events (the server answered: it took every stanza sent before the ping) are
        marked delivered in the same transaction. ``riders`` (one tuple per item) are message
        id maps kept in the same transaction, each only if its item was stored.
        """
        rows: list[tuple[int, str, dict[str, Any], str | None]] = []
        seen: set[str] = set()
        for index, (user_jid, event, key) in enumerate(items):
            if key is not None:
                if key in seen:
                    continue  # the same key twice in one batch: the first one wins
                seen.add(key)
            rows.append((index, user_jid, event, key))
        now = time.time()
        claimed = confirm_ids is not None
        statements: list[tuple[str, dict[str, Any]]] = []
        if confirmed:
            ids = {f"i{n}": confirm_id for n, confirm_id in enumerate(confirmed)}
            statements.append(
                (
                    "UPDATE inbound SET state = :delivered, delivered_at = :now WHERE confirm_id"
                    f" IN ({', '.join(':' + name for name in ids)}) AND state = :delivering",
                    {"delivered": DELIVERED, "now": now, "delivering": DELIVERING, **ids},
                )
            )
        chunks = [rows[start : start + _CHUNK] for start in range(0, len(rows), _CHUNK)]
        for chunk in chunks:
            statement, names = _insert_shape(len(chunk))
            params: dict[str, Any] = {
                "transport": transport,
                "state": DELIVERING if claimed else QUEUED,
                "now": now,
                "lease": now + lease_seconds if claimed else None,
            }
            for (u, k, e, c), (index, user_jid, event, key) in zip(names, chunk, strict=True):
                params[u] = user_jid
                params[k] = key
                params[e] = dumps(event)
                params[c] = confirm_ids[index] if confirm_ids is not None else None
            statements.append((statement, params))

        def stored_of(results: list[list[Row]]) -> list[bool]:
            stored = [False] * len(items)
            for chunk, inserted in zip(chunks, results[len(results) - len(chunks) :], strict=True):
                inserted_keys = {row[0] for row in inserted}
                for index, _user_jid, _event, key in chunk:
                    stored[index] = key is None or key in inserted_keys
            return stored

        if not riders or not any(riders):
            return stored_of(await self._store.commit_rows(statements))

        def maps_of_stored(results: list[list[Row]]) -> list[tuple[str, dict[str, Any]]]:
            stored = stored_of(results)
            return insert_statements(
                [
                    (mapping, now)
                    for new, maps in zip(stored, riders, strict=True)
                    if new
                    for mapping in maps
                ]
            )

        return stored_of(await self._store.commit_rows_then(statements, maps_of_stored))

    async def claim(
        self, transport: str, limit: int = 100, *, lease_seconds: float = 60.0
    ) -> list[QueuedEvent]:
        """Take the oldest queued events for delivery, leased to this process.

        ``FOR UPDATE SKIP LOCKED`` (PostgreSQL) keeps two processes from taking the same
        event; a lease left by a dead process runs out and the events are taken again. While
        the oldest event has failed before, only that one is taken: one that breaks the stream
        then fails alone, instead of making every event of its batch fail with it.
        """
        now = time.time()
        claimable = (
            "transport = :transport AND (state = :queued"
            " OR (state = :delivering AND lease_until < :now))"
        )
        head = await self._store.fetch_one(
            f"SELECT attempts FROM inbound WHERE {claimable} ORDER BY id LIMIT 1",
            transport=transport,
            queued=QUEUED,
            delivering=DELIVERING,
            now=now,
        )
        if head is not None and int(head[0]) > 0:
            limit = min(limit, 1)
        lock = " FOR UPDATE SKIP LOCKED" if self._store.is_postgres else ""
        rows = await self._store.fetch_all(
            "UPDATE inbound SET state = :delivering, lease_until = :lease WHERE id IN"
            f" (SELECT id FROM inbound WHERE {claimable} ORDER BY id LIMIT :limit{lock})"
            " RETURNING id, transport, user_jid, event, attempts, created_at",
            transport=transport,
            queued=QUEUED,
            delivering=DELIVERING,
            lease=now + lease_seconds,
            now=now,
            limit=limit,
        )
        return sorted((_queued(row) for row in rows), key=lambda event: event.id)

    async def await_confirmation(self, event_ids: list[int], confirm_id: str) -> None:
        """Tie claimed events to the id of the ping that will confirm them."""
        if not event_ids:
            return
        if self._store.is_postgres:
            # one statement (and so one prepared statement) for any number of ids
            await self._store.execute(
                "UPDATE inbound SET confirm_id = :confirm_id WHERE id = ANY(:ids)",
                confirm_id=confirm_id,
                ids=event_ids,
            )
            return
        ids = {f"i{n}": event_id for n, event_id in enumerate(event_ids)}
        await self._store.execute(
            "UPDATE inbound SET confirm_id = :confirm_id"
            f" WHERE id IN ({', '.join(':' + name for name in ids)})",
            confirm_id=confirm_id,
            **ids,
        )

    async def unconfirmed(self, confirm_id: str) -> int:
        """How many events tied to this ping are still waiting for its answer."""
        row = await self._store.fetch_one(
            "SELECT COUNT(*) FROM inbound WHERE confirm_id = :confirm_id AND state = :delivering",
            confirm_id=confirm_id,
            delivering=DELIVERING,
        )
        return int(row[0]) if row else 0

    async def release(self, confirm_id: str) -> int:
        """Give back the events tied to a ping that got no answer (XMPP went away)."""
        return await self._store.execute(
            "UPDATE inbound SET state = :queued, lease_until = NULL"
            " WHERE confirm_id = :confirm_id AND state = :delivering",
            queued=QUEUED,
            delivering=DELIVERING,
            confirm_id=confirm_id,
        )

    async def fail(self, confirm_id: str, max_attempts: int) -> list[QueuedEvent]:
        """Give back events whose ping got no answer, counting an attempt; return those that
        reached ``max_attempts`` and were set aside instead."""
        rows = await self._store.fetch_all(
            "UPDATE inbound SET attempts = attempts + 1, lease_until = NULL, state = CASE"
            " WHEN attempts + 1 >= :max_attempts THEN :set_aside ELSE :queued END"
            " WHERE confirm_id = :confirm_id AND state = :delivering"
            " RETURNING id, transport, user_jid, event, attempts, created_at, state",
            max_attempts=max_attempts,
            set_aside=SET_ASIDE,
            queued=QUEUED,
            delivering=DELIVERING,
            confirm_id=confirm_id,
        )
        return sorted((_queued(row) for row in rows if row[6] == SET_ASIDE), key=_by_id)

    async def set_aside(self, transport: str | None = None) -> list[QueuedEvent]:
        """The events set aside, oldest first (of one transport, or all)."""
        where = " AND transport = :transport" if transport is not None else ""
        rows = await self._store.fetch_all(
            "SELECT id, transport, user_jid, event, attempts, created_at FROM inbound"
            f" WHERE state = :set_aside{where} ORDER BY id",
            set_aside=SET_ASIDE,
            **({"transport": transport} if transport is not None else {}),
        )
        return [_queued(row) for row in rows]

    async def retry(self, event_id: int | None = None) -> int:
        """Queue set-aside events again (one, or all with ``None``), with no attempts counted.

        They keep their place in arrival order: the next claim takes them first.
        """
        where = " AND id = :event_id" if event_id is not None else ""
        return await self._store.execute(
            "UPDATE inbound SET state = :queued, attempts = 0, confirm_id = NULL"
            f" WHERE state = :set_aside{where}",
            queued=QUEUED,
            set_aside=SET_ASIDE,
            **({"event_id": event_id} if event_id is not None else {}),
        )

    async def drop(self, event_id: int) -> int:
        """Forget a set-aside event for good."""
        return await self._store.execute(
            "DELETE FROM inbound WHERE state = :set_aside AND id = :event_id",
            set_aside=SET_ASIDE,
            event_id=event_id,
        )

    async def set_aside_counts(self) -> dict[str, int]:
        """Set-aside events waiting for an admin, per transport, for /metrics."""
        rows = await self._store.fetch_all(
            "SELECT transport, COUNT(*) FROM inbound WHERE state = :set_aside GROUP BY transport",
            set_aside=SET_ASIDE,
        )
        return {row[0]: int(row[1]) for row in rows}

    async def release_leases(self) -> int:
        """Give back every claimed event (see :meth:`Outbox.release_leases`)."""
        return await self._store.execute(
            "UPDATE inbound SET state = :queued, lease_until = NULL WHERE state = :delivering",
            queued=QUEUED,
            delivering=DELIVERING,
        )

    async def backlog(self, transport: str) -> int:
        """Events waiting to be claimed."""
        row = await self._store.fetch_one(
            "SELECT COUNT(*) FROM inbound WHERE transport = :transport AND state = :queued",
            transport=transport,
            queued=QUEUED,
        )
        return int(row[0]) if row else 0

    async def prune(self, older_than_seconds: float) -> int:
        """Forget delivered events (and so their dedup keys) older than the horizon."""
        return await self._store.execute(
            "DELETE FROM inbound WHERE state = :delivered AND delivered_at < :horizon",
            delivered=DELIVERED,
            horizon=time.time() - older_than_seconds,
        )


@functools.lru_cache(maxsize=_CHUNK)
def _insert_shape(rows: int) -> tuple[str, tuple[tuple[str, str, str, str], ...]]:
    """The multi-row INSERT of ``rows`` events and each row's parameter names, made once per
    size instead of once per group commit (with the same for the id maps, :meth:`put_many`
    went from 8 to 5 µs per webhook post)."""
    names = tuple((f"u{n}", f"k{n}", f"e{n}", f"c{n}") for n in range(rows))
    values = ", ".join(
        f"(:transport, :{u}, :{k}, :{e}, :state, :now, :lease, :{c})" for u, k, e, c in names
    )
    statement = (
        "INSERT INTO inbound (transport, user_jid, dedup_key, event, state, created_at,"
        f" lease_until, confirm_id) VALUES {values}"
        " ON CONFLICT (transport, dedup_key) DO NOTHING RETURNING dedup_key"
    )
    return statement, names


def _queued(row: Any) -> QueuedEvent:
    return QueuedEvent(int(row[0]), row[1], row[2], dict(loads(row[3])), int(row[4]), float(row[5]))


def _by_id(event: QueuedEvent) -> int:
    return event.id
