"""The store on SQLite: one aiosqlite connection, each unit of work one hop to its thread.

One connection, because SQLite serialises writers anyway and a second connection of our own
would only meet "database is locked". aiosqlite runs the callables it is handed one at a time,
in order, in its thread; a hop there (a thread switch, and the GIL handed back and forth)
costs several times what SQLite spends on a small statement, so a statement and its commit,
or a group commit's every statement, go over in one callable. sqlite3 takes ``:name``
parameters as they are written.

WAL checkpoints run in a thread of their own (:class:`Checkpointer`), never inside a commit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import aiosqlite

from mappings.sql import IntegrityError, Params, Result, Row

if TYPE_CHECKING:
    from mappings.store import FollowUp

log = logging.getLogger(__name__)

#: How often the checkpointer checkpoints what was committed since
CHECKPOINT_SECONDS = 1.0
#: How often it looks at the WAL's size (a stat, nothing more)
SIZE_CHECK_SECONDS = 0.1
#: The WAL's size past which writers are held back for a moment to empty it
WAL_BOUND_BYTES = 32 * 1024 * 1024
#: How long the checkpointer waits for readers and writers before it gives up on emptying
#: the WAL (and tries again soon after): writers wait for it meanwhile, so not long
CHECKPOINT_BUSY_MS = 2000
#: How long the second's own restart of the WAL may wait for them: it gives up sooner, as
#: it can try again a second later
RESTART_BUSY_MS = 20

#: Set on the connection when it opens: WAL lets readers in while a write commits, NORMAL
#: syncs at checkpoints rather than every commit (safe with WAL), and busy_timeout waits out
#: another process (``portway mappings``) or a bounding checkpoint instead of failing at once.
#: No checkpoint runs in a commit (wal_autocheckpoint=0): the :class:`Checkpointer` does
#: them, and a WAL started over is cut back to the bound (journal_size_limit). Temporary
#: tables and indexes stay in memory: SQLite otherwise created and deleted a file in
#: /var/tmp about once per commit.
PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=10000",
    "PRAGMA foreign_keys=ON",
    "PRAGMA wal_autocheckpoint=0",
    f"PRAGMA journal_size_limit={WAL_BOUND_BYTES}",
    "PRAGMA temp_store=MEMORY",
)
#: Databases with no file, so no WAL to checkpoint
IN_MEMORY = ("", ":memory:")


class SqliteDatabase:
    """The gateway's SQLite database, shared by every task of the process."""

    dialect = "sqlite"

    def __init__(
        self, connection: aiosqlite.Connection, checkpointer: Checkpointer | None = None
    ) -> None:
        self._connection = connection
        self._checkpointer = checkpointer
        # The connection has one transaction at a time: a task's statement must not run
        # inside another task's transaction (its commit would commit half of theirs).
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str) -> SqliteDatabase:
        connection = aiosqlite.connect(path)
        # A thread left running by a store nobody closed must not keep the process alive.
        connection._thread.daemon = True
        await connection
        try:
            await connection._execute(_set_pragmas, connection._conn)
        except BaseException:
            await connection.close()
            raise
        checkpointer = None if path in IN_MEMORY else Checkpointer(path)
        if checkpointer is not None:
            checkpointer.start()
        return cls(connection, checkpointer)

    async def close(self) -> None:
        await self._connection.close()
        if self._checkpointer is not None:
            # in a thread: the final checkpoint may take a while on a large WAL
            await asyncio.to_thread(self._checkpointer.stop)

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

    async def commit_rows_then(
        self, statements: Sequence[tuple[str, Params]], then: FollowUp
    ) -> list[list[Row]]:
        """``statements``, then those ``then`` makes of their rows, in one transaction and
        one hop; the rows of ``statements`` (see :meth:`mappings.store.Store.commit_rows_then`).
        """
        async with self._lock:
            rows: list[list[Row]] = await self._hop(_committed_then, statements, then)
        return rows

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


