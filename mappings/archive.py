"""The room archive: what each user's rooms said, for history on join and MAM queries.

Kept per user (not per room), because each user has a connection of their own and hears
the room only while joined, bouncer mode included. Rows are ordered by their integer id;
``stanza_id`` is what clients see (XEP-0359) and page with (RSM). The records a query
answers with are defined here, so that the store knows no transport types.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mappings.stanza_ids import new_stanza_id

if TYPE_CHECKING:
    from mappings.store import Store

log = logging.getLogger(__name__)

MIGRATIONS = [
    """
    CREATE TABLE room_archive (
        id {id_pk},
        transport TEXT NOT NULL,
        user_jid TEXT NOT NULL,
        room TEXT NOT NULL,
        stanza_id TEXT NOT NULL UNIQUE,
        nick TEXT NOT NULL,
        body TEXT NOT NULL,
        notice INTEGER NOT NULL DEFAULT 0,
        created_at {float} NOT NULL
    );
    CREATE INDEX room_archive_by_room ON room_archive (transport, user_jid, room, id)
    """,
    # A stanza id is unique per user's room, not in the whole table: it may be the IRC
    # server's msgid, which every gateway user in that channel hears with the same id.
    """
    CREATE TABLE room_archive_per_room (
        id {id_pk},
        transport TEXT NOT NULL,
        user_jid TEXT NOT NULL,
        room TEXT NOT NULL,
        stanza_id TEXT NOT NULL,
        nick TEXT NOT NULL,
        body TEXT NOT NULL,
        notice INTEGER NOT NULL DEFAULT 0,
        created_at {float} NOT NULL,
        UNIQUE (transport, user_jid, room, stanza_id)
    );
    INSERT INTO room_archive_per_room
        (transport, user_jid, room, stanza_id, nick, body, notice, created_at)
        SELECT transport, user_jid, room, stanza_id, nick, body, notice, created_at
        FROM room_archive ORDER BY id;
    DROP TABLE room_archive;
    ALTER TABLE room_archive_per_room RENAME TO room_archive;
    CREATE INDEX room_archive_by_room ON room_archive (transport, user_jid, room, id)
    """,
]

_COLUMNS = "stanza_id, nick, body, notice, created_at"


_INSERT = (
    "INSERT INTO room_archive (transport, user_jid, room, stanza_id, nick, body, notice,"
    " created_at) VALUES (:transport, :user_jid, :room, :stanza_id, :nick, :body, :notice,"
    " :created_at) ON CONFLICT DO NOTHING"
)
#: The row a stanza id names, in the queried room only (ids are unique per room).
_ROW_OF = (
    "(SELECT id FROM room_archive WHERE transport = :transport AND user_jid = :user_jid"
    " AND room = :room AND stanza_id = :{})"
)


@dataclass(frozen=True)
class ArchivedMessage:
    stanza_id: str
    nick: str
    body: str
    timestamp: float
    notice: bool = False


@dataclass(frozen=True)
class ArchivePage:
    messages: tuple[ArchivedMessage, ...]
    complete: bool


@dataclass(frozen=True)
class ArchiveQuery:
    """A XEP-0313 query on a room, with its RSM paging (``before=""`` means the last page)."""

    start: float | None = None
    end: float | None = None
    with_nick: str | None = None
    after: str | None = None
    before: str | None = None
    max: int = 50


class RoomArchive:
    def __init__(self, store: Store, transport: str) -> None:
        self._store = store
        self._transport = transport
        #: lines kept by add_soon() and not yet written
        self._pending: list[dict[str, Any]] = []
        self._writer: asyncio.Task[None] | None = None

    async def migrate(self) -> None:
        await self._store.migrate("room_archive", MIGRATIONS)

    def add_soon(
        self,
        user_jid: str,
        room: str,
        nick: str,
        body: str,
        *,
        notice: bool = False,
        timestamp: float | None = None,
        stanza_id: str | None = None,
    ) -> ArchivedMessage:
        """Keep a line; it is written shortly after, in one transaction with the lines kept
        meanwhile (one transaction per line made the database the bottleneck of a busy room).

        Its stanza id is known at once, so the caller can deliver the line without waiting.
        Reads (:meth:`last`, :meth:`query`) first wait for what is pending, so they see it.
        ``stanza_id`` is the origin's id when it has one (an IRC msgid), else a new one; a
        line kept twice under one id (a replay) is kept once. ``timestamp``: the origin's
        time (IRC server-time), else now.
        """
        message = ArchivedMessage(
            stanza_id=stanza_id or new_stanza_id(),
            nick=nick,
            body=body,
            timestamp=time.time() if timestamp is None else timestamp,
            notice=notice,
        )
        self._pending.append(
            {
                "transport": self._transport,
                "user_jid": user_jid,
                "room": room,
                "stanza_id": message.stanza_id,
                "nick": nick,
                "body": body,
                "notice": int(notice),
                "created_at": message.timestamp,
            }
        )
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())
        return message

    async def add(
        self,
        user_jid: str,
        room: str,
        nick: str,
        body: str,
        *,
        notice: bool = False,
        timestamp: float | None = None,
    ) -> ArchivedMessage:
        """Keep a line and wait until it is written."""
        message = self.add_soon(user_jid, room, nick, body, notice=notice, timestamp=timestamp)
        await self.flush()
        return message

    async def flush(self) -> None:
        """Wait until every line kept so far is written."""
        while self._writer is not None:
            await asyncio.shield(self._writer)

    async def _write(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    async with self._store.transaction() as conn:
                        await conn.execute(_INSERT, batch)
                except Exception:
                    # The lines were delivered already; only their history is lost.
                    log.exception("could not archive %d room lines", len(batch))
        finally:
            self._writer = None

    async def last(self, user_jid: str, room: str, count: int) -> list[ArchivedMessage]:
        """The last ``count`` messages, oldest first (history on join)."""
        if count <= 0:
            return []
        await self.flush()
        rows = await self._store.fetch_all(
            f"SELECT {_COLUMNS} FROM room_archive WHERE transport = :transport"
            " AND user_jid = :user_jid AND room = :room ORDER BY id DESC LIMIT :count",
            transport=self._transport,
            user_jid=user_jid,
            room=room,
            count=count,
        )
        return [_message(row) for row in reversed(rows)]

    async def find(self, user_jid: str, room: str, stanza_id: str) -> ArchivedMessage | None:
        """The line ``stanza_id`` names: a reply quotes it, a reaction line names its author."""
        await self.flush()
        row = await self._store.fetch_one(
            f"SELECT {_COLUMNS} FROM room_archive WHERE transport = :transport"
            " AND user_jid = :user_jid AND room = :room AND stanza_id = :stanza_id",
            transport=self._transport,
            user_jid=user_jid,
            room=room,
            stanza_id=stanza_id,
        )
        return _message(row) if row else None

    async def query(self, user_jid: str, room: str, query: ArchiveQuery) -> ArchivePage:
        """One page of a MAM query, oldest first; ``complete`` when nothing lies beyond it."""
        await self.flush()
        where = ["transport = :transport", "user_jid = :user_jid", "room = :room"]
        params: dict[str, object] = {
            "transport": self._transport,
            "user_jid": user_jid,
            "room": room,
        }
        if query.start is not None:
            where.append("created_at >= :start")
            params["start"] = query.start
        if query.end is not None:
            where.append("created_at <= :end")
            params["end"] = query.end
        if query.with_nick:
            where.append("nick = :with_nick")
            params["with_nick"] = query.with_nick
        if query.after:
            where.append("id > " + _ROW_OF.format("after"))
            params["after"] = query.after
        if query.before:
            where.append("id < " + _ROW_OF.format("before"))
            params["before"] = query.before
        backwards = query.before is not None
        limit = max(0, min(query.max, 500))
        params["limit"] = limit + 1
        rows = await self._store.fetch_all(
            f"SELECT {_COLUMNS} FROM room_archive WHERE {' AND '.join(where)}"
            f" ORDER BY id {'DESC' if backwards else 'ASC'} LIMIT :limit",
            **params,
        )
        complete = len(rows) <= limit
        rows = rows[:limit]
        if backwards:
            rows = list(reversed(rows))
        return ArchivePage(tuple(_message(row) for row in rows), complete)

    async def forget_user(self, user_jid: str) -> None:
        await self.flush()
        await self._store.execute(
            "DELETE FROM room_archive WHERE transport = :transport AND user_jid = :user_jid",
            transport=self._transport,
            user_jid=user_jid,
        )


def _message(row: Any) -> ArchivedMessage:
    return ArchivedMessage(str(row[0]), str(row[1]), str(row[2]), float(row[4]), bool(row[3]))
