"""Per-user settings a transport keeps, by scope (e.g. IRC per-server overrides)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mappings.codec import dumps, loads

if TYPE_CHECKING:
    from mappings.store import Store


class UserSettings:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def get(self, transport: str, user_jid: str, scope: str) -> dict[str, Any]:
        row = await self._store.fetch_one(
            "SELECT data FROM user_settings "
            "WHERE transport = :transport AND user_jid = :user_jid AND scope = :scope",
            transport=transport,
            user_jid=user_jid,
            scope=scope,
        )
        return dict(loads(row[0])) if row else {}

    async def all(self) -> list[tuple[str, str, str, dict[str, Any]]]:
        """Every user's settings as (transport, user, scope, data), for ``mappings export``."""
        rows = await self._store.fetch_all(
            "SELECT transport, user_jid, scope, data FROM user_settings"
            " ORDER BY transport, user_jid, scope"
        )
        return [(row[0], row[1], row[2], dict(loads(row[3]))) for row in rows]

    async def put(self, transport: str, user_jid: str, scope: str, data: dict[str, Any]) -> None:
        await self._store.execute(
            "INSERT INTO user_settings (transport, user_jid, scope, data) "
            "VALUES (:transport, :user_jid, :scope, :data) "
            "ON CONFLICT (transport, user_jid, scope) DO UPDATE SET data = excluded.data",
            transport=transport,
            user_jid=user_jid,
            scope=scope,
            data=dumps(data),
        )
