"""The inbound queue under a poison event: counted attempts, one at a time, set aside.

On SQLite and on a real PostgreSQL, as tests/unit/test_store.py.
"""

from __future__ import annotations

import time
import uuid

from component.set_aside import set_aside_notice
from mappings.inbound import QUEUED, SET_ASIDE, QueuedEvent
from mappings.store import Store


def transport() -> str:
    return "t" + uuid.uuid4().hex[:8]


async def claim_and_fail(store: Store, name: str, limit: int = 200) -> tuple[list[int], list[int]]:
    """One delivery attempt whose confirmation never comes: (claimed, set aside)."""
    claimed = await store.inbound.claim(name, limit)
    ping = "ping-" + uuid.uuid4().hex
    await store.inbound.await_confirmation([event.id for event in claimed], ping)
    set_aside = await store.inbound.fail(ping, max_attempts=3)
    return [event.event["n"] for event in claimed], [event.event["n"] for event in set_aside]


async def claim_and_confirm(store: Store, name: str) -> list[int]:
    claimed = await store.inbound.claim(name, 200)
    ping = "ping-" + uuid.uuid4().hex
    await store.inbound.await_confirmation([event.id for event in claimed], ping)
    await store.inbound.put_many(name, [], confirmed=[ping])
    return [event.event["n"] for event in claimed]


async def test_a_failed_batch_is_retried_one_by_one_and_only_the_culprit_is_set_aside(
    store: Store,
) -> None:
    name = transport()
    for n in range(5):
        await store.inbound.put(name, "a@example.org", {"n": n})
    # The whole batch went out and the stream died: every event has one attempt...
    assert await claim_and_fail(store, name) == ([0, 1, 2, 3, 4], [])
    # ... so they are claimed one at a time, and event 0 goes through.
    assert await claim_and_confirm(store, name) == [0]
    # Event 1 is the culprit: it fails alone, again and again, and is set aside.
    assert await claim_and_fail(store, name) == ([1], [])
    assert await claim_and_fail(store, name) == ([1], [1])
    # Behind it, the rest flows (one by one while they carry the failed batch's attempt).
    assert await claim_and_confirm(store, name) == [2]
    assert await claim_and_confirm(store, name) == [3]
    assert await claim_and_confirm(store, name) == [4]
    await store.inbound.put(name, "a@example.org", {"n": 5})
    await store.inbound.put(name, "a@example.org", {"n": 6})
    assert await claim_and_confirm(store, name) == [5, 6]  # whole batches again
    kept = await store.inbound.set_aside(name)
    assert [(event.event["n"], event.attempts) for event in kept] == [(1, 3)]
    assert await store.inbound.backlog(name) == 0


async def test_set_aside_events_are_listed_retried_and_dropped(store: Store) -> None:
    name, other = transport(), transport()
    for n, owner in enumerate((name, name, other)):
        await store.inbound.put(owner, "a@example.org", {"n": n})
        for _ in range(3):
            await claim_and_fail(store, owner)
    assert [event.event["n"] for event in await store.inbound.set_aside(name)] == [0, 1]
    every = [event.event["n"] for event in await store.inbound.set_aside()]
    assert {0, 1, 2} <= set(every)
    first, second = await store.inbound.set_aside(name)
    assert await store.inbound.retry(first.id) == 1
    assert await store.inbound.retry(first.id) == 0  # queued now, no longer set aside
    claimed = await store.inbound.claim(name, 200)
    assert [(event.event["n"], event.attempts) for event in claimed] == [(0, 0)]
    assert await store.inbound.drop(second.id) == 1
    assert await store.inbound.drop(second.id) == 0
    assert await store.inbound.drop(claimed[0].id) == 0  # only set-aside events are dropped
    assert await store.inbound.set_aside(name) == []
    assert await store.inbound.retry(None) >= 1  # all of them: the other transport's
    assert await store.inbound.set_aside(other) == []


async def test_prune_forgets_old_delivered_keys_and_keeps_the_rest(store: Store) -> None:
    name = transport()
    await store.inbound.put(name, "a@example.org", {"n": 0}, dedup_key="old", delivered=True)
    await store.inbound.put(name, "a@example.org", {"n": 1}, dedup_key="waiting")
    await store.inbound.put(name, "a@example.org", {"n": 2}, dedup_key="poison")
    await store.execute(
        "UPDATE inbound SET delivered_at = :then WHERE dedup_key = 'old'", then=time.time() - 100
    )
    await store.execute(
        "UPDATE inbound SET state = :state WHERE dedup_key = 'poison'", state=SET_ASIDE
    )
    assert await store.inbound.prune(50) >= 1
    assert await store.inbound.put(name, "a@example.org", {"n": 0}, dedup_key="old") is not None
    rows = await store.fetch_all(
        "SELECT dedup_key, state FROM inbound WHERE transport = :t ORDER BY id", t=name
    )
    assert [tuple(row) for row in rows] == [
        ("waiting", QUEUED),
        ("poison", SET_ASIDE),
        ("old", QUEUED),
    ]


def test_the_user_is_told_without_the_content() -> None:
    secret_body = "your code is 424242"
    queued = QueuedEvent(
        7,
        "email",
        "alice@example.org/phone",
        {"kind": "message", "fields": {"contact": "juliet@capulet.lit", "body": secret_body}},
        attempts=5,
    )
    notice = set_aside_notice(queued, lambda address: f"{address}@mail.example.org")
    assert notice is not None
    assert notice.user_jid == "alice@example.org" and notice.contact == ""
    assert "juliet@capulet.lit@mail.example.org" in notice.body
    assert "queue item 7" in notice.body and "424242" not in notice.body
    # Nobody to tell for a room's post, nor about a notice itself (no notice of a notice).
    post = QueuedEvent(
        8,
        "webhook",
        "ops@conference.example.org",
        {"kind": "room-post", "fields": {"contact": "alerts"}},
        attempts=5,
    )
    assert set_aside_notice(post, str) is None
    itself = QueuedEvent(
        9,
        "email",
        "alice@example.org",
        {"kind": "message", "fields": {"contact": "", "body": "x"}},
        attempts=5,
    )
    assert set_aside_notice(itself, str) is None
