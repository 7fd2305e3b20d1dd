"""Retention: what the gateway forgets, and when, while it runs.

A gateway runs for years; without this its database grows with every message ever carried.
Each kind of record has its own horizon (``retention:`` in the config), because each serves
something different for a different time: a dedup key must outlive a sender's retries, an
id map the corrections and replies that may still name its message, the room archive the
history users expect on join. One task prunes them all every ``interval_minutes``; pruning
at start only would keep a gateway that never restarts growing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import Field

from mappings import retention
from transports.settings import Section

if TYPE_CHECKING:
    from component.metrics import Metrics
    from mappings.store import Store

log = logging.getLogger(__name__)

DAY = 86400.0

#: A horizon in days: fractions allowed (0.5 is twelve hours); ``null`` keeps forever.
Days = float | None


class RetentionSettings(Section):
    """How long each kind of record is kept; see config.example.yaml."""

    outbox_days: Days = Field(default=30.0, gt=0)
    message_ids_days: Days = Field(default=90.0, gt=0)
    archive_days: Days = Field(default=30.0, gt=0)
    inbound_days: Days = Field(default=7.0, gt=0)
    interval_minutes: float = Field(default=60.0, gt=0)


def horizons(settings: RetentionSettings) -> list[tuple[tuple[retention.Rule, ...], Days]]:
    """Each group of tables with the days it keeps; media go at their own expiry."""
    return [
        (retention.OUTBOX, settings.outbox_days),
        (retention.MESSAGE_IDS, settings.message_ids_days),
        (retention.ARCHIVE, settings.archive_days),
        (retention.INBOUND, settings.inbound_days),
        (retention.MEDIA, 0.0),
    ]


async def prune_once(
    store: Store, settings: RetentionSettings, now: float | None = None
) -> dict[str, int]:
    """One round: rows deleted per table."""
    now = time.time() if now is None else now
    deleted: dict[str, int] = {}
    for rules, days in horizons(settings):
        if days is not None:
            deleted.update(await retention.prune(store, rules, now - days * DAY, now))
    return deleted


async def keep_pruning(
    store: Store,
    current: Callable[[], RetentionSettings],
    metrics: Metrics,
    changed: asyncio.Event | None = None,
) -> None:
    """Prune now, then every ``interval_minutes``, for as long as the gateway runs.

    ``current`` gives the settings as they are now, read at each round. Setting ``changed``
    (a reload with new retention settings) starts a round at once, so that a shorter horizon
    or interval takes effect then, not after the interval that was running (an hour by
    default).
    """
    changed = changed or asyncio.Event()
    while True:
        settings = current()
        try:
            deleted = await prune_once(store, settings)
        except Exception:  # the database may be away for a while; the next round tries again
            log.exception("pruning old records failed; trying again next round")
        else:
            for table, count in deleted.items():
                metrics.pruned_rows.labels(table).inc(count)
            if any(deleted.values()):
                summary = ", ".join(f"{n} {table}" for table, n in deleted.items() if n)
                log.info("retention: forgot old records (%s)", summary)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), settings.interval_minutes * 60)
        changed.clear()
