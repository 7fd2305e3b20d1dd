"""Group commit of inbound events: many concurrent deliveries, one transaction.

Also the ids of the pings that confirm what was sent (see component/host.py): they must be
unique across processes and runs, since another process may receive the answer.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mappings.message_ids import MessageIdMapping, take_riders
from transports.events import event_to_dict

if TYPE_CHECKING:
    from mappings.store import Store

log = logging.getLogger(__name__)

CONFIRM_PREFIX = "drain-"


@dataclass
class Committed:
    """What one group commit stored: the new events, in order, and how they were stored."""

    events: list[Any]
    #: user's server → id of the ping that confirms the events sent there; empty when the
    #: events were queued for the drainer instead of being sent at once
    confirm_ids: dict[str, str]


class GroupCommit:
    """Stores concurrent durable deliveries in one transaction.

    Each inbound HTTP request or SMTP session must wait until its message is stored before it
    answers; one transaction each made the database the bottleneck. While one batch commits,
    the next gathers, so under load a commit carries many messages and alone it carries one.

    When ``at_once()`` says the events can go straight out (attached, nothing queued before
    them), they are stored already claimed, and ``after_commit`` has them sent from memory;
    the drainer's claim would otherwise read back what was just written. Batches are handed
    to ``after_commit`` in commit order, which is the order they are sent in; it must not
    wait, so that the next batch commits while this one is being sent.
    """

    def __init__(
        self,
        store: Store,
        transport_name: str,
        at_once: Callable[[], bool],
        after_commit: Callable[[Committed], None],
    ) -> None:
        self._store = store
        self._transport = transport_name
        self._at_once = at_once
        self._after_commit = after_commit
        self._pending: list[
            tuple[Any, str | None, tuple[MessageIdMapping, ...], asyncio.Future[bool]]
        ] = []
        self._confirmed: list[str] = []
        self._flushing = False
        self._task: asyncio.Task[None] | None = None

    async def put(self, event: Any, dedup_key: str | None) -> bool:
        """Store one event; ``False`` if its dedup key was seen before.

        The message id maps the caller holds out (:func:`mappings.message_ids.stored_with`)
        are committed with it, if it is new.
        """
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((event, dedup_key, take_riders(), future))
        self._start()
        return await future

    def confirm_soon(self, confirm_id: str) -> None:
        """Mark the events of an answered ping delivered, with the next commit.

        Nobody waits for this write: until it is done the events stay claimed, so nothing
        sends them again unless the process dies first (then they go once more, not never).
        """
        self._confirmed.append(confirm_id)
        self._start()

    def _start(self) -> None:
        if not self._flushing:
            self._flushing = True
            self._task = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self._pending or self._confirmed:
                batch, self._pending = self._pending, []
                confirmed, self._confirmed = self._confirmed, []
                confirm_ids: dict[str, str] = {}
                row_confirm_ids: list[str] | None = None
                if self._at_once():
                    row_confirm_ids = [
                        confirm_ids.setdefault(server_of(event.user_jid), new_confirm_id())
                        for event, *_ in batch
                    ]
                try:
                    stored = await self._store.inbound.put_many(
                        self._transport,
                        [(event.user_jid, event_to_dict(event), key) for event, key, *_ in batch],
                        confirm_ids=row_confirm_ids,
                        confirmed=confirmed,
                        riders=[riders for _, _, riders, _ in batch],
                    )
                except Exception as exc:
                    if confirmed:
                        log.warning(
                            "could not mark %d delivered batches; they will be sent again: %s",
                            len(confirmed),
                            exc,
                        )
                    for *_, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (*_, future), was_stored in zip(batch, stored, strict=True):
                    if not future.done():
                        future.set_result(was_stored)
                events = [event for (event, *_), new in zip(batch, stored, strict=True) if new]
                if events:
                    sent_to = {server_of(event.user_jid) for event in events}
                    self._after_commit(
                        Committed(events, {s: c for s, c in confirm_ids.items() if s in sent_to})
                    )
        finally:
            self._flushing = False


def server_of(jid: str) -> str:
    """The domain of a (bare or full) JID: where the confirming ping goes."""
    return jid.rpartition("@")[2].split("/", 1)[0]


_PROCESS_TOKEN = uuid.uuid4().hex
_confirm_numbers = itertools.count()


def new_confirm_id() -> str:
    """An id no other process and no earlier run uses (one random token, then a counter)."""
    return f"{CONFIRM_PREFIX}{_PROCESS_TOKEN}-{next(_confirm_numbers)}"
