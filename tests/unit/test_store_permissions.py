"""The SQLite database holds hook secrets and IRC passwords: only the gateway's user reads it."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from mappings.store import Store


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The common 022, under which files are created world-readable unless asked otherwise."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


async def test_a_new_database_and_its_directory_are_private(tmp_path: Path) -> None:
    database = tmp_path / "state" / "portway.db"
    store = await Store.open(f"sqlite:///{database}")
    try:
        await store.settings.put("irc", "alice@example.org", "server:x", {"password": "pw"})
        assert mode(database.parent) == 0o700
        companions = [Path(f"{database}{suffix}") for suffix in ("-wal", "-shm")]
        for path in (database, *companions):
            assert path.exists(), path
            assert mode(path) == 0o600, path
    finally:
        await store.close()


async def test_an_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    store = await Store.open(f"sqlite:///{tmp_path / 'portway.db'}")
    await store.close()
    assert mode(tmp_path) == 0o755
    assert mode(tmp_path / "portway.db") == 0o600


async def test_a_readable_database_is_tightened_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = tmp_path / "portway.db"
    store = await Store.open(f"sqlite:///{database}")
    await store.close()
    database.chmod(0o644)
    wal = Path(f"{database}-wal")
    wal.write_bytes(b"")
    wal.chmod(0o640)
    with caplog.at_level(logging.WARNING, logger="mappings.store"):
        store = await Store.open(f"sqlite:///{database}")
    await store.close()
    assert mode(database) == 0o600
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"{database} was open to other users (mode 0644); now 0600" in warnings[0]
    assert any(f"{wal} was open to other users (mode 0640)" in w for w in warnings)


async def test_a_private_database_is_left_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = tmp_path / "portway.db"
    await (await Store.open(f"sqlite:///{database}")).close()
    with caplog.at_level(logging.WARNING, logger="mappings.store"):
        await (await Store.open(f"sqlite:///{database}")).close()
    assert mode(database) == 0o600
    assert not caplog.records
