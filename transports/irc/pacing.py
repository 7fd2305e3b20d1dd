"""Many users on one network: new connections paced per server, held within a cap, and
reconnects spread out.

A gateway restart with 1,000 users in persistent channels opens 1,000 connections to the
same server from one address. Networks see that as a clone flood and ban the address
(K-line, Z-line), so connections to one server leave at a steady rate (default 5 a second)
in the order they asked, and no more than the server's limit per address are held at once.
After an IRC server restart every connection drops together; a random part of each
reconnect delay (jitter) keeps them from coming back in lockstep.
"""

from __future__ import annotations

import asyncio
import random

#: Connections per second to one server when its settings do not say.
DEFAULT_CONNECTIONS_PER_SECOND = 5.0


class ServerGate:
    """The connections of all users to one server: their pace, and how many are open."""

    def __init__(self, per_second: float, max_connections: int | None) -> None:
        self.per_second = per_second
        self.max_connections = max_connections
        self.open = 0
        self._next = 0.0

    async def wait_turn(self) -> None:
        """Wait for this connection's slot: one each 1/per_second seconds, first come first."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        slot = max(now, self._next)
        self._next = slot + 1.0 / self.per_second
        if slot > now:
            await asyncio.sleep(slot - now)

    def take(self) -> bool:
        """Hold one connection, unless the server's limit is reached."""
        if self.max_connections is not None and self.open >= self.max_connections:
            return False
        self.open += 1
        return True

    def give_back(self) -> None:
        self.open = max(0, self.open - 1)


_gates: dict[tuple[str, int], ServerGate] = {}


def gate(
    host: str,
    port: int,
    per_second: float = DEFAULT_CONNECTIONS_PER_SECOND,
    max_connections: int | None = None,
) -> ServerGate:
    """The gate of the server at ``host:port``, shared by every user of this process.

    The latest settings win, so a changed config applies from the next connection on.
    """
    key = (host.lower(), port)
    found = _gates.get(key)
    if found is None:
        found = _gates[key] = ServerGate(per_second, max_connections)
    found.per_second, found.max_connections = per_second, max_connections
    return found


def jittered(delay: float, spread: float = 0.5) -> float:
    """``delay`` give or take ``spread`` of it, at random: reconnects do not come in step."""
    return delay * (1.0 + random.uniform(-spread, spread))
