"""The store on both backends: registrations, contacts, the outbox and the inbound queue.

Every test runs on SQLite and on a real PostgreSQL (started once per session by conftest).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mappings.contacts import ContactMapping
from mappings.outbox import DELIVERED, FAILED, PENDING, SENDING, RetryPolicy
from mappings.postgres_db import positional
from mappings.registrations import AddressTaken, Registration
from mappings.store import IntegrityError, Store, StoreError


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        opened = await Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    else:
        opened = await Store.open(request.getfixturevalue("postgres_url"))
        # One database for the session: start each test from empty tables.
        for table in ("registrations", "contacts", "outbox", "inbound", "message_ids"):
            await opened.execute(f"DELETE FROM {table}")
    yield opened
    await opened.close()


def transport() -> str:
    return "t" + uuid.uuid4().hex[:8]


async def test_migrations_are_idempotent_and_versioned(store: Store) -> None:
    name = transport()
    migrations = ["CREATE TABLE {x}_a (id {id_pk})".replace("{x}", name)]
    await store.migrate(name, migrations)
    await store.migrate(name, migrations)  # nothing to do the second time
    migrations.append(f"ALTER TABLE {name}_a ADD COLUMN note TEXT")
    await store.migrate(name, migrations)
    await store.execute(f"INSERT INTO {name}_a (note) VALUES (:n)", n="x")
    with pytest.raises(StoreError, match="newer than this Portway knows"):
        await store.migrate(name, migrations[:1])


def test_named_parameters_are_numbered_for_asyncpg() -> None:
    sql = (
        "SELECT CAST(:a AS TEXT), :b::bigint, ':not_a' || \"x:y\" FROM t"
        " WHERE a = :a AND id = ANY(:ids)"
    )
    assert positional(sql) == (
        "SELECT CAST($1 AS TEXT), $2::bigint, ':not_a' || \"x:y\" FROM t"
        " WHERE a = $1 AND id = ANY($3)",
        ("a", "b", "ids"),
    )
    assert positional("SELECT 1") == ("SELECT 1", ())


async def notes_table(store: Store) -> str:
    name = transport()
    await store.migrate(name, [f"CREATE TABLE {name}_n (id {{id_pk}}, note TEXT UNIQUE)"])
    return f"{name}_n"


async def notes(store: Store, table: str) -> list[str]:
    return [row[0] for row in await store.fetch_all(f"SELECT note FROM {table} ORDER BY note")]


async def test_both_drivers_constraint_violations_are_the_stores_integrity_error(
    store: Store,
) -> None:
    table = await notes_table(store)
    assert await store.execute(f"INSERT INTO {table} (note) VALUES (:n)", n="x") == 1
    with pytest.raises(IntegrityError):
        await store.execute(f"INSERT INTO {table} (note) VALUES (:n)", n="x")
    with pytest.raises(IntegrityError):
        await store.commit_rows([(f"INSERT INTO {table} (note) VALUES (:n)", {"n": "x"})])
    with pytest.raises(IntegrityError):
        async with store.transaction() as conn:
            await conn.execute(f"INSERT INTO {table} (note) VALUES (:n)", {"n": "y"})
            await conn.execute(f"INSERT INTO {table} (note) VALUES (:n)", {"n": "x"})
    assert await notes(store, table) == ["x"]  # the transaction's "y" was rolled back too


async def test_results_rows_and_counts(store: Store) -> None:
    table = await notes_table(store)
    async with store.transaction() as conn:
        inserted = await conn.execute(
            f"INSERT INTO {table} (note) VALUES (:n)", [{"n": "a"}, {"n": "b"}, {"n": "c"}]
        )
        assert inserted.rowcount == 3
        returned = await conn.execute(
            f"UPDATE {table} SET note = note || :s WHERE note <> :n RETURNING note",
            {"s": "!", "n": "a"},
        )
        assert sorted(returned.fetchall()) == [("b!",), ("c!",)]
    assert await store.execute(f"DELETE FROM {table} WHERE note LIKE :p", p="%!") == 2
    assert await store.fetch_one(f"SELECT note, :x FROM {table}", x="y") == ("a", "y")
    assert await store.fetch_one(f"SELECT note FROM {table} WHERE note = :n", n="z") is None


async def test_concurrent_transactions_and_statements_keep_to_themselves(store: Store) -> None:
    """Many tasks at once: each transaction commits or rolls back only its own statements,
    and a lone statement is never caught in another task's transaction."""
    table = await notes_table(store)

    async def in_a_transaction(n: int) -> None:
        async with store.transaction() as conn:
            await conn.execute(f"INSERT INTO {table} (note) VALUES (:n)", {"n": f"t{n:02}"})
            await asyncio.sleep(0)
            await conn.execute(f"INSERT INTO {table} (note) VALUES (:n)", {"n": f"u{n:02}"})
            await asyncio.sleep(0)
            if n % 2:
                raise ValueError(n)

    async def alone(n: int) -> None:
        await asyncio.sleep(0)
        await store.execute(f"INSERT INTO {table} (note) VALUES (:n)", n=f"s{n:02}")

    outcomes = await asyncio.gather(
        *(in_a_transaction(n) for n in range(10)),
        *(alone(n) for n in range(10)),
        return_exceptions=True,
    )
    assert [type(outcome) for outcome in outcomes[:10]] == [type(None), ValueError] * 5
    assert outcomes[10:] == [None] * 10
    kept = [f"{p}{n:02}" for p in "tu" for n in range(0, 10, 2)]
    assert await notes(store, table) == sorted(kept + [f"s{n:02}" for n in range(10)])


