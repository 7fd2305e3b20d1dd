"""Served media: attachments the gateway keeps for a while and serves at an unguessable URL.

The bytes live in the database, not on a local disk, so that any gateway process sharing one
PostgreSQL database can serve a file another process fetched. Files are small (capped by each
transport's config) and expire.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mappings.sql import IntegrityError

if TYPE_CHECKING:
    from mappings.store import Store


def media_migrations(is_postgres: bool) -> list[str]:
    """The ``media`` schema, one entry per version; the blob type is the only dialect change."""
    blob = "BYTEA" if is_postgres else "BLOB"
    return [
        # 1: one row per served file; source_key makes re-fetching the same attachment a no-op
        f"""
        CREATE TABLE media (
            token TEXT PRIMARY KEY,
            source_key TEXT UNIQUE,
            owner TEXT NOT NULL,
            content_type TEXT NOT NULL,
            filename TEXT,
            size INTEGER NOT NULL,
            data {blob} NOT NULL,
            created_at {{float}} NOT NULL,
            expires_at {{float}} NOT NULL
        );
        CREATE INDEX media_expiry ON media (expires_at)
        """,
    ]


@dataclass(frozen=True)
class MediaFile:
    token: str
    content_type: str
    filename: str | None
    data: bytes
    expires_at: float


class MediaFiles:
    """The ``media`` table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def migrate(self) -> None:
        await self._store.migrate("media", media_migrations(self._store.is_postgres))

    async def add(
        self,
        token: str,
        *,
        owner: str,
        content_type: str,
        data: bytes,
        expires_at: float,
        filename: str | None = None,
        source_key: str | None = None,
    ) -> str:
        """Store a file; return its token (the existing one if ``source_key`` was stored)."""
        try:
            await self._store.execute(
                "INSERT INTO media (token, source_key, owner, content_type, filename, size,"
                " data, created_at, expires_at) VALUES (:token, :source_key, :owner,"
                " :content_type, :filename, :size, :data, :now, :expires_at)",
                token=token,
                source_key=source_key,
                owner=owner,
                content_type=content_type,
                filename=filename,
                size=len(data),
                data=data,
                now=time.time(),
                expires_at=expires_at,
            )
        except IntegrityError:
            existing = await self.token_for(source_key) if source_key else None
            if existing is None:
                raise
            return existing
        return token

    async def token_for(self, source_key: str) -> str | None:
        """The token of a live file stored under ``source_key``, if any."""
        row = await self._store.fetch_one(
            "SELECT token FROM media WHERE source_key = :source_key AND expires_at > :now",
            source_key=source_key,
            now=time.time(),
        )
        return str(row[0]) if row else None

    async def get(self, token: str) -> MediaFile | None:
        """A live (unexpired) file by token."""
        row = await self._store.fetch_one(
            "SELECT token, content_type, filename, data, expires_at FROM media"
            " WHERE token = :token AND expires_at > :now",
            token=token,
            now=time.time(),
        )
        return _file(row) if row else None

    async def purge_expired(self) -> int:
        return await self._store.execute(
            "DELETE FROM media WHERE expires_at <= :now", now=time.time()
        )


def _file(row: Any) -> MediaFile:
    return MediaFile(str(row[0]), str(row[1]), row[2], bytes(row[3]), float(row[4]))
