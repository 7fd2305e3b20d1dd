"""Keeps one component attached to the XMPP server, across its restarts and outages.

slixmpp retries on its own, but without jitter and logging every try; this supervisor owns the
policy instead: capped exponential backoff with jitter, one log line per attempt, and a wrong
secret treated as fatal, since retrying it can only fill the server's log.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from component import goodbye
from component.backoff import Backoff

if TYPE_CHECKING:
    from component.config import XmppSettings
    from component.host import Host
    from component.xmpp import GatewayComponent

log = logging.getLogger(__name__)


class SecretRefused(Exception):
    """The XMPP server refused the component's secret (or does not know its domain)."""


class ComponentLink:
    def __init__(self, component: GatewayComponent, host: Host, xmpp: XmppSettings) -> None:
        self.component = component
        self.host = host
        self.xmpp = xmpp
        self.state = "connecting"
        self.backoff = Backoff(cap_seconds=xmpp.reconnect_max_seconds)
        self._outcome: asyncio.Future[str] | None = None
        self._stopping = False
        self._stream_error = ""
        component.add_event_handler("session_start", self._on_session_start)
        component.add_event_handler("connection_failed", self._on_connection_failed)
        component.add_event_handler("disconnected", self._on_disconnected)
        component.add_event_handler("stream_error", self._on_stream_error)

    async def run(self) -> None:
        """Connect, and reconnect after every loss, until :meth:`stop`."""
        domain = self.component.domain
        while not self._stopping:
            self._outcome = asyncio.get_running_loop().create_future()
            self.state = "connecting"
            self.component.connect(self.xmpp.host, self.xmpp.port)
            outcome = await self._outcome
            if self._stopping:
                return
            if outcome == "refused":
                raise SecretRefused(
                    f"the XMPP server refused the component secret for {domain} "
                    f"({self._stream_error}); check transports' secret and the server's "
                    "component config"
                )
            delay = self.backoff.next_delay()
            self.host.metrics.reconnects.labels(self.host.transport_name).inc()
            log.warning(
                "%s: %s; reconnecting to %s:%s in %.1fs (attempt %d)",
                domain,
                outcome,
                self.xmpp.host,
                self.xmpp.port,
                delay,
                self.backoff.attempts,
            )
            await asyncio.sleep(delay)

    async def stop(self) -> None:
        """Say goodbye to users and close the stream cleanly."""
        self._stopping = True
        if self.state == "connected":
            try:
                await goodbye.say_goodbye(self.component)
            except Exception:  # the database may be what is failing; still close cleanly
                log.exception("%s: could not say goodbye to users", self.component.domain)
            await self.component.disconnect(wait=2.0)
        else:
            self.component.cancel_connection_attempt()
        self._resolve("stopped")

    def leave_rooms(self) -> None:
        """Before the transports stop: every resource in a room is told it is over (332)."""
        if self.state == "connected" and self.component.muc is not None:
            goodbye.leave_rooms(self.component.muc)

    def _resolve(self, outcome: str) -> None:
        if self._outcome is not None and not self._outcome.done():
            self._outcome.set_result(outcome)

    def _on_session_start(self, _event: Any) -> None:
        if self.backoff.attempts:
            log.info(
                "%s: attached again to %s:%s", self.component.domain, self.xmpp.host, self.xmpp.port
            )
        else:
            log.info("%s: attached to %s:%s", self.component.domain, self.xmpp.host, self.xmpp.port)
        self.backoff.reset()
        self.state = "connected"
        self.host.set_connected(True)

    def _on_connection_failed(self, reason: Any) -> None:
        self.component.cancel_connection_attempt()
        self.state = "disconnected"
        self._resolve(f"cannot connect ({reason})")

    def _on_disconnected(self, reason: Any) -> None:
        was_connected = self.state == "connected"
        self.state = "disconnected"
        self.host.set_connected(False)
        self._resolve("connection lost" if was_connected else f"connection closed ({reason})")

    def _on_stream_error(self, error: Any) -> None:
        condition = error["condition"]
        self._stream_error = f"{condition}: {error['text']}" if error["text"] else condition
        if (
            condition in ("not-authorized", "host-unknown", "conflict")
            and self.state != "connected"
        ):
            # conflict: another process holds this component (Prosody allows one connection)
            self._resolve("refused" if condition != "conflict" else f"refused: {condition}")
