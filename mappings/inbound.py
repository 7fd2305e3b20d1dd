"""The inbound queue: what could not be handed to XMPP yet, in arrival order.

Rows are kept after delivery (state ``delivered``) for a while, because their dedup keys
(Twilio MessageSid, Message-ID, webhook-id) are what stop a retried callback from being
delivered twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from mappings.codec import dumps, loads

if TYPE_CHECKING:
    from mappings.store import Store

QUEUED, DELIVERED = "queued", "delivered"


@dataclass(frozen=True)
class QueuedEvent:
    id: int
    transport: str
    user_jid: str
    event: dict[str, Any]


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
                        text(
                            "INSERT INTO inbound (transport, user_jid, dedup_key, event, state,"
                            " created_at, delivered_at) VALUES (:transport, :user_jid,"
                            " :dedup_key, :event, :state, :now, :delivered_at) RETURNING id"
                        ),
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

    async def queued(self, transport: str, limit: int = 100) -> list[QueuedEvent]:
        rows = await self._store.fetch_all(
            "SELECT id, transport, user_jid, event FROM inbound"
            " WHERE transport = :transport AND state = :queued ORDER BY id LIMIT :limit",
            transport=transport,
            queued=QUEUED,
            limit=limit,
        )
        return [QueuedEvent(int(row[0]), row[1], row[2], dict(loads(row[3]))) for row in rows]

    async def mark_delivered(self, event_ids: list[int]) -> None:
        if not event_ids:
            return
        async with self._store.transaction() as conn:
            for event_id in event_ids:
                await conn.execute(
                    text(
                        "UPDATE inbound SET state = :delivered, delivered_at = :now WHERE id = :id"
                    ),
                    {"delivered": DELIVERED, "now": time.time(), "id": event_id},
                )

    async def backlog(self, transport: str) -> int:
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
