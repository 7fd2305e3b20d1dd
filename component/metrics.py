"""Prometheus metrics, in a registry of the gateway's own (one per process).

Counts of things that come and go (outbox items by state, set-aside events, table rows, IRC
connections) are read when Prometheus scrapes, by :class:`Snapshot`, never kept in gauges
between scrapes: a gauge set only for the states seen would keep its last value when a state
empties. Every known state is said each time, ``0`` included.
"""

from __future__ import annotations

import importlib.metadata
import platform
import time
from collections import Counter as Tally
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from mappings import retention
from mappings.outbox import DELIVERED, FAILED, PENDING, SENDING

if TYPE_CHECKING:
    from mappings.store import Store
    from transports.base import Transport
    from transports.irc.transport import IrcTransport

OUTBOX_STATES = (PENDING, SENDING, DELIVERED, FAILED)
#: Seconds from a message's acceptance to its hand-over: from an instant (an IRC line) to a
#: day of retries (an SMTP relay that is down).
DELIVERY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 86400)
#: The inbound events whose latency is measured: messages (transports/events.py, rooms.py).
#: Presences and chat states come by the hundred when a room is joined and would drown them.
MESSAGE_KINDS = frozenset({"message", "room-post", "room-message"})


def version() -> str:
    try:
        return importlib.metadata.version("portway")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "unknown"


class Metrics:
    def __init__(self, transports: Collection[Transport] = ()) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        GCCollector(registry=r)
        PlatformCollector(registry=r)
        self.snapshot = Snapshot(transports)
        r.register(self.snapshot)
        Gauge(
            "portway_build_info",
            "The running Portway's version (always 1)",
            ["version", "python"],
            registry=r,
        ).labels(version(), platform.python_version()).set(1)
        self.component_connected = Gauge(
            "portway_component_connected",
            "1 when the component is attached",
            ["transport"],
            registry=r,
        )
        self.reconnects = Counter(
            "portway_component_reconnects",
            "Connection attempts after a loss",
            ["transport"],
            registry=r,
        )
        self.inbound_delivered = Counter(
            "portway_inbound_delivered", "Events handed to XMPP", ["transport"], registry=r
        )
        self.inbound_duplicates = Counter(
            "portway_inbound_duplicates",
            "Inbound events dropped as duplicates",
            ["transport"],
            registry=r,
        )
        self.inbound_rejected = Counter(
            "portway_inbound_rejected",
            "Inbound traffic refused (unknown recipient, bad signature, too large, …)",
            ["transport", "reason"],
            registry=r,
        )
        self.inbound_set_aside = Counter(
            "portway_inbound_set_aside",
            "Inbound events set aside after too many failed attempts (see portway queue list)",
            ["transport"],
            registry=r,
        )
        self.outbox_delivered = Counter(
            "portway_outbox_delivered", "Outbound messages delivered", ["transport"], registry=r
        )
        self.outbox_retries = Counter(
            "portway_outbox_retries",
            "Outbound attempts that will be retried",
            ["transport"],
            registry=r,
        )
        self.outbox_failed = Counter(
            "portway_outbox_failed", "Outbound messages failed for good", ["transport"], registry=r
        )
        self.delivery_seconds = Histogram(
            "portway_delivery_seconds",
            "Seconds from accepting a message to handing it on: direction out is from the "
            "XMPP user to the network's acceptance (retries included), in is from the "
            "network to the XMPP server (time queued while it was away included)",
            ["transport", "direction"],
            buckets=DELIVERY_BUCKETS,
            registry=r,
        )
        #: (transport, direction) → its histogram: ``labels()`` checks and locks at each
        #: call, and it is called for every message carried
        self._delivery: dict[tuple[str, str], Histogram] = {}
        self.pruned_rows = Counter(
            "portway_pruned_rows",
            "Rows forgotten by retention (see retention: in the config)",
            ["table"],
            registry=r,
        )
        # Said at 0 from the start for every transport (and every reason it refuses traffic
        # for), as the gauges are: a series that
        # appears only at its first event makes rate() and alerts on it blind until then.
        per_transport = (
            self.reconnects,
            self.inbound_delivered,
            self.inbound_duplicates,
            self.inbound_set_aside,
            self.outbox_delivered,
            self.outbox_retries,
            self.outbox_failed,
        )
        for transport in transports:
            for counter in per_transport:
                counter.labels(transport.name)
            for reason in (*transport.rejection_reasons, "unrenderable"):
                self.inbound_rejected.labels(transport.name, reason)

    async def read(self, store: Store) -> None:
        """Read what the next scrape says of the store; call it right before the scrape."""
        await self.snapshot.read(store)

    def handed_in(self, transport: str, kind: str, accepted_at: float) -> None:
        """An inbound event of ``kind`` went to XMPP; its latency counts if it is a message."""
        if kind in MESSAGE_KINDS:
            self._delivered(transport, "in").observe(max(0.0, time.time() - accepted_at))

    def handed_out(self, transport: str, accepted_at: float) -> None:
        """A user's message reached the network (IRC: its line is on the socket) without the
        outbox, whose worker counts the others."""
        self._delivered(transport, "out").observe(max(0.0, time.time() - accepted_at))

    def _delivered(self, transport: str, direction: str) -> Histogram:
        child = self._delivery.get((transport, direction))
        if child is None:
            child = self._delivery[transport, direction] = self.delivery_seconds.labels(
                transport, direction
            )
        return child


