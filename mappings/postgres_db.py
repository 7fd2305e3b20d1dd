"""The store on PostgreSQL: an asyncpg pool; one statement alone runs in autocommit.

asyncpg takes ``$1``..``$n``; the store's SQL is written with ``:name``, so each distinct
statement is rewritten once (cached) and its parameters are passed in the rewritten order.
Imported only when the database is PostgreSQL, so that a SQLite gateway never loads asyncpg.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from functools import lru_cache

import asyncpg

from mappings.sql import IntegrityError, Params, Result, Row

#: Connections the pool may open: what SQLAlchemy's pool allowed before (10, and 10 more).
MAX_CONNECTIONS = 20
#: How long :meth:`PostgresDatabase.close` waits for connections still in use.
CLOSE_SECONDS = 5.0

#: A quoted string or identifier (left alone, ``:`` and all), a ``::type`` cast, or a
#: ``:name`` parameter. The store writes no dollar-quoted strings or comments.
_TOKENS = re.compile(r"'[^']*'|\"[^\"]*\"|::|:([A-Za-z_]\w*)")
#: A statement whose rows are read (the others report an affected row count instead).
_RETURNS_ROWS = re.compile(r"^\s*(?:SELECT|WITH|VALUES)\b|\bRETURNING\b", re.IGNORECASE)


@lru_cache(maxsize=1024)
def positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """``sql`` with its ``:name`` parameters numbered for asyncpg, and the names in order.

    A name used twice takes one number, so PostgreSQL infers one type for it. Cached: the
    statements are a fixed set (and the multi-row INSERTs a few shapes of each).
    """
    numbers: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)
        return f"${numbers.setdefault(name, len(numbers) + 1)}"

    return _TOKENS.sub(number, sql), tuple(numbers)


@lru_cache(maxsize=1024)
def returns_rows(sql: str) -> bool:
    return _RETURNS_ROWS.search(sql) is not None


class PostgresDatabase:
    """The gateway's PostgreSQL database, shared by every task (and other processes)."""

    dialect = "postgresql"

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, dsn: str) -> PostgresDatabase:
        pool = await asyncpg.create_pool(
            dsn, min_size=1, max_size=MAX_CONNECTIONS, reset=_keep_session
        )
        return cls(pool)

    async def close(self) -> None:
        # Pool.close waits for every connection to come back; one held by a task that is
        # never going to finish would keep the gateway from stopping. On timeout the pool
        # closes the rest at once.
        with suppress(TimeoutError):
            await asyncio.wait_for(self._pool.close(), CLOSE_SECONDS)

    async def run(self, sql: str, params: Params) -> Result:
        """One statement in autocommit: it is its own transaction, and BEGIN and COMMIT
        around it would be two more round trips (they were two thirds of what the gateway
        sent the server)."""
        async with self._pool.acquire() as connection:
            return await _execute(connection, sql, params)

    async def commit_rows(self, statements: Sequence[tuple[str, Params]]) -> list[list[Row]]:
        """Statements in one transaction, committed (one alone in autocommit)."""
        if len(statements) == 1:
            [(sql, params)] = statements
            return [(await self.run(sql, params)).rows]
        async with self.transaction() as connection:
            return [(await connection.execute(sql, params)).rows for sql, params in statements]

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresConnection]:
        """A connection of the pool in a transaction: committed as the block ends, rolled
        back if it raises."""
        async with self._pool.acquire() as connection, connection.transaction():
            yield PostgresConnection(connection)


class PostgresConnection:
    """A transaction's connection (see :class:`mappings.sql.Connection`)."""

    __slots__ = ("_connection",)

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def execute(self, sql: str, params: Params | Sequence[Params] | None = None) -> Result:
        return await _execute(self._connection, sql, params)


async def _execute(
    connection: asyncpg.Connection, sql: str, params: Params | Sequence[Params] | None
) -> Result:
    query, names = positional(sql)
    try:
        if isinstance(params, Sequence):
            await connection.executemany(query, [[each[name] for name in names] for each in params])
            return Result([], len(params))
        values = params or {}
        args = [values[name] for name in names]
        if returns_rows(sql):
            rows = [tuple(record) for record in await connection.fetch(query, *args)]
            return Result(rows, len(rows))
        return Result([], _affected(await connection.execute(query, *args)))
    except asyncpg.IntegrityConstraintViolationError as error:
        raise IntegrityError(str(error)) from error


def _affected(status: str) -> int:
    """The row count of a command tag such as ``UPDATE 3`` or ``INSERT 0 1``."""
    count = status.rpartition(" ")[2]
    return int(count) if count.isdigit() else 0


async def _keep_session(_connection: asyncpg.Connection) -> None:
    """Reset nothing when a connection goes back to the pool.

    asyncpg's default reset (unlisten, release advisory locks, reset settings) is one more
    round trip per statement; the store changes no session state (its advisory locks are
    transaction-scoped), and asyncpg rolls back any transaction left open before this.
    """
