"""Message ids mapped both ways (XMPP id ↔ foreign id), for receipts, errors and threading,
and for what refers to an earlier message: a correction, retraction, reaction or reply names
its target by the id its own side knows, and the other side needs its own id for it."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
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
    #: the beginning of the message's text: phones quote it in a tapback, and a reply or a
    #: correction on a network without ids quotes it for the reader
    body: str = ""


_COLUMNS = "transport, user_jid, contact, direction, xmpp_id, remote_id, thread, body"
#: maps per INSERT: 9 parameters each, well within SQLite's limit of 32,766
_CHUNK = 200
#: enough to recognise a quoted message and to quote its beginning; phones quote about 100
BODY_CHARS = 300


class Riders:
    """Maps that ride with an inbound event into its transaction (see :func:`stored_with`)."""

    __slots__ = ("closed", "mappings", "taken")

    def __init__(self, mappings: Sequence[MessageIdMapping]) -> None:
        self.mappings = tuple(mappings)
        #: whether the store took them, to commit them with the event if it is new
        self.taken = False
        self.closed = False


_riders: ContextVar[Riders | None] = ContextVar("message_id_riders", default=None)


@contextmanager
def stored_with(mappings: Sequence[MessageIdMapping]) -> Iterator[Riders]:
    """Within the block, the first inbound event this task stores in a group commit
    (``host.deliver(..., durable=True)``) takes ``mappings`` into its transaction: they are
    committed with it if it is new, and dropped if it is a duplicate.

    One transaction for a webhook post instead of two (its event, then its map), and so
    half the writes. The maps go with the call, not under the event's dedup key: two posts
    with one key in flight at once must each commit only their own. If nothing took them by
    the end of the block (``taken`` is false: a host that stored the event another way), the
    caller records them itself, as before.
    """
    riders = Riders(mappings)
    token = _riders.set(riders)
    try:
        yield riders
    finally:
        _riders.reset(token)
        # a task started in the block shares its context: it must not take them later
        riders.closed = True


def take_riders() -> tuple[MessageIdMapping, ...]:
    """The maps to commit with the event the current task is storing (see :func:`stored_with`)."""
    riders = _riders.get()
    if riders is None or riders.taken or riders.closed or not riders.mappings:
        return ()
    riders.taken = True
    return riders.mappings


class MessageIds:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._pending: list[tuple[MessageIdMapping, float, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def record(self, mapping: MessageIdMapping) -> None:
        """Keep ``mapping``; returns once it is committed.

        Records made while a commit runs gather for the next one, one multi-row INSERT: every
        accepted webhook post records its map before its 202, and a transaction each made this
        the gateway's bottleneck (on SQLite, queued for the one connection; on PostgreSQL, a
        connection held per post).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((mapping, time.time(), future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self._store.commit_rows(
                    insert_statements([(mapping, at) for mapping, at, _ in batch])
                )
            except Exception as error:
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for *_, future in batch:
                if not future.done():
                    future.set_result(None)

    async def by_remote_id(self, transport: str, remote_id: str) -> MessageIdMapping | None:
        row = await self._store.fetch_one(
            f"SELECT {_COLUMNS} FROM message_ids WHERE transport = :transport "
            "AND remote_id = :remote_id ORDER BY id DESC LIMIT 1",
            transport=transport,
            remote_id=remote_id,
        )
        return _mapping(row) if row else None

    async def find(self, transport: str, user_jid: str, message_id: str) -> MessageIdMapping | None:
        """The message of ``user_jid``'s conversations that ``message_id`` names, whichever
        side's id it is: a chat client names a message by its XMPP id, a room client by the
        room's stanza-id (which, on IRC, is the network's msgid), a network by its own id."""
        row = await self._store.fetch_one(
            f"SELECT {_COLUMNS} FROM message_ids WHERE transport = :transport "
            "AND user_jid = :user_jid AND (xmpp_id = :message_id OR remote_id = :message_id) "
            "ORDER BY id DESC LIMIT 1",
            transport=transport,
            user_jid=user_jid,
            message_id=message_id,
        )
        return _mapping(row) if row else None

    async def recent(
        self, transport: str, user_jid: str, contact: str, direction: str, limit: int = 50
    ) -> list[MessageIdMapping]:
        """The conversation's latest messages one way, newest first (a tapback's candidates)."""
        rows = await self._store.fetch_all(
            f"SELECT {_COLUMNS} FROM message_ids WHERE transport = :transport "
            "AND user_jid = :user_jid AND contact = :contact AND direction = :direction "
            "ORDER BY id DESC LIMIT :limit",
            transport=transport,
            user_jid=user_jid,
            contact=contact,
            direction=direction,
            limit=limit,
        )
        return [_mapping(row) for row in rows]

    async def forget(self, transport: str, user_jid: str, remote_id: str) -> None:
        """Drop what ``remote_id`` names for ``user_jid`` (an alert group that resolved)."""
        await self._store.execute(
            "DELETE FROM message_ids WHERE transport = :transport AND user_jid = :user_jid"
            " AND remote_id = :remote_id",
            transport=transport,
            user_jid=user_jid,
            remote_id=remote_id,
        )

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
    transport, user_jid, contact, direction, xmpp_id, remote_id, thread, body = row
    return MessageIdMapping(
        transport, user_jid, contact, direction, xmpp_id, remote_id, thread, body or ""
    )


def insert_statements(
    mappings: Sequence[tuple[MessageIdMapping, float]],
) -> list[tuple[str, dict[str, Any]]]:
    """The INSERTs that keep ``(mapping, created_at)``: one multi-row INSERT per chunk."""
    return [_insert(mappings[start : start + _CHUNK]) for start in range(0, len(mappings), _CHUNK)]


def _insert(chunk: Sequence[tuple[MessageIdMapping, float]]) -> tuple[str, dict[str, Any]]:
    """One multi-row INSERT of ``chunk``'s maps, with its parameters."""
    statement, names = _insert_shape(len(chunk))
    params: dict[str, Any] = {}
    for (t, u, c, d, x, r, h, b, a), (mapping, created_at) in zip(names, chunk, strict=True):
        params[t] = mapping.transport
        params[u] = mapping.user_jid
        params[c] = mapping.contact
        params[d] = mapping.direction
        params[x] = mapping.xmpp_id
        params[r] = mapping.remote_id
        params[h] = mapping.thread
        params[b] = mapping.body[:BODY_CHARS]
        params[a] = created_at
    return statement, params


@functools.lru_cache(maxsize=_CHUNK)
def _insert_shape(rows: int) -> tuple[str, tuple[tuple[str, ...], ...]]:
    """The INSERT of ``rows`` maps and each row's parameter names, made once per size: every
    accepted webhook post's map goes through here (see :func:`mappings.inbound._insert_shape`)."""
    names = tuple(
        tuple(f"{column}{n}" for column in ("t", "u", "c", "d", "x", "r", "h", "b", "a"))
        for n in range(rows)
    )
    values = ", ".join("(" + ", ".join(":" + name for name in row) + ")" for row in names)
    return f"INSERT INTO message_ids ({_COLUMNS}, created_at) VALUES {values}", names
