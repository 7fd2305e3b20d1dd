"""Per-user outbound rate limit: a gateway account must not become a spam cannon.

A sliding window in memory is enough for one process; with several processes sharing one
database each enforces the limit on its own share, which still bounds the total.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class RateLimit:
    def __init__(
        self, per_hour: int, clock: Callable[[], float] = time.monotonic, window: float = 3600.0
    ) -> None:
        self.per_hour = per_hour
        self._clock = clock
        self._window = window
        self._sent: dict[str, deque[float]] = {}

    def try_acquire(self, user_jid: str) -> float | None:
        """Count one message; ``None`` if allowed, else seconds until the next one may go."""
        now = self._clock()
        sent = self._sent.setdefault(user_jid, deque())
        while sent and sent[0] <= now - self._window:
            sent.popleft()
        if len(sent) >= self.per_hour:
            return sent[0] + self._window - now
        sent.append(now)
        return None

    def release(self, user_jid: str) -> None:
        """Give back the last count (the message was not queued after all)."""
        sent = self._sent.get(user_jid)
        if sent:
            sent.pop()
