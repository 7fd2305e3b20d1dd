"""Fixtures the unit tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mappings.store import Store


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """The store on SQLite, then on a real PostgreSQL (one database for the whole session: a
    test keeps to rows of its own). A module that wants one database only defines its own."""
    if request.param == "sqlite":
        opened = await Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    else:
        opened = await Store.open(request.getfixturevalue("postgres_url"))
    yield opened
    await opened.close()