def _committed_then(
    connection: sqlite3.Connection, statements: Sequence[tuple[str, Params]], then: FollowUp
) -> list[list[Row]]:
    """``statements``, then ``then``'s of their rows, as one transaction (aiosqlite's thread)."""
    try:
        rows = [_statement(connection, sql, params).rows for sql, params in statements]
        for sql, params in then(rows):
            _statement(connection, sql, params)
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    return rows


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


class Checkpointer:
    """Checkpoints the WAL of the database at ``path``, in a thread and on a connection of
    its own, until :meth:`stop`.

    SQLite's own checkpoints run inside the commit that takes the WAL past 1000 pages, in
    aiosqlite's thread: that commit copies the WAL into the database and syncs it, and every
    request waiting for the store waits for it (commits of 100 ms to 1 s made most of the
    webhook benchmark's posts over 15 ms). Here, each second that something was committed,
    a PASSIVE checkpoint copies what no reader still needs, waiting for nobody, and its
    fsyncs hold up no request.

    A PASSIVE checkpoint never empties the WAL while writes keep coming (SQLite starts the
    WAL over only when a write finds all of it copied), so under steady load the file would
    grow without end. So a RESTART checkpoint follows each PASSIVE one: it holds writers back
    only while it copies what came during the PASSIVE one (a few commits), and the next
    commit starts the WAL over. Without it, at 100 webhook posts a second (each its own
    commit, 57 KiB of WAL with its confirmation), the WAL reached 32 MiB every 5.7 s, and
    the TRUNCATE that emptied it held writers back 36–48 ms: the posts of that moment made
    p99 latency 30–44 ms in some runs of bench/webhook.py, 8 in others.

    Past ``WAL_BOUND_BYTES`` (looked at ten times a second: a RESTART can miss its moment
    while a reader holds the WAL) a TRUNCATE checkpoint follows, which empties the file. It
    waits for a moment between two commits, which the gateway's writer always leaves (each
    transaction is a hop from the event loop); a writer that never paused would keep it
    waiting, and it would try again.
    """

    def __init__(self, path: str, *, interval: float = CHECKPOINT_SECONDS) -> None:
        self._path = path
        self._wal = f"{path}-wal"
        self._interval = interval
        self._stopping = threading.Event()
        # A daemon, as aiosqlite's thread: a store nobody closed must not keep the process.
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Empty the WAL and end the thread: after the store's connection closed, the final
        checkpoint leaves nothing in it."""
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            connection = sqlite3.connect(self._path, isolation_level=None)
        except sqlite3.Error:
            log.exception("cannot open %s to checkpoint it; its WAL may grow", self._path)
            return
        try:
            seen = _data_version(connection)
            due = time.monotonic() + self._interval
            while not self._stopping.wait(min(self._interval, SIZE_CHECK_SECONDS)):
                over = _size(self._wal) > WAL_BOUND_BYTES
                if not over and time.monotonic() < due:
                    continue
                due = time.monotonic() + self._interval
                version = _data_version(connection)
                if version != seen or over:
                    seen = version
                    self._checkpoint(connection, "PASSIVE")
                    self._checkpoint(connection, "RESTART", busy_ms=RESTART_BUSY_MS)
                if over:
                    self._checkpoint(connection, "TRUNCATE")
            self._checkpoint(connection, "TRUNCATE")
        except sqlite3.Error:
            log.exception("checkpoints of %s stopped; its WAL may grow", self._path)
        finally:
            connection.close()

    def _checkpoint(
        self, connection: sqlite3.Connection, mode: str, *, busy_ms: int = CHECKPOINT_BUSY_MS
    ) -> None:
        try:
            connection.execute(f"PRAGMA busy_timeout={busy_ms}").close()
            connection.execute(f"PRAGMA wal_checkpoint({mode})").close()
        except sqlite3.OperationalError as error:  # locked by another process: next time
            log.debug("%s checkpoint of %s: %s", mode, self._path, error)


def _data_version(connection: sqlite3.Connection) -> int:
    """A number that changes when another connection commits (SQLite's data_version)."""
    row = connection.execute("PRAGMA data_version").fetchone()
    return int(row[0])


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0
