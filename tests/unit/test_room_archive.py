"""The room archive on both backends: origin ids and times, per-room ids, the migration.

Every test runs on SQLite and on a real PostgreSQL (started once per session by conftest).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mappings.archive import MIGRATIONS, ArchiveQuery, RoomArchive
from mappings.store import Store

ROOM = "#chan%irc.example"


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        opened = await Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    else:
        opened = await Store.open(request.getfixturevalue("postgres_url"))
        # One database for the session: start each test from no archive at all.
        await opened.execute("DROP TABLE IF EXISTS room_archive")
        await opened.execute("DELETE FROM portway_schema WHERE name = 'room_archive'")
    yield opened
    await opened.close()


async def opened(store: Store) -> RoomArchive:
    archive = RoomArchive(store, "irc")
    await archive.migrate()
    return archive


async def test_an_origin_id_and_time_are_kept(store: Store) -> None:
    archive = await opened(store)
    kept = archive.add_soon("a@x", ROOM, "bob", "hi", timestamp=1700000000.25, stanza_id="m-1")
    assert (kept.stanza_id, kept.timestamp) == ("m-1", 1700000000.25)
    fresh = archive.add_soon("a@x", ROOM, "bob", "no id")
    assert fresh.stanza_id and fresh.stanza_id != "m-1"
    first, second = await archive.last("a@x", ROOM, 5)
    assert (first.stanza_id, first.body, first.timestamp) == ("m-1", "hi", 1700000000.25)
    assert second.stanza_id == fresh.stanza_id


async def test_one_msgid_heard_by_two_users_and_twice_by_one(store: Store) -> None:
    """Every gateway user in a channel hears a line under the server's one msgid; a replay
    of it is kept once, and neither loses the lines written with it."""
    archive = await opened(store)
    archive.add_soon("a@x", ROOM, "bob", "shared", stanza_id="m-1")
    archive.add_soon("b@x", ROOM, "bob", "shared", stanza_id="m-1")
    archive.add_soon("a@x", ROOM, "bob", "shared", stanza_id="m-1")
    archive.add_soon("a@x", ROOM, "bob", "after", stanza_id="m-2")
    await archive.flush()
    assert [m.body for m in await archive.last("a@x", ROOM, 10)] == ["shared", "after"]
    assert [m.body for m in await archive.last("b@x", ROOM, 10)] == ["shared"]
    page = await archive.query("b@x", ROOM, ArchiveQuery(after="m-1"))
    assert page.messages == () and page.complete
    page = await archive.query("a@x", ROOM, ArchiveQuery(after="m-1"))
    assert [m.stanza_id for m in page.messages] == ["m-2"]


async def test_the_archive_of_the_first_schema_is_kept(store: Store) -> None:
    await store.migrate("room_archive", MIGRATIONS[:1])
    await store.execute(
        "INSERT INTO room_archive (transport, user_jid, room, stanza_id, nick, body, notice,"
        " created_at) VALUES ('irc', 'a@x', :room, 'old-1', 'bob', 'before', 0, 1.5)",
        room=ROOM,
    )
    archive = await opened(store)
    archive.add_soon("b@x", ROOM, "bob", "same id, other user", stanza_id="old-1")
    await archive.flush()
    old = await archive.last("a@x", ROOM, 5)
    assert [(m.stanza_id, m.body, m.timestamp) for m in old] == [("old-1", "before", 1.5)]
    assert [m.body for m in await archive.last("b@x", ROOM, 5)] == ["same id, other user"]
