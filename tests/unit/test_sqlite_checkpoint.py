"""The SQLite store's WAL checkpoints: in a thread of their own, never in a commit, and the
WAL bounded under writes that never pause."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

import mappings.sqlite_db as sqlite_db
from mappings.sqlite_db import Checkpointer
from mappings.store import Store

BOUND = 256 * 1024


def checkpoint_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "sqlite-checkpoint"]


def write_steadily(path: Path, seconds: float) -> int:
    """Commit rows one after another, as a busy gateway does; the WAL's largest size.

    The gateway's writer leaves a moment between two commits (each is a hop from the event
    loop to aiosqlite's thread and back): so does this one."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA busy_timeout=10000")
    connection.execute("PRAGMA wal_autocheckpoint=0")
    connection.execute("CREATE TABLE IF NOT EXISTS t (x TEXT)")
    largest = 0
    deadline = time.monotonic() + seconds
    wal = Path(f"{path}-wal")
    while time.monotonic() < deadline:
        connection.execute("INSERT INTO t VALUES (:x)", {"x": "y" * 2000})
        time.sleep(0.0002)
        largest = max(largest, wal.stat().st_size if wal.exists() else 0)
    connection.close()
    return largest


def write_checkpointed(path: Path) -> int:
    """:func:`write_steadily` for a second on a new database, with a checkpointer that
    looks every 50 ms; the WAL's largest size."""
    wal_database(path)
    checkpointer = Checkpointer(str(path), interval=0.05)
    checkpointer.start()
    try:
        return write_steadily(path, 1.0)
    finally:
        checkpointer.stop()


def wal_database(path: Path) -> None:
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.close()


async def test_the_stores_commits_never_checkpoint(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        assert await store.fetch_one("PRAGMA wal_autocheckpoint") == (0,)
        assert await store.fetch_one("PRAGMA temp_store") == (2,)  # MEMORY
        assert len(checkpoint_threads()) == 1
    finally:
        await store.close()
    assert checkpoint_threads() == []
    # the last checkpoint left nothing in the WAL
    wal = tmp_path / "store.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0


async def test_an_in_memory_store_has_no_checkpointer() -> None:
    store = await Store.open("sqlite:///:memory:")
    try:
        assert checkpoint_threads() == []
    finally:
        await store.close()


def test_the_wal_stays_bounded_under_steady_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_db, "WAL_BOUND_BYTES", BOUND)
    unchecked = tmp_path / "unchecked.db"
    wal_database(unchecked)
    # Without checkpoints the WAL grows with every commit: what the bound is there for.
    grown = write_steadily(unchecked, 1.0)
    assert grown > 8 * BOUND

    checked = tmp_path / "checked.db"
    largest = write_checkpointed(checked)
    # Past the bound, it is emptied within a tenth of a second or so: over it by what is
    # written meanwhile (a second's writes made the WAL ``grown``), never by much more.
    assert largest < BOUND + grown / 3
    wal = Path(f"{checked}-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # the final checkpoint emptied it
    rows = sqlite3.connect(checked).execute("SELECT COUNT(*) FROM t").fetchone()[0]
    assert rows > 0


def test_the_wal_starts_over_each_checkpoint_without_reaching_the_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under writes that never stop, each checkpoint lets the next commit start the WAL
    over: it stays the size of what comes between two checkpoints, and the emptying at the
    bound (which holds writers back for a while) is never needed."""
    monkeypatch.setattr(sqlite_db, "WAL_BOUND_BYTES", 1 << 40)  # never reached
    unchecked = tmp_path / "unchecked.db"
    wal_database(unchecked)
    grown = write_steadily(unchecked, 1.0)

    checked = tmp_path / "checked.db"
    largest = write_checkpointed(checked)
    # twenty checkpoints in the second: each WAL holds about a twentieth of its writes
    assert largest < grown / 4, (largest, grown)
