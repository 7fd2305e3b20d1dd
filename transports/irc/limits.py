"""The bounds the IRC transport keeps on what others can make it hold or send.

An IRC network and its users choose how much they send: CTCP requests, lines, nicks. Each
table or queue that such input fills has a bound here, so that nobody outside can grow the
gateway's memory or its outgoing queues without end. Past a bound, what is dropped is the
least useful: extra CTCP replies, the oldest remembered ids; what the user sends past one
is refused with an error the user sees.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, MutableMapping
from typing import TypeVar

#: CTCP replies (VERSION, PING) a connection sends: a burst, then one per this many seconds.
CTCP_REPLY_BURST = 3
CTCP_REPLY_SECONDS = 10.0
#: Lines read from the server and not handled yet: past this, the socket is not read
#: until the backlog is down to half (TCP then slows the server down).
MAX_UNHANDLED_LINES = 1000
#: Messages waiting for the connection or a rejoin, per user and server.
MAX_PENDING = 200
#: Lines a user may have waiting behind the throttle before sending more is refused.
MAX_OUTGOING_BACKLOG = 500
#: Nicks whose last private message id is remembered (for "no such nick" errors).
MAX_REMEMBERED_IDS = 100
#: INVITEs awaiting the server's answer, per session.
MAX_PENDING_INVITES = 20
#: Channels one user may be in on one server.
MAX_CHANNELS = 200
#: An AWAY message, a kick reason or a topic: longer ones are cut (servers cut them too).
MAX_PARAMETER_CHARS = 390

_BREAKS = re.compile(r"[\r\n\0]+")

K = TypeVar("K")
V = TypeVar("V")


def one_line(text: str, limit: int = MAX_PARAMETER_CHARS) -> str:
    """A user's text as one IRC parameter: line breaks become spaces, NULs go, length cut.

    What an IRC client does with the text of /away or /kick, which are typed on one line.
    """
    return " ".join(part.strip() for part in _BREAKS.split(text) if part.strip())[:limit]


def remember(table: MutableMapping[K, V], key: K, value: V, limit: int) -> None:
    """Store ``key``, dropping the oldest entries past ``limit`` (dicts keep insertion order)."""
    table.pop(key, None)
    table[key] = value
    while len(table) > limit:
        del table[next(iter(table))]


class ReplyBudget:
    """A token bucket that refuses instead of waiting: what exceeds it is dropped."""

    __slots__ = ("_stamp", "_tokens", "burst", "every")

    def __init__(self, burst: int = CTCP_REPLY_BURST, every: float = CTCP_REPLY_SECONDS) -> None:
        self.burst = burst
        self.every = every
        self._tokens = float(burst)
        self._stamp = time.monotonic()

    def take(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) / self.every)
        self._stamp = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


#: Distinct sets a SharedSets keeps: a server combines a handful of modes or capabilities.
MAX_SHARED_SETS = 256


class SharedSets:
    """Each frozenset once, for the sets that every connection or member holds a copy of
    (status modes, enabled capabilities): a frozenset is 200 bytes even when empty.

    Bounded: past MAX_SHARED_SETS distinct sets (a server inventing combinations), new
    ones are returned unshared.
    """

    __slots__ = ("_sets",)

    def __init__(self) -> None:
        self._sets: dict[frozenset[str], frozenset[str]] = {}

    def __call__(self, items: Iterable[str]) -> frozenset[str]:
        key = frozenset(items)
        shared = self._sets.get(key)
        if shared is not None:
            return shared
        if len(self._sets) < MAX_SHARED_SETS:
            self._sets[key] = key
        return key
