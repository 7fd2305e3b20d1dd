"""Per-hook inbound rate limits: a token bucket per hook, refilled continuously.

A bucket holds a minute's worth of posts, so a service that posts in bursts (an alert storm)
is not refused while its average stays under the limit. The state lives in this process:
with several processes each one counts its own share, which bounds the total at N times the
limit; that is enough to stop one runaway sender from flooding a user's client.

The table is bounded. Its keys are names of hooks that exist and whose secret the post
carried (the endpoint takes a token only after both checks), so they are at most the
config's hooks plus ``max_hooks_per_user`` per registered user. Whatever their number, a
bucket left alone for a minute is full again, the same as no bucket, and is dropped; and
past ``max_keys`` the least recently used bucket goes (its hook is then treated as fresh).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

#: Any bucket refills completely in this time, whatever its rate: it holds a minute's worth.
REFILL_SECONDS = 60.0
#: Buckets kept at most: far more hooks than post within one minute on any one gateway.
MAX_KEYS = 65536


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_keys: int = MAX_KEYS
    ) -> None:
        self._clock = clock
        self._max_keys = max_keys
        #: least recently used first, so the refilled ones are found at the front
        self._buckets: dict[str, _Bucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, per_minute: int) -> float:
        """Take one post from ``key``'s bucket: 0 if allowed, else seconds until one is."""
        now = self._clock()
        self._drop_refilled(now)
        bucket = self._buckets.pop(key, None) or _Bucket(float(per_minute), now)
        self._buckets[key] = bucket
        if len(self._buckets) > self._max_keys:
            del self._buckets[next(iter(self._buckets))]
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

    def _drop_refilled(self, now: float) -> None:
        while self._buckets:
            key, bucket = next(iter(self._buckets.items()))
            if now - bucket.updated < REFILL_SECONDS:
                return
            del self._buckets[key]


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` in whole seconds, never 0 (which would invite an immediate retry)."""
    return str(max(1, math.ceil(seconds)))
