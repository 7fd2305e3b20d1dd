"""Anti-flood: a token bucket in front of every IRC connection's writes.

Real networks disconnect a client that sends faster than a few lines a second ("Excess
Flood"); a burst is allowed, then lines leave at a steady rate. Waiting is asynchronous,
so one throttled connection never holds up the others sharing the event loop.
"""

from __future__ import annotations

import time


class TokenBucket:
    __slots__ = ("_stamp", "_tokens", "burst", "per_second")  # one per connection

    def __init__(self, burst: int, per_second: float) -> None:
        self.burst = burst
        self.per_second = per_second
        self._tokens = float(burst)
        self._stamp = time.monotonic()

    def delay(self, now: float | None = None) -> float:
        """Take one token; return how long to wait before the line may leave (0 = now)."""
        now = time.monotonic() if now is None else now
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.per_second)
        self._stamp = now
        self._tokens -= 1
        if self._tokens >= 0:
            return 0.0
        return -self._tokens / self.per_second
