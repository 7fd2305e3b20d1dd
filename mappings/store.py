"""One small store API over SQLite (default) and PostgreSQL.

The SQL is written once, with named parameters, and SQLAlchemy's async engine carries it to
aiosqlite or asyncpg. The few places where the two dialects differ (key columns, row locking)
are spelled out here rather than hidden behind an ORM, so a reader can see what runs.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import TextClause, event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from mappings.contacts import Contacts
from mappings.inbound import InboundQueue
from mappings.message_ids import MessageIds
from mappings.outbox import Outbox
from mappings.reactions import Reactions
from mappings.registrations import Registrations
from mappings.schema import CORE_MIGRATIONS
from mappings.settings import UserSettings

log = logging.getLogger(__name__)

#: SQLite's companions of the database file; it creates them with the database file's mode.
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


@lru_cache(maxsize=1024)
def parsed(statement: str) -> TextClause:
    """SQL text, parsed once per distinct statement: ``text()`` scans each statement for its
    parameters, which was a visible cost on the hot paths; the statements are a fixed set."""
    return text(statement)


class StoreError(Exception):
    """The database URL or the database itself cannot be used."""


def engine_url(url: str) -> str:
    """Map the config's ``sqlite:///…`` / ``postgresql://…`` to SQLAlchemy's async drivers."""
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url.removeprefix(prefix)
    raise StoreError(f"unsupported database URL (use sqlite:/// or postgresql://): {url!r}")


class Store:
    """The gateway's persistent state, shared by the component and every transport."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.registrations = Registrations(self)
        self.contacts = Contacts(self)
        self.outbox = Outbox(self)
        self.inbound = InboundQueue(self)
        self.message_ids = MessageIds(self)
        self.reactions = Reactions(self)
        self.settings = UserSettings(self)

    @classmethod
    async def open(cls, url: str) -> Store:
        """Connect and bring the core schema up to date."""
        target = engine_url(url)
        if target.startswith("sqlite"):
            path = Path(target.removeprefix("sqlite+aiosqlite:///"))
            if str(path) != ":memory:":
                _private_database_file(path)
            # One connection: SQLite serialises writers anyway, and this avoids "database is
            # locked" between our own connections.
            engine = create_async_engine(
                target, pool_size=1, max_overflow=0, pool_reset_on_return=None
            )
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            engine = create_async_engine(target, pool_size=10, max_overflow=10)
        store = cls(engine)
        try:
            await store.migrate("core", CORE_MIGRATIONS)
        except Exception as exc:
            await engine.dispose()
            raise StoreError(f"cannot open the database {_redact(url)}: {exc}") from exc
        return store

    async def close(self) -> None:
        await self.engine.dispose()

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    def ddl(self, statement: str) -> str:
        """Fill the dialect placeholders used in migrations."""
        if self.is_postgres:
            return statement.format(id_pk="BIGSERIAL PRIMARY KEY", float="DOUBLE PRECISION")
        return statement.format(id_pk="INTEGER PRIMARY KEY AUTOINCREMENT", float="REAL")

    async def migrate(self, name: str, migrations: Sequence[str]) -> None:
        """Apply the migrations of ``name`` (core, or a transport's own tables) not yet applied.

        Each entry is one version; entries are never edited once released, only appended.
        """
        async with self.transaction() as conn:
            if self.is_postgres:
                await conn.execute(text("SELECT pg_advisory_xact_lock(7106500)"))
            await conn.execute(
                text(
                    "CREATE TABLE IF NOT EXISTS portway_schema "
                    "(name TEXT PRIMARY KEY, version INTEGER NOT NULL)"
                )
            )
            row = (
                await conn.execute(
                    text("SELECT version FROM portway_schema WHERE name = :name"), {"name": name}
                )
            ).first()
            current = row[0] if row else 0
            if current > len(migrations):
                raise StoreError(
                    f"the database's {name} schema is version {current}, newer than this "
                    f"Portway knows ({len(migrations)}); upgrade Portway"
                )
            for script in migrations[current:]:
                for statement in script.split(";"):
                    if statement.strip():
                        await conn.execute(text(self.ddl(statement)))
            if row is None:
                await conn.execute(
                    text("INSERT INTO portway_schema (name, version) VALUES (:name, :version)"),
                    {"name": name, "version": len(migrations)},
                )
            else:
                await conn.execute(
                    text("UPDATE portway_schema SET version = :version WHERE name = :name"),
                    {"name": name, "version": len(migrations)},
                )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def _one_statement(self) -> AsyncIterator[AsyncConnection]:
        """A connection to run one statement on, committed as it ends.

        On PostgreSQL in autocommit, where one statement is its own transaction: BEGIN and
        COMMIT around it would be two more round trips, and they were two thirds of what the
        gateway sent the server. (On SQLite, switching a connection to autocommit and back
        costs more hops to aiosqlite's thread than the commit it saves.)
        """
        if not self.is_postgres:
            async with self.transaction() as conn:
                yield conn
            return
        async with self.engine.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")

    async def commit_rows(
        self, statements: Sequence[tuple[str, dict[str, Any]]]
    ) -> list[list[Any]]:
        """Run ``statements`` in one transaction of their own and commit it; the rows each
        returned. Nothing is committed if one fails.

        For the group commits of the hot paths. On SQLite the whole transaction is one hop to
        aiosqlite's thread: through SQLAlchemy it takes one hop per statement and one for the
        commit, and under load each hop (a thread switch, and the GIL handed back and forth)
        cost several times what SQLite spends on the work itself.
        """
        if self.is_postgres:
            results: list[list[Any]] = []
            single = len(statements) == 1
            async with self._one_statement() if single else self.transaction() as conn:
                for sql, params in statements:
                    result = await conn.execute(parsed(sql), params)
                    results.append(list(result.fetchall()) if result.returns_rows else [])
            return results
        async with self.engine.connect() as conn:  # the pool's one connection, ours alone
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            # aiosqlite runs one callable at a time in its thread (SQLAlchemy's own adapter
            # hands it callables the same way)
            committed: list[list[Any]] = await driver._execute(
                _commit_rows, driver._conn, statements
            )
            return committed

    async def execute(self, sql: str, **params: Any) -> int:
        """Run one statement in its own transaction; return the affected row count."""
        async with self._one_statement() as conn:
            result = await conn.execute(parsed(sql), params)
            return int(result.rowcount or 0)

    async def fetch_all(self, sql: str, **params: Any) -> list[Any]:
        """All rows, each indexable by column position."""
        async with self._one_statement() as conn:
            return list((await conn.execute(parsed(sql), params)).fetchall())

    async def fetch_one(self, sql: str, **params: Any) -> Any | None:
        async with self._one_statement() as conn:
            return (await conn.execute(parsed(sql), params)).first()


