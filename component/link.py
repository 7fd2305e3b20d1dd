"""Keeps one component attached to the XMPP server, across its restarts and outages.

slixmpp retries on its own, but without jitter and logging every try; this supervisor owns the
policy instead: capped exponential backoff with jitter, and a refusal (a wrong secret, a
component the server does not know) treated as fatal, since retrying it can only fill the
server's log. An outage is logged when it starts and when it ends, not at every attempt: a
server away for a night would otherwise write hundreds of lines that say nothing new.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from slixmpp.xmlstream import StanzaBase

from component import goodbye
from component.backoff import Backoff

if TYPE_CHECKING:
    from component.config import XmppSettings
    from component.host import Host
    from component.xmpp import GatewayComponent

log = logging.getLogger(__name__)


class AttachRefused(Exception):
    """The XMPP server refused the component: its secret, or its domain, which it does not
    know; the message says which, and what to fix."""


def refusal(domain: str, condition: str, text: str) -> str:
    """What the admin is told when the server refuses the component, by its stream error.

    Prosody answers ``host-unknown`` when no ``Component`` of that name is declared, before
    any secret is checked; blaming the secret then sends the admin to the wrong file.
    """
    if condition == "host-unknown":
        return (
            f"host-unknown: the XMPP server has no component {domain}; declare it in the "
            f'server\'s config (Prosody: Component "{domain}" with a component_secret; '
            "ejabberd: a listen entry for ejabberd_service) or fix this transport's jid"
        )
    said = f"{condition}: {text}" if text else condition
    return (
        f"the XMPP server refused the component secret for {domain} ({said}); check "
        "transports' secret and the server's component config"
    )


class ComponentLink:
    def __init__(self, component: GatewayComponent, host: Host, xmpp: XmppSettings) -> None:
        self.component = component
        self.host = host
        self.xmpp = xmpp
        self.state = "connecting"
        #: set once the component is attached, for readiness (sd_notify's READY=1)
        self.attached = asyncio.Event()
        self.backoff = Backoff(cap_seconds=xmpp.reconnect_max_seconds)
        self._outcome: asyncio.Future[str] | None = None
        self._stopping = False
        self._refused: tuple[str, str] | None = None
        self._outage_since: float | None = None
        component.add_event_handler("session_start", self._on_session_start)
        component.add_event_handler("connection_failed", self._on_connection_failed)
        component.add_event_handler("disconnected", self._on_disconnected)
        component.add_event_handler("stream_error", self._on_stream_error)
        # Last of the outgoing filters, run just before the write (see _drop_when_detached).
        component.add_filter("out_sync", self._drop_when_detached)

    async def run(self) -> None:
        """Connect, and reconnect after every loss, until :meth:`stop`."""
        while not self._stopping:
            self._outcome = asyncio.get_running_loop().create_future()
            self.state = "connecting"
            self.component.connect(self.xmpp.host, self.xmpp.port)
            outcome = await self._outcome
            if self._stopping:
                return
            if self._refused is not None:
                raise AttachRefused(refusal(self.component.domain, *self._refused))
            delay = self.backoff.next_delay()
            self.host.metrics.reconnects.labels(self.host.transport_name).inc()
            self._note_attempt(outcome, delay)
            await asyncio.sleep(delay)

    def begin_stop(self) -> None:
        """From now on a lost stream is the shutdown's doing: no reconnect, nothing logged."""
        self._stopping = True

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

    def _note_attempt(self, outcome: str, delay: float) -> None:
        """The first failure of an outage at WARNING, the attempts after it at DEBUG."""
        where = f"{self.xmpp.host}:{self.xmpp.port}"
        domain = self.component.domain
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            log.warning(
                "%s: %s; reconnecting to %s (first try in %.1fs, then at most every %.0fs; "
                "the next line says when it is back)",
                domain,
                outcome,
                where,
                delay,
                self.xmpp.reconnect_max_seconds,
            )
        else:
            log.debug("%s: %s; attempt %d in %.1fs", domain, outcome, self.backoff.attempts, delay)

    def _resolve(self, outcome: str) -> None:
        if self._outcome is not None and not self._outcome.done():
            self._outcome.set_result(outcome)

    def _on_session_start(self, _event: Any) -> None:
        where = f"{self.xmpp.host}:{self.xmpp.port}"
        if self._outage_since is not None:
            log.info(
                "%s: attached again to %s after %d attempts in %.0fs",
                self.component.domain,
                where,
                self.backoff.attempts,
                time.monotonic() - self._outage_since,
            )
            self._outage_since = None
        else:
            log.info("%s: attached to %s", self.component.domain, where)
        self.backoff.reset()
        self.state = "connected"
        self.host.set_connected(True)
        self.attached.set()

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
        if condition in ("not-authorized", "host-unknown") and self.state != "connected":
            self._refused = (condition, error["text"])
            self._resolve("refused")
        elif condition == "conflict" and self.state != "connected":
            # another process holds this component (Prosody allows one connection): retry
            self._resolve(f"refused: {condition}")

    def _drop_when_detached(self, stanza: StanzaBase) -> StanzaBase | None:
        """A stanza whose stream closed while it waited in slixmpp's send queue is dropped, as
        a lost socket would drop it, instead of raising NotConnectedError in slixmpp's send
        task (an ERROR with a traceback, at nearly every Ctrl-C: Prosody closes the stream
        while the goodbyes are on their way). What must not be lost is in the durable
        queues, and is sent again after the reconnect."""
        if self.component.transport is None:
            log.debug("%s: stream closed; not sent: %s", self.component.domain, stanza.name)
            return None
        return stanza
