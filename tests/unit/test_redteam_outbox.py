"""Red-team checks of the outbox: one user cannot keep more than a bounded number waiting.

On SQLite and on PostgreSQL (several gateway processes share one queue there).
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from mappings.outbox import DELIVERED, OutboxFull
from mappings.store import Store


async def test_a_user_past_the_bound_is_refused_and_others_are_not(store: Store) -> None:
    name = "t" + uuid.uuid4().hex[:8]
    outbox = store.outbox
    sent = await asyncio.gather(
        *(outbox.enqueue(name, "a@example.org", f"c{n}", {}, max_waiting=5) for n in range(8)),
        return_exceptions=True,
    )
    assert sum(isinstance(result, OutboxFull) for result in sent) == 3
    assert await outbox.enqueue(name, "b@example.org", "c", {}, max_waiting=5) is not None
    # A message that left the queue makes room for one more.
    waiting = [result for result in sent if not isinstance(result, BaseException)]
    assert waiting[0] is not None
    await outbox.mark_delivered(waiting[0].id)
    assert (await outbox.get(waiting[0].id)).state == DELIVERED  # type: ignore[union-attr]
    assert await outbox.enqueue(name, "a@example.org", "c9", {}, max_waiting=5) is not None
    with pytest.raises(OutboxFull):
        await outbox.enqueue(name, "a@example.org", "c10", {}, max_waiting=5)