async def test_registration_binding_is_one_to_one(store: Store) -> None:
    await store.registrations.save(Registration("sms", "alice@example.org", "+15550001111"))
    with pytest.raises(AddressTaken) as taken:
        await store.registrations.save(Registration("sms", "bob@example.org", "+15550001111"))
    assert taken.value.owner == "alice@example.org"
    # Re-saving your own binding, or binding a new number, is fine.
    await store.registrations.save(Registration("sms", "alice@example.org", "+15550001111"))
    await store.registrations.save(Registration("sms", "alice@example.org", "+15550002222"))
    found = await store.registrations.by_address("sms", "+15550002222")
    assert found is not None and found.user_jid == "alice@example.org"
    assert await store.registrations.by_address("sms", "+15550001111") is None


async def test_unregistering_removes_the_users_data(store: Store) -> None:
    await store.registrations.save(Registration("email", "alice@example.org", "alice"))
    await store.contacts.add(ContactMapping("email", "alice@example.org", "juliet@capulet.lit"))
    await store.settings.put("email", "alice@example.org", "prefs", {"a": 1})
    item = await store.outbox.enqueue("email", "alice@example.org", "juliet@capulet.lit", {})
    assert item is not None
    assert await store.registrations.remove("email", "alice@example.org")
    assert await store.registrations.get("email", "alice@example.org") is None
    assert await store.contacts.list("email", "alice@example.org") == []
    assert await store.settings.get("email", "alice@example.org", "prefs") == {}
    left = await store.outbox.get(item.id)
    assert left is not None and left.state == FAILED and left.last_error == "unregistered"
    assert not await store.registrations.remove("email", "alice@example.org")


async def test_contacts(store: Store) -> None:
    contact = ContactMapping("sms", "alice@example.org", "+15557654321", "+1 555-765-4321")
    assert await store.contacts.add(contact)
    assert not await store.contacts.add(contact)
    await store.contacts.update("sms", "alice@example.org", "+15557654321", display_name="Mom")
    got = await store.contacts.get("sms", "alice@example.org", "+15557654321")
    assert got is not None and got.display_name == "Mom" and got.subscription == "none"
    with pytest.raises(ValueError):
        await store.contacts.update("sms", "alice@example.org", "+15557654321", subscription="x")


async def test_outbox_dedup_and_lifecycle(store: Store) -> None:
    name = transport()
    first = await store.outbox.enqueue(name, "a@example.org", "c", {"n": 1}, dedup_key="k1")
    assert first is not None and first.state == PENDING
    assert await store.outbox.enqueue(name, "a@example.org", "c", {"n": 1}, dedup_key="k1") is None
    claimed = await store.outbox.claim(name)
    assert [item.id for item in claimed] == [first.id]
    assert claimed[0].state == SENDING and claimed[0].attempts == 1
    assert await store.outbox.claim(name) == []  # leased: nobody else gets it
    await store.outbox.retry_later(first.id, "relay down", at=0)
    again = await store.outbox.claim(name)
    assert [item.attempts for item in again] == [2]
    await store.outbox.mark_delivered(first.id, "remote-1")
    done = await store.outbox.get(first.id)
    assert done is not None and done.state == DELIVERED and done.remote_id == "remote-1"
    assert done.last_error == "relay down"
    assert await store.outbox.claim(name) == []


