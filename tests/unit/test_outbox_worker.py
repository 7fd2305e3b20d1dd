"""The outbox worker's rules: retry with backoff, give up at the deadline, report the end."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from component.metrics import Metrics
from component.outbox_worker import OutboxWorker
from mappings.outbox import DELIVERED, FAILED, PENDING, RetryPolicy
from mappings.store import Store
from transports.base import (
    Delivered,
    DeliveryFailed,
    OutboundMessage,
    Pending,
    RetryLater,
    Transport,
)
from transports.events import DeliveryReport
from transports.settings import TransportSettings


class ScriptedTransport(Transport):
    """Answers each attempt with the next scripted outcome."""

    name = "scripted"
    gateway_type = "http-ws"
    title = "Scripted"

    def __init__(self, outcomes: list[Any], policy: RetryPolicy | None = None) -> None:
        super().__init__(TransportSettings(jid="x.example.org", secret="s3cret-x"), None)  # type: ignore[arg-type]
        self.outcomes = outcomes
        self.attempts: list[Pending] = []
        self.retry_policy = policy

    def parse_address(self, localpart: str) -> str:
        return localpart

    def format_address(self, address: str) -> str:
        return address

    async def send(self, message: OutboundMessage) -> None:
        raise AssertionError("not used")

    async def deliver(self, pending: Pending) -> Delivered:
        self.attempts.append(pending)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        assert isinstance(outcome, Delivered)
        return outcome


class RecordingHost:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.metrics = Metrics()
        self.outbox_wakeup = asyncio.Event()
        self.delivered: list[Any] = []

    async def deliver(self, event: Any, **_kwargs: Any) -> bool:
        self.delivered.append(event)
        return True


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite:///{tmp_path / 'outbox.db'}")
    yield opened
    await opened.close()


MESSAGE = OutboundMessage(
    user_jid="alice@example.org",
    from_jid="alice@example.org/phone",
    contact="bob",
    body="hi",
    xmpp_id="m1",
    receipt_requested=True,
)


async def enqueue(store: Store, message: OutboundMessage = MESSAGE) -> int:
    item = await store.outbox.enqueue(
        "scripted",
        message.user_jid,
        message.contact,
        {"message": dataclasses.asdict(message), "data": {"k": 1}},
        xmpp_id=message.xmpp_id,
    )
    assert item is not None
    return item.id


async def attempt_due(worker: OutboxWorker, store: Store) -> None:
    for item in await store.outbox.claim("scripted"):
        await worker.attempt(item)


async def test_success_sends_a_receipt_when_asked(store: Store) -> None:
    host = RecordingHost(store)
    transport = ScriptedTransport([Delivered("remote-1")])
    item_id = await enqueue(store)
    await attempt_due(OutboxWorker(transport, host), store)  # type: ignore[arg-type]
    done = await store.outbox.get(item_id)
    assert done is not None and done.state == DELIVERED and done.remote_id == "remote-1"
    assert transport.attempts[0].data == {"k": 1}
    assert transport.attempts[0].message == MESSAGE
    assert host.delivered == [DeliveryReport("alice@example.org", "bob", "m1", True)]


async def test_no_receipt_until_the_network_confirms(store: Store) -> None:
    host = RecordingHost(store)
    await enqueue(store)
    worker = OutboxWorker(ScriptedTransport([Delivered("sid", final=False)]), host)  # type: ignore[arg-type]
    await attempt_due(worker, store)
    assert host.delivered == []


async def test_temporary_failure_is_retried_later_then_delivered(store: Store) -> None:
    host = RecordingHost(store)
    transport = ScriptedTransport([RetryLater("relay down"), Delivered()])
    worker = OutboxWorker(transport, host)  # type: ignore[arg-type]
    item_id = await enqueue(store)
    await attempt_due(worker, store)
    waiting = await store.outbox.get(item_id)
    assert waiting is not None and waiting.state == PENDING and waiting.last_error == "relay down"
    await attempt_due(worker, store)
    assert len(transport.attempts) == 1  # not due yet: backoff
    await store.execute("UPDATE outbox SET next_attempt_at = 0")
    await attempt_due(worker, store)
    done = await store.outbox.get(item_id)
    assert done is not None and done.state == DELIVERED and done.attempts == 2


async def test_an_outage_is_logged_when_it_begins_and_ends_not_at_each_retry(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    host = RecordingHost(store)
    outcomes: list[Any] = [RetryLater("relay down")] * 6 + [Delivered()] * 3
    worker = OutboxWorker(ScriptedTransport(outcomes), host)  # type: ignore[arg-type]
    for n in range(3):  # three conversations, attempted side by side
        await enqueue(store, dataclasses.replace(MESSAGE, contact=f"bob{n}"))
    caplog.set_level(logging.INFO, logger="component.outbox_worker")
    for _ in range(3):  # two rounds of failures for three items, then the relay is back
        await attempt_due(worker, store)
        await store.execute("UPDATE outbox SET next_attempt_at = 0")
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert len(said) == 2, said
    assert said[0][0] == "WARNING" and "relay down" in said[0][1]
    assert said[1] == ("INFO", "scripted: delivering again, after 6 retries")


async def test_retry_after_is_honoured(store: Store) -> None:
    host = RecordingHost(store)
    worker = OutboxWorker(ScriptedTransport([RetryLater("429", after_seconds=120)]), host)  # type: ignore[arg-type]
    await enqueue(store)
    await attempt_due(worker, store)
    due = await store.outbox.next_due("scripted")
    assert due is not None
    assert 110 < due - time.time() <= 120


async def test_final_failure_reports_an_error_to_the_sending_resource(store: Store) -> None:
    host = RecordingHost(store)
    worker = OutboxWorker(ScriptedTransport([DeliveryFailed("550 no such user")]), host)  # type: ignore[arg-type]
    item_id = await enqueue(store)
    await attempt_due(worker, store)
    failed = await store.outbox.get(item_id)
    assert failed is not None and failed.state == FAILED
    assert failed.last_error == "550 no such user"
    assert host.delivered == [
        DeliveryReport("alice@example.org/phone", "bob", "m1", False, "550 no such user")
    ]


async def test_gives_up_after_the_deadline(store: Store) -> None:
    host = RecordingHost(store)
    policy = RetryPolicy(give_up_after_seconds=0)
    worker = OutboxWorker(ScriptedTransport([RetryLater("still down")], policy), host)  # type: ignore[arg-type]
    item_id = await enqueue(store)
    await attempt_due(worker, store)
    failed = await store.outbox.get(item_id)
    assert failed is not None and failed.state == FAILED
    assert failed.last_error == "gave up retrying: still down"
    assert host.delivered[0].delivered is False


async def test_a_transport_bug_is_retried_not_lost(store: Store) -> None:
    host = RecordingHost(store)
    worker = OutboxWorker(ScriptedTransport([ZeroDivisionError("oops")]), host)  # type: ignore[arg-type]
    item_id = await enqueue(store)
    await attempt_due(worker, store)
    kept = await store.outbox.get(item_id)
    assert kept is not None and kept.state == PENDING
    assert kept.last_error == "internal error: oops"


async def test_one_conversation_is_attempted_in_order(store: Store) -> None:
    host = RecordingHost(store)
    transport = ScriptedTransport([Delivered()] * 3)
    worker = OutboxWorker(transport, host)  # type: ignore[arg-type]
    for n in range(3):
        await enqueue(store, dataclasses.replace(MESSAGE, xmpp_id=f"m{n}", body=str(n)))
    for _ in range(3):
        await attempt_due(worker, store)
    assert [p.message.body for p in transport.attempts] == ["0", "1", "2"]
