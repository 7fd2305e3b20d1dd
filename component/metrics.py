"""Prometheus metrics, in a registry of the gateway's own (one per process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
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
            "Inbound traffic refused (unknown recipient, bad signature, …)",
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
        self.inbound_set_aside_items = Gauge(
            "portway_inbound_set_aside_items",
            "Inbound events set aside and waiting for an admin (portway queue), at each scrape",
            ["transport"],
            registry=r,
        )
        self.outbox_items = Gauge(
            "portway_outbox_items",
            "Outbox messages by state, read at each scrape",
            ["transport", "state"],
            registry=r,
        )