async def test_outbox_waits_for_next_attempt(store: Store) -> None:
    name = transport()
    item = await store.outbox.enqueue(name, "a@example.org", "c", {}, now=1000.0)
    assert item is not None
    assert await store.outbox.claim(name, now=999.0) == []
    assert len(await store.outbox.claim(name, now=1000.0)) == 1
    await store.outbox.retry_later(item.id, "later", at=5000.0)
    assert await store.outbox.next_due(name) == 5000.0
    assert await store.outbox.claim(name, now=4999.0) == []


async def test_a_crashed_workers_lease_expires(store: Store) -> None:
    name = transport()
    item = await store.outbox.enqueue(name, "a@example.org", "c", {}, now=1000.0)
    assert item is not None
    assert len(await store.outbox.claim(name, lease_seconds=60, now=1000.0)) == 1
    # The worker died without recording anything: the row is due again after the lease.
    assert await store.outbox.claim(name, now=1059.0) == []
    retaken = await store.outbox.claim(name, now=1061.0)
    assert [entry.attempts for entry in retaken] == [2]


async def test_concurrent_claims_never_share_an_item(store: Store) -> None:
    """Several workers (processes, on PostgreSQL) claiming at once each get distinct rows."""
    name = transport()
    for n in range(40):
        await store.outbox.enqueue(name, "a@example.org", f"c{n % 4}", {"n": n})
    others = [store]
    if store.is_postgres:
        others += [await Store.open(store.url) for _ in range(2)]
    batches = await asyncio.gather(
        *(s.outbox.claim(name, limit=7) for s in others for _ in range(3))
    )
    ids = [item.id for batch in batches for item in batch]
    assert len(ids) == len(set(ids))
    for extra in others[1:]:
        await extra.close()


async def test_inbound_queue_order_and_dedup(store: Store) -> None:
    name = transport()
    for n in range(5):
        assert await store.inbound.put(name, "a@example.org", {"n": n}, dedup_key=f"m{n}")
    assert await store.inbound.put(name, "a@example.org", {"n": 0}, dedup_key="m0") is None
    queued = await store.inbound.claim(name, limit=2)
    assert [event.event["n"] for event in queued] == [0, 1]
    assert await store.inbound.claim(name, limit=0) == []
    await store.inbound.await_confirmation([queued[0].id, queued[1].id], "ping-1")
    assert await store.inbound.unconfirmed("ping-1") == 2
    assert await store.inbound.put_many(name, [], confirmed=["ping-1"]) == []
    assert await store.inbound.unconfirmed("ping-1") == 0
    assert await store.inbound.backlog(name) == 3
    # A delivered event's key still blocks a retry of the same message.
    assert await store.inbound.put(name, "a@example.org", {"n": 1}, dedup_key="m1") is None


def test_retry_policy_backoff_is_capped_and_jittered() -> None:
    policy = RetryPolicy(base_seconds=2, cap_seconds=60, give_up_after_seconds=3600)
    rng = random.Random(7)
    delays = [policy.delay(attempt, rng) for attempt in range(1, 12)]
    assert 1 <= delays[0] <= 2
    assert all(30 <= d <= 60 for d in delays[6:])
    assert len(set(delays)) == len(delays)  # jittered, not a fixed ladder
    assert not policy.gives_up(created_at=0, now=3599)
    assert policy.gives_up(created_at=0, now=3600)


async def test_group_commit_stores_a_batch_and_drops_duplicates(store: Store) -> None:
    name = transport()
    assert await store.inbound.put(name, "a@example.org", {"n": 0}, dedup_key="old")
    stored = await store.inbound.put_many(
        name,
        [
            ("a@example.org", {"n": 1}, "new"),
            ("a@example.org", {"n": 2}, "old"),  # seen in an earlier commit
            ("b@example.org", {"n": 3}, None),  # no key: never a duplicate
            ("a@example.org", {"n": 4}, "new"),  # twice in this batch
            ("b@example.org", {"n": 5}, None),
        ],
    )
    assert stored == [True, False, True, False, True]
    queued = await store.inbound.claim(name)
    assert [event.event["n"] for event in queued] == [0, 1, 3, 5]
    await store.inbound.await_confirmation([queued[1].id, queued[2].id], "ping-2")
    await store.inbound.await_confirmation([queued[0].id, queued[3].id], "ping-3")
    await store.inbound.put_many(name, [], confirmed=["ping-2"])
    assert await store.inbound.release("ping-3") == 2
    assert [event.event["n"] for event in await store.inbound.claim(name)] == [0, 5]


