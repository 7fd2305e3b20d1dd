"""Contact mappings: which foreign addresses each user talks to, and what they call them.

The subscription state lets the gateway decide whether to push a roster item or to ask for a
presence subscription the first time a new contact writes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mappings.store import Store

SUBSCRIPTIONS = ("none", "to", "from", "both")


@dataclass(frozen=True)
class ContactMapping:
    transport: str
    user_jid: str
    address: str
    display_name: str | None = None
    subscription: str = "none"


class Contacts:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def get(self, transport: str, user_jid: str, address: str) -> ContactMapping | None:
        row = await self._store.fetch_one(
            "SELECT transport, user_jid, address, display_name, subscription FROM contacts "
            "WHERE transport = :transport AND user_jid = :user_jid AND address = :address",
            transport=transport,
            user_jid=user_jid,
            address=address,
        )
        return _contact(row) if row else None

    async def list(
        self, transport: str | None = None, user_jid: str | None = None
    ) -> list[ContactMapping]:
        rows = await self._store.fetch_all(
            "SELECT transport, user_jid, address, display_name, subscription FROM contacts "
            "WHERE (CAST(:transport AS TEXT) IS NULL OR transport = :transport) "
            "AND (CAST(:user_jid AS TEXT) IS NULL OR user_jid = :user_jid) "
            "ORDER BY transport, user_jid, address",
            transport=transport,
            user_jid=user_jid,
        )
        return [_contact(row) for row in rows]

    async def add(self, contact: ContactMapping) -> bool:
        """Insert the contact if it is new; return whether it was."""
        if contact.subscription not in SUBSCRIPTIONS:
            raise ValueError(f"unknown subscription state {contact.subscription!r}")
        count = await self._store.execute(
            "INSERT INTO contacts (transport, user_jid, address, display_name, subscription,"
            " created_at) VALUES (:transport, :user_jid, :address, :display_name, :subscription,"
            " :created_at) ON CONFLICT (transport, user_jid, address) DO NOTHING",
            transport=contact.transport,
            user_jid=contact.user_jid,
            address=contact.address,
            display_name=contact.display_name,
            subscription=contact.subscription,
            created_at=time.time(),
        )
        return count > 0

    async def update(
        self,
        transport: str,
        user_jid: str,
        address: str,
        *,
        display_name: str | None = None,
        subscription: str | None = None,
    ) -> None:
        if subscription is not None and subscription not in SUBSCRIPTIONS:
            raise ValueError(f"unknown subscription state {subscription!r}")
        await self._store.execute(
            "UPDATE contacts SET display_name = COALESCE(:display_name, display_name), "
            "subscription = COALESCE(:subscription, subscription) "
            "WHERE transport = :transport AND user_jid = :user_jid AND address = :address",
            transport=transport,
            user_jid=user_jid,
            address=address,
            display_name=display_name,
            subscription=subscription,
        )

    async def remove(self, transport: str, user_jid: str, address: str) -> bool:
        count = await self._store.execute(
            "DELETE FROM contacts "
            "WHERE transport = :transport AND user_jid = :user_jid AND address = :address",
            transport=transport,
            user_jid=user_jid,
            address=address,
        )
        return count > 0


def _contact(row: Any) -> ContactMapping:
    return ContactMapping(row[0], row[1], row[2], row[3], row[4])