@dataclass(eq=False)  # the registry keys collectors by identity
class Snapshot(Collector):
    """The store's counts and the IRC connections, as of the last :meth:`read`."""

    transports: Collection[Transport]
    outbox: dict[tuple[str, str], int] = field(default_factory=dict)
    set_aside: dict[str, int] = field(default_factory=dict)
    tables: dict[str, int] = field(default_factory=dict)

    async def read(self, store: Store) -> None:
        self.outbox = await store.outbox.counts()
        self.set_aside = await store.inbound.set_aside_counts()
        self.tables = await retention.table_rows(store)

    def collect(self) -> Iterable[Metric]:
        names = sorted({t.name for t in self.transports} | {t for t, _ in self.outbox})
        outbox = GaugeMetricFamily(
            "portway_outbox_items",
            "Outbox messages by state, read at each scrape",
            labels=["transport", "state"],
        )
        for transport in names:
            for state in OUTBOX_STATES:
                outbox.add_metric([transport, state], self.outbox.get((transport, state), 0))
        yield outbox
        waiting = GaugeMetricFamily(
            "portway_inbound_set_aside_items",
            "Inbound events set aside and waiting for an admin (portway queue), at each scrape",
            labels=["transport"],
        )
        for transport in sorted(set(names) | set(self.set_aside)):
            waiting.add_metric([transport], self.set_aside.get(transport, 0))
        yield waiting
        rows = GaugeMetricFamily(
            "portway_table_rows", "Rows in each of the gateway's tables", labels=["table"]
        )
        for table, count in sorted(self.tables.items()):
            rows.add_metric([table], count)
        yield rows
        yield from irc_gauges(self.transports)


def irc_gauges(transports: Iterable[Transport]) -> Iterator[Metric]:
    """IRC connections up and channels joined, per server, as they are now; the configured
    servers are said with 0 when nobody is connected to them."""
    for transport in (cast("IrcTransport", t) for t in transports if t.name == "irc"):
        connections: Tally[str] = Tally(dict.fromkeys(transport.settings.servers, 0))
        channels: Tally[str] = Tally(dict.fromkeys(transport.settings.servers, 0))
        for session in list(transport.sessions.values()):
            if session.connected:
                connections[session.server] += 1
                channels[session.server] += sum(c.joined for c in session.channels.values())
        up = GaugeMetricFamily(
            "portway_irc_connections",
            "IRC connections registered with their server",
            labels=["server"],
        )
        joined = GaugeMetricFamily(
            "portway_irc_joined_channels",
            "Channels joined, over every connection",
            labels=["server"],
        )
        for server in sorted(connections):
            up.add_metric([server], connections[server])
            joined.add_metric([server], channels[server])
        yield up
        yield joined