async def test_events_stored_as_sent_wait_for_their_ping(store: Store) -> None:
    """Events sent at once are stored claimed: the drainer leaves them alone unless their
    ping goes unanswered (released) or their process dies (lease runs out)."""
    name = transport()
    stored = await store.inbound.put_many(
        name,
        [
            ("a@example.org", {"n": 1}, "k1"),
            ("b@example.net", {"n": 2}, None),
            ("a@example.org", {"n": 3}, "k1"),  # a duplicate: not stored
        ],
        confirm_ids=["ping-a", "ping-b", "ping-a"],
    )
    assert stored == [True, True, False]
    assert await store.inbound.claim(name) == []
    assert await store.inbound.backlog(name) == 0
    assert await store.inbound.unconfirmed("ping-a") == 1
    # Confirmed with the next commit, which stores another event.
    await store.inbound.put_many(name, [("c@example.org", {"n": 9}, None)], confirmed=["ping-a"])
    assert await store.inbound.unconfirmed("ping-a") == 0
    assert await store.inbound.release("ping-a") == 0  # confirmed stays delivered
    assert await store.inbound.release("ping-b") == 1
    assert [event.event["n"] for event in await store.inbound.claim(name)] == [2, 9]
    # A dead process's lease runs out and its events are claimed again.
    await store.inbound.put_many(
        name, [("a@example.org", {"n": 4}, None)], confirm_ids=["ping-c"], lease_seconds=-1
    )
    assert [event.event["n"] for event in await store.inbound.claim(name)] == [4]


async def test_inbound_claims_are_leased_and_exclusive(store: Store) -> None:
    name = transport()
    for n in range(30):
        await store.inbound.put(name, "a@example.org", {"n": n})
    stores = [store]
    if store.is_postgres:
        stores += [await Store.open(store.url) for _ in range(2)]
    batches = await asyncio.gather(*(s.inbound.claim(name, limit=4) for s in stores * 3))
    ids = [event.id for batch in batches for event in batch]
    assert len(ids) == len(set(ids))
    # A dead process's lease runs out, and its events are claimed again.
    taken = await store.inbound.claim(name, limit=100, lease_seconds=-1)
    assert len(taken) == 30 - len(ids)
    again = await store.inbound.claim(name, limit=100)
    assert {event.id for event in again} == {event.id for event in taken}
    for extra in stores[1:]:
        await extra.close()


async def test_leases_can_be_released_after_a_crash(store: Store) -> None:
    name = transport()
    item = await store.outbox.enqueue(name, "a@example.org", "c", {})
    assert item is not None
    await store.inbound.put(name, "a@example.org", {"n": 1})
    assert len(await store.outbox.claim(name)) == 1
    assert len(await store.inbound.claim(name)) == 1
    assert await store.outbox.claim(name) == [] and await store.inbound.claim(name) == []
    assert await store.outbox.release_leases() >= 1
    assert await store.inbound.release_leases() >= 1
    assert [i.id for i in await store.outbox.claim(name)] == [item.id]
    assert len(await store.inbound.claim(name)) == 1


async def test_a_conversation_goes_out_in_order(store: Store) -> None:
    """Only the oldest open message of a conversation is claimable, even for other workers."""
    name = transport()
    first = await store.outbox.enqueue(name, "a@example.org", "bob", {"n": 1}, now=1000.0)
    second = await store.outbox.enqueue(name, "a@example.org", "bob", {"n": 2}, now=1000.0)
    other = await store.outbox.enqueue(name, "a@example.org", "carol", {"n": 3}, now=1000.0)
    assert first and second and other
    claimed = await store.outbox.claim(name, now=1000.0)
    assert [item.id for item in claimed] == [first.id, other.id]
    await store.outbox.mark_delivered(other.id)
    # While the first waits for a retry, the second waits behind it.
    await store.outbox.retry_later(first.id, "relay down", at=2000.0)
    assert await store.outbox.claim(name, now=1500.0) == []
    assert [item.id for item in await store.outbox.claim(name, now=2000.0)] == [first.id]
    await store.outbox.mark_delivered(first.id)
    assert [item.id for item in await store.outbox.claim(name, now=2000.0)] == [second.id]
