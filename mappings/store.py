"""One small store API over SQLite (default) and PostgreSQL.

The SQL is written once, with named parameters, and goes to aiosqlite or asyncpg as it is
(asyncpg's ``$n`` are numbered for it, see :mod:`mappings.postgres_db`). The few places where
the two dialects differ (key columns, row locking) are spelled out here rather than hidden
behind an ORM, so a reader can see what runs. (SQLAlchemy carried the SQL before; it was 17
MiB of the gateway's memory and a third of a second of its start, for a translation this
small.)
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from mappings.contacts import Contacts
from mappings.inbound import InboundQueue
from mappings.message_ids import MessageIds
from mappings.outbox import Outbox
from mappings.reactions import Reactions
from mappings.registrations import Registrations
from mappings.schema import CORE_MIGRATIONS
from mappings.settings import UserSettings
from mappings.sql import Connection, IntegrityError, Params, Result, Row, StoreError

if TYPE_CHECKING:
    from mappings.sqlite_db import SqliteDatabase

__all__ = ["IntegrityError", "Store", "StoreError"]

#: What a transaction's further statements are, made of the rows its first ones returned
FollowUp = Callable[[list[list[Row]]], Sequence[tuple[str, Params]]]

log = logging.getLogger(__name__)

#: SQLite's companions of the database file; it creates them with the database file's mode.
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
SQLITE_PREFIX = "sqlite:///"
POSTGRES_PREFIXES = ("postgresql://", "postgres://")


class Database(Protocol):
    """A driver's side of the store: :mod:`mappings.sqlite_db` or :mod:`mappings.postgres_db`."""

    dialect: str

    async def run(self, sql: str, params: Params) -> Result: ...

    async def commit_rows(self, statements: Sequence[tuple[str, Params]]) -> list[list[Row]]: ...

    def transaction(self) -> AbstractAsyncContextManager[Connection]: ...

    async def close(self) -> None: ...


async def _connect(url: str) -> Database:
    """The database ``url`` (a supported one) names; its driver is imported only now, so the
    other one's never is."""
    if url.startswith(SQLITE_PREFIX):
        from mappings.sqlite_db import SqliteDatabase

        return await SqliteDatabase.open(url.removeprefix(SQLITE_PREFIX))
    from mappings.postgres_db import PostgresDatabase

    return await PostgresDatabase.open(url)


class Store:
    """The gateway's persistent state, shared by the component and every transport."""

    def __init__(self, database: Database, url: str) -> None:
        self._database = database
        #: The URL the store was opened with (credentials included: never log it).
        self.url = url
        self.dialect = database.dialect
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
        if url.startswith(SQLITE_PREFIX):
            path = url.removeprefix(SQLITE_PREFIX)
            if path != ":memory:":
                _private_database_file(Path(path))
        elif not url.startswith(POSTGRES_PREFIXES):
            raise StoreError(f"unsupported database URL (use sqlite:/// or postgresql://): {url!r}")
        database: Database | None = None
        try:
            database = await _connect(url)
            store = cls(database, url)
            await store.migrate("core", CORE_MIGRATIONS)
        except Exception as exc:
            if database is not None:
                await database.close()
            raise StoreError(f"cannot open the database {_redact(url)}: {exc}") from exc
        return store

    async def close(self) -> None:
        await self._database.close()

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
                await conn.execute("SELECT pg_advisory_xact_lock(7106500)")
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS portway_schema "
                "(name TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
            row = (
                await conn.execute(
                    "SELECT version FROM portway_schema WHERE name = :name", {"name": name}
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
                        await conn.execute(self.ddl(statement))
            if row is None:
                await conn.execute(
                    "INSERT INTO portway_schema (name, version) VALUES (:name, :version)",
                    {"name": name, "version": len(migrations)},
                )
            else:
                await conn.execute(
                    "UPDATE portway_schema SET version = :version WHERE name = :name",
                    {"name": name, "version": len(migrations)},
                )

    def transaction(self) -> AbstractAsyncContextManager[Connection]:
        """A connection whose statements commit together as the block ends, or not at all
        if it raises.

        On SQLite the store's one connection is the block's alone until it ends, so the
        block must not call the store's own methods (they would wait for it forever).
        """
        return self._database.transaction()

    async def commit_rows(self, statements: Sequence[tuple[str, Params]]) -> list[list[Row]]:
        """Run ``statements`` in one transaction of their own and commit it; the rows each
        returned. Nothing is committed if one fails.

        For the group commits of the hot paths. On SQLite the whole transaction is one hop
        to aiosqlite's thread: one hop per statement and one for the commit would cost, under
        load, several times what SQLite spends on the work itself.
        """
        return await self._database.commit_rows(statements)

    async def commit_rows_then(
        self, statements: Sequence[tuple[str, Params]], then: FollowUp
    ) -> list[list[Row]]:
        """Run ``statements``, then the statements ``then`` makes of the rows they returned,
        in one transaction, and commit it; the rows ``statements`` returned.

        For a write that depends on what the first ones did (which rows of a group commit
        were new), without a second transaction. ``then`` must only build SQL: on SQLite it
        runs in aiosqlite's thread, the whole transaction one hop.
        """
        if self.dialect == "sqlite":
            sqlite = cast("SqliteDatabase", self._database)
            return await sqlite.commit_rows_then(statements, then)
        async with self._database.transaction() as conn:
            rows = [(await conn.execute(sql, params)).rows for sql, params in statements]
            for sql, params in then(rows):
                await conn.execute(sql, params)
        return rows

    async def execute(self, sql: str, **params: Any) -> int:
        """Run one statement in its own transaction; return the affected row count."""
        return (await self._database.run(sql, params)).rowcount

    async def fetch_all(self, sql: str, **params: Any) -> list[Row]:
        """All rows, each a tuple indexed by column position."""
        return (await self._database.run(sql, params)).rows

    async def fetch_one(self, sql: str, **params: Any) -> Row | None:
        return (await self._database.run(sql, params)).first()


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
