"""Who is registered with which transport, and the foreign identity bound to them.

``address`` is the user's own identity on the foreign network where it has one (a Twilio
number, an email local part); it is unique per transport, which is what makes the binding
one-to-one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mappings.codec import dumps, loads
from mappings.sql import IntegrityError

if TYPE_CHECKING:
    from mappings.store import Store


class AddressTaken(Exception):
    """The foreign address is already bound to another user."""

    def __init__(self, transport: str, address: str, owner: str) -> None:
        super().__init__(f"{transport} address {address} is already bound to {owner}")
        self.owner = owner


@dataclass(frozen=True)
class Registration:
    transport: str
    user_jid: str
    address: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0


class Registrations:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def get(self, transport: str, user_jid: str) -> Registration | None:
        row = await self._store.fetch_one(
            "SELECT transport, user_jid, address, data, created_at FROM registrations "
            "WHERE transport = :transport AND user_jid = :user_jid",
            transport=transport,
            user_jid=user_jid,
        )
        return _registration(row) if row else None

    async def by_address(self, transport: str, address: str) -> Registration | None:
        row = await self._store.fetch_one(
            "SELECT transport, user_jid, address, data, created_at FROM registrations "
            "WHERE transport = :transport AND address = :address",
            transport=transport,
            address=address,
        )
        return _registration(row) if row else None

    async def list(self, transport: str | None = None) -> list[Registration]:
        rows = await self._store.fetch_all(
            "SELECT transport, user_jid, address, data, created_at FROM registrations "
            "WHERE CAST(:transport AS TEXT) IS NULL OR transport = :transport"
            " ORDER BY transport, user_jid",
            transport=transport,
        )
        return [_registration(row) for row in rows]

    async def save(self, registration: Registration) -> Registration:
        """Insert or replace the user's registration; raise :class:`AddressTaken` on conflict."""
        if registration.address is not None:
            holder = await self.by_address(registration.transport, registration.address)
            if holder and holder.user_jid != registration.user_jid:
                raise AddressTaken(registration.transport, registration.address, holder.user_jid)
        created = registration.created_at or time.time()
        params = {
            "transport": registration.transport,
            "user_jid": registration.user_jid,
            "address": registration.address,
            "data": dumps(registration.data),
            "created_at": created,
        }
        try:
            async with self._store.transaction() as conn:
                await conn.execute(
                    "DELETE FROM registrations "
                    "WHERE transport = :transport AND user_jid = :user_jid",
                    params,
                )
                await conn.execute(
                    "INSERT INTO registrations (transport, user_jid, address, data, created_at)"
                    " VALUES (:transport, :user_jid, :address, :data, :created_at)",
                    params,
                )
        except IntegrityError:
            holder = await self.by_address(registration.transport, registration.address or "")
            raise AddressTaken(
                registration.transport,
                registration.address or "",
                holder.user_jid if holder else "?",
            ) from None
        return Registration(
            registration.transport,
            registration.user_jid,
            registration.address,
            registration.data,
            created,
        )

    async def remove(self, transport: str, user_jid: str) -> bool:
        """Forget the user and everything the gateway keeps for them on this transport."""
        removed = 0
        async with self._store.transaction() as conn:
            params = {"transport": transport, "user_jid": user_jid}
            for table in ("contacts", "message_ids", "reactions", "user_settings", "inbound"):
                await conn.execute(
                    f"DELETE FROM {table} WHERE transport = :transport AND user_jid = :user_jid",
                    params,
                )
            await conn.execute(
                "UPDATE outbox SET state = 'failed', last_error = 'unregistered' "
                "WHERE transport = :transport AND user_jid = :user_jid "
                "AND state IN ('pending', 'sending')",
                params,
            )
            result = await conn.execute(
                "DELETE FROM registrations WHERE transport = :transport AND user_jid = :user_jid",
                params,
            )
            removed = result.rowcount
        return removed > 0


def _registration(row: Any) -> Registration:
    return Registration(row[0], row[1], row[2], loads(row[3]), float(row[4]))
