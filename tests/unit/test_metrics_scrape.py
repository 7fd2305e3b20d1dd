"""/metrics: what is read at each scrape (and so never stale), and what every process says."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import generate_latest

from component.metrics import Metrics, version
from mappings.store import Store

SMS = SimpleNamespace(name="sms", rejection_reasons=("bad-signature",))
REJECTED = "portway_inbound_rejected_total"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    yield opened
    await opened.close()


async def scrape(metrics: Metrics, store: Store, name: str, **labels: str) -> float | None:
    await metrics.read(store)
    generate_latest(metrics.registry)  # the whole page renders
    return metrics.registry.get_sample_value(name, labels)


async def test_outbox_items_drop_to_zero_when_a_state_empties(store: Store) -> None:
    metrics = Metrics([SMS])  # type: ignore[list-item]
    item = await store.outbox.enqueue("sms", "a@example.org", "+15550000000", {})
    assert item is not None
    items = "portway_outbox_items"
    assert await scrape(metrics, store, items, transport="sms", state="pending") == 1
    await store.outbox.mark_delivered(item.id)
    assert await scrape(metrics, store, items, transport="sms", state="pending") == 0
    assert await scrape(metrics, store, items, transport="sms", state="delivered") == 1
    await store.execute("DELETE FROM outbox")  # as retention does
    assert await scrape(metrics, store, items, transport="sms", state="delivered") == 0


async def test_every_state_of_every_transport_is_said_before_any_message(store: Store) -> None:
    metrics = Metrics([SMS, SimpleNamespace(name="email", rejection_reasons=())])  # type: ignore[list-item]
    for transport in ("sms", "email"):
        for state in ("pending", "sending", "delivered", "failed"):
            found = await scrape(
                metrics, store, "portway_outbox_items", transport=transport, state=state
            )
            assert found == 0, (transport, state)
        waiting = await scrape(
            metrics, store, "portway_inbound_set_aside_items", transport=transport
        )
        assert waiting == 0


async def test_every_counter_of_every_transport_is_said_at_zero_before_any_event(
    store: Store,
) -> None:
    metrics = Metrics([SMS, SimpleNamespace(name="email", rejection_reasons=())])  # type: ignore[list-item]
    counters = (
        "portway_component_reconnects_total",
        "portway_inbound_delivered_total",
        "portway_inbound_duplicates_total",
        "portway_inbound_set_aside_total",
        "portway_outbox_delivered_total",
        "portway_outbox_retries_total",
        "portway_outbox_failed_total",
    )
    for transport in ("sms", "email"):
        for name in counters:
            assert await scrape(metrics, store, name, transport=transport) == 0, (transport, name)
        said = await scrape(metrics, store, REJECTED, transport=transport, reason="unrenderable")
        assert said == 0, transport
    assert await scrape(metrics, store, REJECTED, transport="sms", reason="bad-signature") == 0


async def test_set_aside_events_are_counted_until_retried(store: Store) -> None:
    metrics = Metrics([SMS])  # type: ignore[list-item]
    await store.inbound.put("sms", "a@example.org", {}, dedup_key="k")
    await store.execute("UPDATE inbound SET state = 'set-aside'")
    assert await scrape(metrics, store, "portway_inbound_set_aside_items", transport="sms") == 1
    await store.inbound.retry()
    assert await scrape(metrics, store, "portway_inbound_set_aside_items", transport="sms") == 0


async def test_table_rows_follow_the_tables(store: Store) -> None:
    metrics = Metrics()
    assert await scrape(metrics, store, "portway_table_rows", table="outbox") == 0
    await store.outbox.enqueue("sms", "a@example.org", "+15550000000", {})
    assert await scrape(metrics, store, "portway_table_rows", table="outbox") == 1
    assert await scrape(metrics, store, "portway_table_rows", table="room_archive") is None


async def test_process_gc_and_build_info_are_said(store: Store) -> None:
    metrics = Metrics()
    await metrics.read(store)
    page = generate_latest(metrics.registry).decode()
    assert version() == "0.1.0"
    build = metrics.registry.get_sample_value(
        "portway_build_info", {"version": version(), "python": _python()}
    )
    assert build == 1
    assert (metrics.registry.get_sample_value("process_resident_memory_bytes") or 0) > 0
    assert (metrics.registry.get_sample_value("process_open_fds") or 0) > 0
    assert "python_gc_collections_total" in page
    assert "python_info" in page


def _python() -> str:
    import platform

    return platform.python_version()


def irc(sessions: list[Any], servers: tuple[str, ...] = ()) -> Any:
    return SimpleNamespace(
        name="irc",
        rejection_reasons=(),
        settings=SimpleNamespace(servers=dict.fromkeys(servers)),
        sessions={(i, s.server): s for i, s in enumerate(sessions)},
    )


def session(server: str, connected: bool, joined: int, joining: int = 0) -> Any:
    channels = [SimpleNamespace(joined=True)] * joined + [SimpleNamespace(joined=False)] * joining
    return SimpleNamespace(server=server, connected=connected, channels=dict(enumerate(channels)))


async def test_irc_connections_and_channels_are_read_from_the_sessions(store: Store) -> None:
    network = irc(
        [
            session("irc.libera.chat", True, joined=2, joining=1),
            session("irc.libera.chat", True, joined=1),
            session("irc.oftc.net", False, joined=0),  # still connecting
        ],
        servers=("irc.libera.chat", "irc.oftc.net"),
    )
    metrics = Metrics([network])
    up, joined = "portway_irc_connections", "portway_irc_joined_channels"
    assert await scrape(metrics, store, up, server="irc.libera.chat") == 2
    assert await scrape(metrics, store, joined, server="irc.libera.chat") == 3
    assert await scrape(metrics, store, up, server="irc.oftc.net") == 0
    assert await scrape(metrics, store, joined, server="irc.oftc.net") == 0
    network.sessions.clear()  # everybody left
    assert await scrape(metrics, store, up, server="irc.libera.chat") == 0
    assert await scrape(metrics, store, joined, server="irc.libera.chat") == 0


async def test_no_irc_gauges_without_irc(store: Store) -> None:
    metrics = Metrics([SMS])  # type: ignore[list-item]
    await metrics.read(store)
    assert "portway_irc_connections" not in generate_latest(metrics.registry).decode()


def test_delivery_latency_is_a_histogram_per_transport_and_direction() -> None:
    metrics = Metrics()
    metrics.delivery_seconds.labels("sms", "out").observe(3.0)
    sample = metrics.registry.get_sample_value(
        "portway_delivery_seconds_bucket", {"transport": "sms", "direction": "out", "le": "5.0"}
    )
    assert sample == 1
    below = metrics.registry.get_sample_value(
        "portway_delivery_seconds_bucket", {"transport": "sms", "direction": "out", "le": "2.5"}
    )
    assert below == 0
