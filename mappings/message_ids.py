"""Message ids mapped both ways (XMPP id ↔ foreign id), for receipts, errors and threading."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mappings.store import Store


@dataclass(frozen=True)
class MessageIdMapping:
    transport: str
    user_jid: str
    contact: str
    direction: str  # "in" (to the user) or "out" (from the user)
    xmpp_id: str | None
    remote_id: str | None
    thread: str | None = None


_COLUMNS = "transport, user_jid, contact, direction, xmpp_id, remote_id, thread"


class MessageIds:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def record(self, mapping: MessageIdMapping) -> None:
        await self._store.execute(
            f"INSERT INTO message_ids ({_COLUMNS}, created_at) VALUES (:transport, :user_jid,"
            " :contact, :direction, :xmpp_id, :remote_id, :thread, :created_at)",
            transport=mapping.transport,
            user_jid=mapping.user_jid,
            contact=mapping.contact,
            direction=mapping.direction,
            xmpp_id=mapping.xmpp_id,
            remote_id=mapping.remote_id,
            thread=mapping.thread,
            created_at=time.time(),
        )

    async def by_remote_id(self, transport: str, remote_id: str) -> MessageIdMapping | None:
        row = await self._store.fetch_one(
            f"SELECT {_COLUMNS} FROM message_ids WHERE transport = :transport "
            "AND remote_id = :remote_id ORDER BY id DESC LIMIT 1",
            transport=transport,
            remote_id=remote_id,
        )
        return _mapping(row) if row else None

    async def last_with(
        self, transport: str, user_jid: str, contact: str, direction: str | None = None
    ) -> MessageIdMapping | None:
        """The latest message of a conversation, e.g. to thread a reply onto it."""
        row = await self._store.fetch_one(
            f"SELECT {_COLUMNS} FROM message_ids WHERE transport = :transport "
            "AND user_jid = :user_jid AND contact = :contact "
            "AND (CAST(:direction AS TEXT) IS NULL OR direction = :direction) "
            "AND remote_id IS NOT NULL ORDER BY id DESC LIMIT 1",
            transport=transport,
            user_jid=user_jid,
            contact=contact,
            direction=direction,
        )
        return _mapping(row) if row else None


def _mapping(row: Any) -> MessageIdMapping:
    return MessageIdMapping(*row)
