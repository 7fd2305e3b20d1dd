"""An inbound event the component cannot render is dropped, counted, and does not hold up
the events behind it (``portway_inbound_rejected_total{reason="unrenderable"}``).

No outside input reaches this on purpose: events are built by the transports, so a render
that raises is a bug. tests/e2e/test_rejection_reasons.py provokes the other way in, a queued
row the gateway cannot read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from component.config import Config
from component.host import Host
from component.metrics import Metrics
from mappings.store import Store
from transports.events import InboundMessage


class Component:
    """Renders every event but those whose body is ``"boom"``."""

    def __init__(self) -> None:
        self.rendered: list[str] = []

    def render(self, event: Any) -> None:
        if event.body == "boom":
            raise ValueError("a bug in rendering")
        self.rendered.append(event.body)


async def test_an_event_that_cannot_be_rendered_is_counted_and_the_rest_go_out(
    tmp_path: Path,
) -> None:
    config = Config.model_validate(
        {"allowed_domains": ["example.org"], "transports": {}, "database": "sqlite:///x.db"}
    )
    store = await Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    metrics = Metrics()
    host = Host("email", "mail.example.org", config, store, web.Application(), metrics)
    component = Component()
    host.component = component  # type: ignore[assignment]
    try:
        events = [
            InboundMessage("alice@example.org", "", body)  # no contact: no roster step
            for body in ("first", "boom", "last")
        ]
        await host._emit_all(events)
    finally:
        await store.close()
    assert component.rendered == ["first", "last"]
    labels = {"transport": "email", "reason": "unrenderable"}
    assert metrics.registry.get_sample_value("portway_inbound_rejected_total", labels) == 1
