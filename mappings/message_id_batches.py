"""Message id maps recorded by many concurrent callers, in one transaction.

Every accepted webhook post records the id map that a later ``replace`` needs, before its 202.
One transaction each made that record the gateway's bottleneck: on SQLite every post queued
for the one connection behind the group commit of the inbound queue, and on PostgreSQL every
post held a connection of its own for a commit. Here, while one batch commits the next
gathers, so under load one multi-row INSERT carries many maps and alone it carries one. A
caller still returns only once its map is committed, as before.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from mappings.message_ids import _COLUMNS, BODY_CHARS, MessageIdMapping, MessageIds

if TYPE_CHECKING:
    from mappings.store import Store

#: maps per INSERT: 9 parameters each, well within SQLite's limit of 32,766
_CHUNK = 200


class BatchedMessageIds(MessageIds):
    """:class:`MessageIds` whose :meth:`record` joins the records under way into one commit."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self._store = store
        self._pending: list[tuple[MessageIdMapping, float, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def record(self, mapping: MessageIdMapping) -> None:
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
                    [
                        _insert(batch[start : start + _CHUNK])
                        for start in range(0, len(batch), _CHUNK)
                    ]
                )
            except Exception as error:
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for *_, future in batch:
                if not future.done():
                    future.set_result(None)


def _insert(
    chunk: list[tuple[MessageIdMapping, float, asyncio.Future[None]]],
) -> tuple[str, dict[str, Any]]:
    """One multi-row INSERT of ``chunk``'s maps, with its parameters."""
    values = []
    params: dict[str, Any] = {}
    for n, (mapping, created_at, _) in enumerate(chunk):
        names = [f"{column}{n}" for column in ("t", "u", "c", "d", "x", "r", "h", "b", "a")]
        values.append("(" + ", ".join(":" + name for name in names) + ")")
        params.update(
            zip(
                names,
                (
                    mapping.transport,
                    mapping.user_jid,
                    mapping.contact,
                    mapping.direction,
                    mapping.xmpp_id,
                    mapping.remote_id,
                    mapping.thread,
                    mapping.body[:BODY_CHARS],
                    created_at,
                ),
                strict=True,
            )
        )
    statement = f"INSERT INTO message_ids ({_COLUMNS}, created_at) VALUES {', '.join(values)}"
    return statement, params
