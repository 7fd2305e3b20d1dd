"""Group commits of the hot paths, on both backends: concurrent writers share one transaction.

One transaction per accepted webhook post for its id map made the database the gateway's
bottleneck (issue 14); these tests keep the maps of concurrent posts in one commit, and keep
each caller's promise: it returns once its own map is committed, or raises if it was not.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from mappings.message_ids import MessageIdMapping
from mappings.store import Store


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        opened = await Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    else:
        opened = await Store.open(request.getfixturevalue("postgres_url"))
        await opened.execute("DELETE FROM message_ids")
    yield opened
    await opened.close()


def counting_commits(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the store's group commits (how many statements each carried)."""
    commits: list[int] = []
    real = store.commit_rows

    async def counted(statements: Sequence[tuple[str, dict[str, Any]]]) -> list[list[Any]]:
        commits.append(len(statements))
        return await real(statements)

    monkeypatch.setattr(store, "commit_rows", counted)
    return commits


def mapping(n: int) -> MessageIdMapping:
    return MessageIdMapping("webhook", "alice@example.org", "alerts", "in", f"x{n}", f"post-{n}")


async def test_concurrent_id_maps_are_committed_together(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    commits = counting_commits(store, monkeypatch)
    await asyncio.gather(*(store.message_ids.record(mapping(n)) for n in range(50)))
    # the first record commits alone; the 49 that came while it committed, in one more
    assert 1 <= len(commits) <= 2, commits
    for n in range(50):
        found = await store.message_ids.find("webhook", "alice@example.org", f"post-{n}")
        assert found is not None and found.xmpp_id == f"x{n}"


async def test_a_lone_id_map_is_committed_before_record_returns(store: Store) -> None:
    await store.message_ids.record(mapping(1))
    found = await store.message_ids.by_remote_id("webhook", "post-1")
    assert found is not None and found.contact == "alerts"


async def test_a_failed_commit_fails_every_record_in_it_and_the_next_one_works(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = store.commit_rows

    async def broken(statements: Sequence[tuple[str, dict[str, Any]]]) -> list[list[Any]]:
        raise ConnectionError("database went away")

    monkeypatch.setattr(store, "commit_rows", broken)
    outcomes = await asyncio.gather(
        *(store.message_ids.record(mapping(n)) for n in range(5)), return_exceptions=True
    )
    assert all(isinstance(outcome, ConnectionError) for outcome in outcomes), outcomes
    monkeypatch.setattr(store, "commit_rows", real)
    await store.message_ids.record(mapping(9))
    assert await store.message_ids.by_remote_id("webhook", "post-9") is not None
    assert await store.message_ids.by_remote_id("webhook", "post-0") is None


async def test_a_failing_statement_commits_nothing_of_its_transaction(store: Store) -> None:
    with pytest.raises(Exception, match=r"(?i)no such table|does not exist"):
        await store.commit_rows(
            [
                (
                    "INSERT INTO message_ids (transport, user_jid, contact, direction,"
                    " created_at) VALUES ('webhook', 'a@example.org', 'c', 'in', 0)",
                    {},
                ),
                ("INSERT INTO no_such_table (x) VALUES (1)", {}),
            ]
        )
    assert await store.message_ids.last_with("webhook", "a@example.org", "c") is None
    rows = await store.fetch_all("SELECT COUNT(*) FROM message_ids")
    assert rows[0][0] == 0
    # the connection is usable afterwards
    [[(count,)]] = await store.commit_rows([("SELECT COUNT(*) FROM message_ids", {})])
    assert count == 0


async def test_inbound_events_of_one_batch_take_one_commit(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    commits = counting_commits(store, monkeypatch)
    items: list[tuple[str, dict[str, Any], str | None]] = [
        ("alice@example.org", {"n": n}, f"key-{n}") for n in range(3)
    ]
    assert await store.inbound.put_many("webhook", items, confirmed=["ping-x"]) == [True] * 3
    assert await store.inbound.put_many("webhook", items[:1]) == [False]  # a replay
    # the confirmation and the insert in one transaction; the replay in one of its own
    assert commits == [2, 1]
