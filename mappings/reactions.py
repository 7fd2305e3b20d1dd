"""Who reacted with what to which message, kept because the two sides count differently.

XEP-0444 sends a sender's whole set of reactions to a message each time; IRCv3
``+draft/react``, phone tapbacks and RFC 9078 mails add (and sometimes remove) one at a time.
Carrying a reaction across therefore needs the set as it stands: this table keeps it, per
message and per reactor (the user, or a contact), for as long as the message's ids are kept.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mappings.store import Store

#: a message with more distinct reactions from one sender is an attack, not a conversation
MAX_PER_REACTOR = 20


class Reactions:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def of(self, transport: str, user_jid: str, target: str, reactor: str) -> tuple[str, ...]:
        """``reactor``'s reactions to the message ``target`` of ``user_jid``'s conversations."""
        row = await self._store.fetch_one(
            "SELECT emojis FROM reactions WHERE transport = :transport AND user_jid = :user_jid"
            " AND target = :target AND reactor = :reactor",
            transport=transport,
            user_jid=user_jid,
            target=target,
            reactor=reactor,
        )
        return tuple(json.loads(row[0])) if row else ()

    async def set(
        self, transport: str, user_jid: str, target: str, reactor: str, emojis: Iterable[str]
    ) -> tuple[str, ...]:
        """Make ``emojis`` the reactor's whole set (in order, without repeats) and return it."""
        kept = tuple(dict.fromkeys(emojis))[:MAX_PER_REACTOR]
        params = {
            "transport": transport,
            "user_jid": user_jid,
            "target": target,
            "reactor": reactor,
        }
        if not kept:
            await self._store.execute(
                "DELETE FROM reactions WHERE transport = :transport AND user_jid = :user_jid"
                " AND target = :target AND reactor = :reactor",
                **params,
            )
            return kept
        await self._store.execute(
            "INSERT INTO reactions (transport, user_jid, target, reactor, emojis, created_at)"
            " VALUES (:transport, :user_jid, :target, :reactor, :emojis, :created_at)"
            " ON CONFLICT (transport, user_jid, target, reactor)"
            " DO UPDATE SET emojis = excluded.emojis",
            emojis=json.dumps(kept, ensure_ascii=False),
            created_at=time.time(),
            **params,
        )
        return kept

    async def change(
        self,
        transport: str,
        user_jid: str,
        target: str,
        reactor: str,
        *,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
    ) -> tuple[str, ...]:
        """Add and remove single reactions (how networks say it); the whole set after it."""
        current = await self.of(transport, user_jid, target, reactor)
        gone = set(remove)
        return await self.set(
            transport, user_jid, target, reactor, [*(e for e in current if e not in gone), *add]
        )
