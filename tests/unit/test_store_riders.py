"""Message id maps committed in the transaction of the inbound event they belong to.

A webhook post's event and its map were two transactions before its 202; now they are one,
and the map must still be kept only for an event that is new, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from component.group_commit import GroupCommit
from mappings.message_ids import MessageIdMapping, stored_with, take_riders
from mappings.store import IntegrityError, Store
from transports.events import InboundMessage


def mapping(transport: str, remote_id: str, user: str = "a@example.org") -> MessageIdMapping:
    return MessageIdMapping(transport, user, "hook", "in", f"x-{remote_id}", remote_id, body="hi")


async def remote_ids(store: Store, transport: str) -> list[str]:
    rows = await store.fetch_all(
        "SELECT remote_id FROM message_ids WHERE transport = :t ORDER BY id", t=transport
    )
    return [row[0] for row in rows]


async def test_maps_ride_only_with_events_that_are_new(store: Store) -> None:
    name = "t" + uuid.uuid4().hex[:8]
    assert await store.inbound.put(name, "a@example.org", {"n": 0}, dedup_key="old")
    stored = await store.inbound.put_many(
        name,
        [
            ("a@example.org", {"n": 1}, "new"),
            ("a@example.org", {"n": 2}, "old"),  # seen in an earlier commit
            ("b@example.org", {"n": 3}, None),  # no key: never a duplicate
            ("a@example.org", {"n": 4}, "new"),  # twice in this batch: the first wins
            ("b@example.org", {"n": 5}, None),  # no map of its own
        ],
        riders=[
            (mapping(name, "p1"),),
            (mapping(name, "p2"),),
            (mapping(name, "p3"), mapping(name, "p3b")),
            (mapping(name, "p4"),),
            (),
        ],
    )
    assert stored == [True, False, True, False, True]
    assert await remote_ids(store, name) == ["p1", "p3", "p3b"]
    found = await store.message_ids.by_remote_id(name, "p1")
    assert found == mapping(name, "p1")


async def test_a_map_that_cannot_be_kept_takes_its_event_with_it(store: Store) -> None:
    """One transaction: if the map fails, the event is not stored either (and the caller
    answers 503, not 202, so the sender tries again)."""
    name = "t" + uuid.uuid4().hex[:8]
    broken = MessageIdMapping(name, None, "hook", "in", "x", "p1")  # type: ignore[arg-type]
    with pytest.raises(IntegrityError):
        await store.inbound.put_many(name, [("a@example.org", {"n": 1}, "k1")], riders=[(broken,)])
    assert await store.inbound.backlog(name) == 0
    assert await remote_ids(store, name) == []


async def test_group_commit_takes_the_callers_maps_once(store: Store) -> None:
    name = "t" + uuid.uuid4().hex[:8]
    writer = GroupCommit(store, name, lambda: False, lambda _committed: None)

    async def post(n: int, key: str) -> tuple[bool, bool]:
        with stored_with([mapping(name, f"p{n}")]) as riders:
            stored = await writer.put(InboundMessage("a@example.org", "hook", f"{n}"), key)
            assert take_riders() == ()  # taken once: a second store takes none
        return stored, riders.taken

    # the same key in flight twice at once: each post's map goes with its own event only
    results = await asyncio.gather(post(1, "k"), post(2, "k"), post(3, "other"))
    assert results == [(True, True), (False, True), (True, True)]
    assert await remote_ids(store, name) == ["p1", "p3"]


async def test_maps_not_taken_are_left_to_the_caller() -> None:
    late: list[tuple[MessageIdMapping, ...]] = []
    gate = asyncio.Event()

    async def started_in_the_block() -> None:
        await gate.wait()
        late.append(take_riders())

    with stored_with([mapping("t", "p1")]) as riders:
        task = asyncio.create_task(started_in_the_block())
    gate.set()
    await task
    assert not riders.taken
    assert late == [()]  # a task started in the block shares its context, not its maps
    with stored_with([]) as riders:
        assert take_riders() == ()
    assert not riders.taken
