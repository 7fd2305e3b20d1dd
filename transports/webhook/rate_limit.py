"""Per-hook inbound rate limits: a token bucket per hook, refilled continuously.

A bucket holds a minute's worth of posts, so a service that posts in bursts (an alert storm)
is not refused while its average stays under the limit. The state lives in this process:
with several processes each one counts its own share, which bounds the total at N times the
limit; that is enough to stop one runaway sender from flooding a user's client.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, per_minute: int) -> float:
        """Take one post from ``key``'s bucket: 0 if allowed, else seconds until one is."""
        now = self._clock()
        bucket = self._buckets.setdefault(key, _Bucket(float(per_minute), now))
        rate = per_minute / 60.0
        bucket.tokens = min(float(per_minute), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate

    def forget(self, key: str) -> None:
        """Drop a deleted hook's bucket."""
        self._buckets.pop(key, None)


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` in whole seconds, never 0 (which would invite an immediate retry)."""
    return str(max(1, math.ceil(seconds)))
