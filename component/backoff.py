"""Capped exponential backoff with jitter, for reconnecting to servers we do not control.

Jitter matters: after an XMPP server restart, every component of every gateway reconnects at
once unless the delays are spread.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    base_seconds: float = 1.0
    cap_seconds: float = 60.0
    rng: random.Random = field(default_factory=random.Random)
    attempts: int = 0

    def next_delay(self) -> float:
        """The wait before the next attempt: uniform in [ceiling/2, ceiling]."""
        self.attempts += 1
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** (self.attempts - 1))
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempts = 0
