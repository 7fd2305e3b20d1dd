"""The store on SQLite: one aiosqlite connection, each unit of work one hop to its thread.

One connection, because SQLite serialises writers anyway and a second connection of our own
would only meet "database is locked". aiosqlite runs the callables it is handed one at a time,
in order, in its thread; a hop there (a thread switch, and the GIL handed back and forth)
costs several times what SQLite spends on a small statement, so a statement and its commit,
or a group commit's every statement, go over in one callable. sqlite3 takes ``:name``
parameters as they are written.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite

from mappings.sql import IntegrityError, Params, Result, Row

#: Set on the connection when it opens: WAL lets readers in while a write commits, NORMAL
#: syncs at checkpoints rather than every commit (safe with WAL), and busy_timeout waits out
#: another process (``portway mappings``) instead of failing at once.
PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=10000",
    "PRAGMA foreign_keys=ON",
)


class SqliteDatabase:
    """The gateway's SQLite database, shared by every task of the process."""

    dialect = "sqlite"

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection
        # The connection has one transaction at a time: a task's statement must not run
        # inside another task's transaction (its commit would commit half of theirs).
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str) -> SqliteDatabase:
        connection = aiosqlite.connect(path)
        # A thread left running by a store nobody closed must not keep the process alive.
        connection._thread.daemon = True
        await connection
        database = cls(connection)
        try:
            await database._hop(_set_pragmas)
        except BaseException:
            await connection.close()
            raise
        return database

    async def close(self) -> None:
        await self._connection.close()

    async def run(self, sql: str, params: Params) -> Result:
        """One statement, committed."""
        async with self._lock:
            results: list[Result] = await self._hop(_committed, [(sql, params)])
        return results[0]

    async def commit_rows(self, statements: Sequence[tuple[str, Params]]) -> list[list[Row]]:
        """Statements in one transaction, committed: one hop for all of them."""
        async with self._lock:
            results: list[Result] = await self._hop(_committed, statements)
        return [result.rows for result in results]

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteConnection]:
        """The connection, ours alone until the block ends; committed then, or rolled back
        if the block raises. One hop per statement, and one for the commit."""
        async with self._lock:
            try:
                yield SqliteConnection(self)
            except BaseException:
                await self._hop(_rollback)
                raise
            await self._hop(_commit)

    async def _hop(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run ``function(sqlite3_connection, *args)`` in aiosqlite's thread.

        aiosqlite's own methods take one hop per call (and a cursor's more); its ``_execute``
        runs any callable there, in turn with everything else sent to the connection.
        """
        connection = self._connection
        return await connection._execute(function, connection._conn, *args)


class SqliteConnection:
    """A transaction's view of the connection (see :class:`mappings.sql.Connection`)."""

    __slots__ = ("_database",)

    def __init__(self, database: SqliteDatabase) -> None:
        self._database = database

    async def execute(self, sql: str, params: Params | Sequence[Params] | None = None) -> Result:
        result: Result = await self._database._hop(_statement, sql, params)
        return result


def _statement(
    connection: sqlite3.Connection, sql: str, params: Params | Sequence[Params] | None
) -> Result:
    """One statement, in aiosqlite's thread, its rows fetched in the same hop."""
    try:
        if isinstance(params, Sequence):
            cursor = connection.executemany(sql, params)
        else:
            cursor = connection.execute(sql, params or {})
        rows = cursor.fetchall()
    except sqlite3.IntegrityError as error:
        raise IntegrityError(str(error)) from error
    return Result(rows, cursor.rowcount)


def _committed(
    connection: sqlite3.Connection, statements: Sequence[tuple[str, Params]]
) -> list[Result]:
    """Statements as one transaction, in aiosqlite's thread: all committed, or none."""
    try:
        results = [_statement(connection, sql, params) for sql, params in statements]
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    return results


def _commit(connection: sqlite3.Connection) -> None:
    try:
        connection.commit()
    except BaseException:
        connection.rollback()  # a failed commit leaves the transaction open: end it
        raise


def _rollback(connection: sqlite3.Connection) -> None:
    connection.rollback()


def _set_pragmas(connection: sqlite3.Connection) -> None:
    for pragma in PRAGMAS:
        connection.execute(pragma).close()
