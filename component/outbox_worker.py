"""Works through one transport's durable outbox: attempt, retry with backoff, report.

Items of one conversation (user, contact) are attempted in order; different conversations go
in parallel, so one slow SMTP relay conversation does not hold up everyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from typing import TYPE_CHECKING

from mappings.outbox import OutboxItem, RetryPolicy
from transports.base import (
    Delivered,
    DeliveryFailed,
    OutboundMessage,
    Pending,
    RetryLater,
    Transport,
)
from transports.events import DeliveryReport, rebuild

if TYPE_CHECKING:
    from component.host import Host

log = logging.getLogger(__name__)

DEFAULT_POLICY = RetryPolicy()
IDLE_POLL_SECONDS = 30.0


class OutboxWorker:
    def __init__(self, transport: Transport, host: Host) -> None:
        self.transport = transport
        self.host = host
        self.policy = transport.retry_policy or DEFAULT_POLICY
        self.lease_seconds = transport.settings.outbox_lease_seconds
        #: Retries since the last delivery. A relay that is down fails every queued item on
        #: every round: the first failure and the recovery are logged, each retry in between
        #: only at DEBUG, so that an outage is two lines, not thousands.
        self.retries_since_delivery = 0

    async def run(self) -> None:
        store = self.host.store
        name = self.transport.name
        while True:
            self.host.outbox_wakeup.clear()
            try:
                items = await store.outbox.claim(name, lease_seconds=self.lease_seconds)
            except Exception:
                log.exception("%s: cannot read the outbox; retrying", name)
                await asyncio.sleep(5)
                continue
            if items:
                await self._attempt_all(items)
                continue
            due = await store.outbox.next_due(name)
            wait = IDLE_POLL_SECONDS if due is None else max(0.05, due - time.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.host.outbox_wakeup.wait(), min(wait, IDLE_POLL_SECONDS))

    async def _attempt_all(self, items: list[OutboxItem]) -> None:
        conversations: dict[tuple[str, str], list[OutboxItem]] = defaultdict(list)
        for item in items:
            conversations[(item.user_jid, item.contact)].append(item)

        async def in_order(queue: list[OutboxItem]) -> None:
            for item in queue:
                await self.attempt(item)

        await asyncio.gather(*(in_order(queue) for queue in conversations.values()))

    async def attempt(self, item: OutboxItem) -> None:
        store = self.host.store
        message = rebuild(OutboundMessage, item.payload["message"])
        pending = Pending(item.id, item.attempts, message, dict(item.payload.get("data") or {}))
        try:
            result: Delivered = await self.transport.deliver(pending)
        except RetryLater as retry:
            if self.policy.gives_up(item.created_at, time.time()):
                await self._fail(item, message, f"gave up retrying: {retry.reason}")
                return
            delay = retry.after_seconds or self.policy.delay(item.attempts)
            log.log(
                logging.DEBUG if self.retries_since_delivery else logging.WARNING,
                "%s: outbox item %s attempt %s failed (%s); retrying in %.0fs%s",
                self.transport.name,
                item.id,
                item.attempts,
                retry.reason,
                delay,
                "" if self.retries_since_delivery else " (further retries are logged at DEBUG)",
            )
            self.retries_since_delivery += 1
            await store.outbox.retry_later(item.id, retry.reason, time.time() + delay)
            self.host.metrics.outbox_retries.labels(self.transport.name).inc()
            return
        except DeliveryFailed as failure:
            await self._fail(item, message, failure.reason)
            return
        except Exception as exc:  # a bug in a transport must not stop the queue
            log.exception("%s: outbox item %s raised", self.transport.name, item.id)
            delay = self.policy.delay(item.attempts)
            await store.outbox.retry_later(item.id, f"internal error: {exc}", time.time() + delay)
            return
        await store.outbox.mark_delivered(item.id, result.remote_id)
        if self.retries_since_delivery:
            log.info(
                "%s: delivering again, after %s retries",
                self.transport.name,
                self.retries_since_delivery,
            )
            self.retries_since_delivery = 0
        self.host.metrics.outbox_delivered.labels(self.transport.name).inc()
        self.host.metrics.delivery_seconds.labels(self.transport.name, "out").observe(
            max(0.0, time.time() - item.created_at)
        )
        if result.final and message.receipt_requested and message.xmpp_id:
            await self.host.deliver(
                DeliveryReport(message.user_jid, message.contact, message.xmpp_id, True),
                durable=True,
            )

    async def _fail(self, item: OutboxItem, message: OutboundMessage, reason: str) -> None:
        log.warning("%s: outbox item %s failed for good: %s", self.transport.name, item.id, reason)
        await self.host.store.outbox.mark_failed(item.id, reason)
        self.host.metrics.outbox_failed.labels(self.transport.name).inc()
        await self.host.deliver(
            # To the full JID: servers bounce error messages addressed to a bare JID.
            DeliveryReport(
                message.from_jid,
                message.contact,
                message.xmpp_id or f"outbox-{item.id}",
                False,
                reason,
            ),
            durable=True,
        )
