"""One user's stanzas handled one after another, in the order they arrived.

slixmpp runs each coroutine handler as a task of its own, so a burst of messages would be
stored in whatever order their database calls happen to finish. Taking a per-user lock before
the first await keeps arrival order, since tasks start in the order they were created and an
asyncio lock serves its waiters first come, first served.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class InArrivalOrder:
    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def turn(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]  # nobody else waits: keep the table small
            else:
                self._locks[key] = (lock, users - 1)