def _commit_rows(
    connection: sqlite3.Connection, statements: Sequence[tuple[str, dict[str, Any]]]
) -> list[list[Any]]:
    """:meth:`Store.commit_rows` inside aiosqlite's thread."""
    try:
        results = [connection.execute(sql, params).fetchall() for sql, params in statements]
    except BaseException:
        connection.rollback()
        raise
    connection.commit()
    return results


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _private_database_file(path: Path) -> None:
    """Make the SQLite file (and the directory, if created here) the gateway user's alone.

    The database holds hook secrets and users' IRC and SASL passwords. A new file is created
    here with mode 0600 before SQLite opens it (SQLite takes an empty file as an empty
    database), and SQLite gives its -wal, -shm and -journal files the database file's mode.
    An existing file that others may read is tightened, and the log says so: leaving it open
    would keep the secrets readable, and an admin who wants a group to read it can use a
    copy (``portway mappings export``) rather than the live file.
    """
    with suppress(FileExistsError):  # the admin's directory: its mode is the admin's choice
        path.parent.mkdir(mode=0o700, parents=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return
    except FileExistsError:
        pass
    for file in (path, *(Path(f"{path}{suffix}") for suffix in SQLITE_COMPANIONS)):
        try:
            mode = stat.S_IMODE(file.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            os.chmod(file, mode & 0o700)
            log.warning(
                "%s was open to other users (mode %04o); now %04o, as it holds secrets",
                file,
                mode,
                mode & 0o700,
            )


def _redact(url: str) -> str:
    head, sep, tail = url.partition("@")
    if not sep or "://" not in head:
        return url
    scheme, _, credentials = head.partition("://")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{tail}"
