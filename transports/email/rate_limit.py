"""Per-user outbound rate limit: a gateway account must not become a spam cannon.

A sliding window in memory is enough for one process; with several processes sharing one
database each enforces the limit on its own share, which still bounds the total.

The table is bounded. Its keys are senders the transport has already checked: registered
with the email gateway and in ``allowed_domains`` (so at most the registered users), each
window holding at most ``per_hour`` times. A window whose times are all past is the same as
none and is dropped; past ``max_keys`` the least recently used window goes (its user may
then send a little early: a small price against unbounded memory).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

#: Windows kept at most: more users than send mail within one hour on any one gateway.
MAX_KEYS = 65536


class RateLimit:
    def __init__(
        self,
        per_hour: int,
        clock: Callable[[], float] = time.monotonic,
        window: float = 3600.0,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.per_hour = per_hour
        self._clock = clock
        self._window = window
        self._max_keys = max_keys
        #: by time of the last count, oldest first, so the expired ones are at the front
        self._sent: dict[str, deque[float]] = {}

    def __len__(self) -> int:
        return len(self._sent)

    def try_acquire(self, user_jid: str) -> float | None:
        """Count one message; ``None`` if allowed, else seconds until the next one may go."""
        now = self._clock()
        self._drop_expired(now)
        sent = self._sent.get(user_jid)
        if sent is not None:
            while sent and sent[0] <= now - self._window:
                sent.popleft()
            if len(sent) >= self.per_hour:
                return sent[0] + self._window - now
        sent = self._sent.pop(user_jid, None) or deque()
        sent.append(now)
        self._sent[user_jid] = sent
        if len(self._sent) > self._max_keys:
            del self._sent[next(iter(self._sent))]
        return None

    def release(self, user_jid: str) -> None:
        """Give back the last count (the message was not queued after all)."""
        sent = self._sent.get(user_jid)
        if sent:
            sent.pop()
        if not sent:
            self._sent.pop(user_jid, None)

    def _drop_expired(self, now: float) -> None:
        while self._sent:
            user_jid, sent = next(iter(self._sent.items()))
            if sent and sent[-1] > now - self._window:
                return
            del self._sent[user_jid]
