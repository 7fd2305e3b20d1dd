"""What the store's two database drivers have in common: errors, results, connections.

The store speaks to aiosqlite and asyncpg directly, with SQL written once with ``:name``
parameters. These few types are all that callers see of either driver, so that nothing above
the store depends on which database runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

#: One statement's parameters, by name.
Params = Mapping[str, Any]
#: A result's rows: plain tuples, indexed by column position, whichever the driver.
Row = tuple[Any, ...]


class StoreError(Exception):
    """The database URL or the database itself cannot be used."""


class IntegrityError(Exception):
    """A statement broke a constraint (a unique key, a foreign key, NOT NULL).

    Both drivers' own integrity errors become this one, so that the code catching a duplicate
    (a dedup key seen before, a name taken) reads the same on SQLite and PostgreSQL.
    """


class Result:
    """What one statement returned: its rows (if any) and how many rows it affected."""

    __slots__ = ("rowcount", "rows")

    def __init__(self, rows: list[Row], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount

    def first(self) -> Row | None:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[Row]:
        return self.rows


class Connection(Protocol):
    """The connection a :meth:`mappings.store.Store.transaction` lends its block."""

    async def execute(self, sql: str, params: Params | Sequence[Params] | None = None) -> Result:
        """Run one statement; a sequence of parameter sets runs it once per set."""
        ...
