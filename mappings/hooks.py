"""Webhook hooks that users created with ad-hoc commands, and every hook's delivery health.

Hooks from the config file are not stored: the config stays their one source of truth. Their
health is, because "the endpoint has been failing since…" must survive a restart for the
contact's presence to say so. The secret is kept in clear because a Standard Webhooks
signature needs it as the HMAC key; it is never logged nor shown again after creation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mappings.codec import dumps, loads
from mappings.sql import IntegrityError

if TYPE_CHECKING:
    from mappings.store import Store

HOOK_MIGRATIONS: list[str] = [
    # 1: user-created hooks, and the outcome of each hook's last outbound delivery
    """
    CREATE TABLE webhook_hooks (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        secret TEXT NOT NULL,
        deliver_to TEXT NOT NULL DEFAULT '[]',
        rooms TEXT NOT NULL DEFAULT '[]',
        url TEXT,
        created_at {float} NOT NULL
    );
    CREATE INDEX webhook_hooks_owner ON webhook_hooks (owner);
    CREATE TABLE webhook_health (
        name TEXT PRIMARY KEY,
        failing TEXT,
        updated_at {float} NOT NULL
    )
    """,
]


class HookNameTaken(Exception):
    """Another hook already has this name."""


@dataclass(frozen=True)
class Hook:
    """A named contact ``name@hooks…`` with its secret, its targets and its outbound URL."""

    name: str
    owner: str
    secret: str
    deliver_to: tuple[str, ...] = ()
    rooms: tuple[str, ...] = ()
    url: str | None = None
    nick: str | None = None
    rate_per_minute: int | None = None
    from_config: bool = False
    #: Alertmanager and Grafana notifications correct the message of their group's first one
    update_alerts: bool = False

    @property
    def recipients(self) -> tuple[str, ...]:
        """The JIDs that get what is posted (the owner when no target is set)."""
        return self.deliver_to or (() if self.rooms else (self.owner,))

    def may_send(self, user_jid: str) -> bool:
        """Only the owner and the target JIDs may send through the hook."""
        return user_jid == self.owner or user_jid in self.deliver_to


_COLUMNS = "name, owner, secret, deliver_to, rooms, url"


class Hooks:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def create(self, hook: Hook) -> None:
        """Store a new user hook; raise :class:`HookNameTaken` if the name is in use."""
        try:
            await self._store.execute(
                "INSERT INTO webhook_hooks (name, owner, secret, deliver_to, rooms, url,"
                " created_at) VALUES (:name, :owner, :secret, :deliver_to, :rooms, :url, :now)",
                name=hook.name,
                owner=hook.owner,
                secret=hook.secret,
                deliver_to=dumps(list(hook.deliver_to)),
                rooms=dumps(list(hook.rooms)),
                url=hook.url,
                now=time.time(),
            )
        except IntegrityError:
            raise HookNameTaken(hook.name) from None

    async def get(self, name: str) -> Hook | None:
        row = await self._store.fetch_one(
            f"SELECT {_COLUMNS} FROM webhook_hooks WHERE name = :name", name=name
        )
        return _hook(row) if row else None

    async def owned_by(self, owner: str) -> list[Hook]:
        rows = await self._store.fetch_all(
            f"SELECT {_COLUMNS} FROM webhook_hooks WHERE owner = :owner ORDER BY name",
            owner=owner,
        )
        return [_hook(row) for row in rows]

    async def all(self) -> list[Hook]:
        rows = await self._store.fetch_all(f"SELECT {_COLUMNS} FROM webhook_hooks ORDER BY name")
        return [_hook(row) for row in rows]

    async def set_secret(self, name: str, owner: str, secret: str) -> bool:
        """Replace the secret of the owner's hook; ``False`` if they have no such hook."""
        changed = await self._store.execute(
            "UPDATE webhook_hooks SET secret = :secret WHERE name = :name AND owner = :owner",
            secret=secret,
            name=name,
            owner=owner,
        )
        return changed > 0

    async def delete(self, name: str, owner: str) -> bool:
        deleted = await self._store.execute(
            "DELETE FROM webhook_hooks WHERE name = :name AND owner = :owner",
            name=name,
            owner=owner,
        )
        await self._store.execute("DELETE FROM webhook_health WHERE name = :name", name=name)
        return deleted > 0

    async def delete_owned_by(self, owner: str) -> list[str]:
        """Delete all of a user's hooks (they unregistered); return their names."""
        names = [hook.name for hook in await self.owned_by(owner)]
        for name in names:
            await self.delete(name, owner)
        return names

    async def failing(self) -> dict[str, str]:
        """The hooks whose last outbound delivery failed, with the reason."""
        rows = await self._store.fetch_all(
            "SELECT name, failing FROM webhook_health WHERE failing IS NOT NULL"
        )
        return {row[0]: row[1] for row in rows}

    async def set_health(self, name: str, failing: str | None) -> None:
        """Record the outcome of the hook's last delivery (``None``: it worked)."""
        params: dict[str, Any] = {"name": name, "failing": failing, "now": time.time()}
        changed = await self._store.execute(
            "UPDATE webhook_health SET failing = :failing, updated_at = :now WHERE name = :name",
            **params,
        )
        if not changed:
            try:
                await self._store.execute(
                    "INSERT INTO webhook_health (name, failing, updated_at)"
                    " VALUES (:name, :failing, :now)",
                    **params,
                )
            except IntegrityError:  # another process inserted it first: update theirs
                await self._store.execute(
                    "UPDATE webhook_health SET failing = :failing, updated_at = :now"
                    " WHERE name = :name",
                    **params,
                )


def _hook(row: Any) -> Hook:
    return Hook(
        name=row[0],
        owner=row[1],
        secret=row[2],
        deliver_to=tuple(loads(row[3]) or ()),
        rooms=tuple(loads(row[4]) or ()),
        url=row[5],
    )
