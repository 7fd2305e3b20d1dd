"""Silence on IRC connections, watched by one timer for all of them.

A connection that hears nothing for IDLE_PING_SECONDS sends the server a PING; if the
silence goes on for IDLE_GIVE_UP_SECONDS more, the connection is given up (and the session
reconnects). A gateway holds one connection per user and server: a timer each (its handle,
context and callback) was a quarter of a KiB per user, and thousands of timers wake the loop
more often than one sweep every SWEEP_SECONDS that looks at them all.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

IDLE_PING_SECONDS = 90.0
IDLE_GIVE_UP_SECONDS = 60.0
#: How often the silences are looked at: a PING or a give-up comes up to this much late.
SWEEP_SECONDS = 10.0


class Watched(Protocol):
    def check_silence(self, now: float) -> None:
        """PING, or give up, by how long the connection has heard nothing until ``now``."""


class _Sweep:
    """The connections of one event loop (tests run one loop after another) and its timer."""

    __slots__ = ("connections", "loop", "timer")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.connections: set[Watched] = set()
        self.timer = loop.call_later(SWEEP_SECONDS, self.run)

    def run(self) -> None:
        now = self.loop.time()
        for connection in list(self.connections):
            connection.check_silence(now)
        if self.connections:
            self.timer = self.loop.call_later(SWEEP_SECONDS, self.run)
        else:
            _sweeps.pop(self.loop, None)


_sweeps: dict[asyncio.AbstractEventLoop, _Sweep] = {}


def watch(connection: Watched) -> None:
    """Watch an open connection's silence, until :func:`unwatch`."""
    loop = asyncio.get_running_loop()
    sweep = _sweeps.get(loop)
    if sweep is None:
        sweep = _sweeps[loop] = _Sweep(loop)
    sweep.connections.add(connection)


def unwatch(connection: Watched) -> None:
    """The connection closed."""
    for sweep in _sweeps.values():
        sweep.connections.discard(connection)
