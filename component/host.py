"""What the component offers one transport (:class:`transports.base.TransportHost`).

It owns the inbound path back to XMPP: events go straight out while the component is attached
and nothing is waiting, and into the durable inbound queue otherwise, so that order is kept and
nothing is lost while the XMPP server is away.

Every event is made final when it is accepted, before it is stored: its stanza ids chosen
(a copy sent again carries them) and its texts within ``xmpp.max_stanza_bytes``. An event the
server closes the stream on, again and again, is set aside after ``MAX_ATTEMPTS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from component.commands import CommandRunner
from component.confirming_ping import ConfirmingPings
from component.group_commit import Committed, GroupCommit, new_confirm_id, server_of
from component.render import with_stable_ids
from component.set_aside import set_aside_notice
from component.stanza_bound import bound_fields, needs_link, with_link
from component.upload import Uploads
from mappings.outbox import OutboxFull
from transports.base import GatewayError, OutboundMessage
from transports.events import InboundMessage, event_from_dict, event_to_dict
from transports.media import served_media

if TYPE_CHECKING:
    from component.config import Config
    from component.metrics import Metrics
    from component.xmpp import GatewayComponent
    from mappings.inbound import QueuedEvent
    from mappings.store import Store

log = logging.getLogger(__name__)

DRAIN_BATCH = 200
#: Sends of one event that the server refused or closed the stream on, before it is set aside
MAX_ATTEMPTS = 5
#: How long the full text of a cut message stays at its link
FULL_TEXT_TTL_SECONDS = 30 * 24 * 3600.0
LEASE_CHECK_SECONDS = 30.0


class Host:
    """The component side of one transport."""

    def __init__(
        self,
        transport_name: str,
        domain: str,
        config: Config,
        store: Store,
        app: web.Application,
        metrics: Metrics,
    ) -> None:
        self.transport_name = transport_name
        self._domain = domain
        self._config = config
        self._store = store
        self._app = app
        self.metrics = metrics
        self.commands = CommandRunner(self)
        self.component: GatewayComponent | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self.outbox_wakeup = asyncio.Event()
        self._drain_wakeup = asyncio.Event()
        self._connected = False
        self._backlog = True  # until the first drain says otherwise
        self._known_contacts: set[tuple[str, str]] = set()
        #: committed batches waiting to be sent, in commit order, and the task sending them
        self._unsent: deque[Committed] = deque()
        self._sender: asyncio.Task[None] | None = None
        self._delivered = metrics.inbound_delivered.labels(transport_name)
        self._set_aside = metrics.inbound_set_aside.labels(transport_name)
        self._max_stanza = config.xmpp.max_stanza_bytes
        self._media = served_media(self)  # its route must be added before the server starts
        self._uploads: Uploads | None = None  # once attached to the component
        self._writer = GroupCommit(store, transport_name, self._sends_at_once, self._committed)
        self._pings = ConfirmingPings(store, self._writer.confirm_soon)

    # -- TransportHost ---------------------------------------------------------------------------

    @property
    def domain(self) -> str:
        return self._domain

    @property
    def store(self) -> Store:
        return self._store

    @property
    def public_url(self) -> str:
        return self._config.http.public_url

    @property
    def admins(self) -> list[str]:
        return self._config.admins

    @property
    def connected(self) -> bool:
        return self._connected

    def is_allowed(self, user_jid: str) -> bool:
        domain = user_jid.rpartition("@")[2].split("/", 1)[0].lower()
        return domain in self._config.allowed_domains

    def add_route(
        self, method: str, path: str, handler: Callable[..., Awaitable[web.StreamResponse]]
    ) -> None:
        self._app.router.add_route(method, path, handler)

    def count_rejected(self, reason: str) -> None:
        self.metrics.inbound_rejected.labels(self.transport_name, reason).inc()

    def handed_out(self, transport: str, accepted_at: float) -> None:
        self.metrics.handed_out(transport, accepted_at)

    async def deliver(
        self, event: Any, *, dedup_key: str | None = None, durable: bool = False
    ) -> bool:
        started = time.time()
        event = await self._accepted(event)
        if durable or not self._connected or self._backlog:
            at_once = self._sends_at_once()  # else the drainer sends it, and says how late
            if not await self._writer.put(event, dedup_key):
                self.metrics.inbound_duplicates.labels(self.transport_name).inc()
                return False
            if at_once:
                self.metrics.handed_in(self.transport_name, event.kind, started)
            return True
        if dedup_key is not None:
            recorded = await self._store.inbound.put(
                self.transport_name,
                event.user_jid,
                event_to_dict(event),
                dedup_key=dedup_key,
                delivered=True,
            )
            if recorded is None:
                self.metrics.inbound_duplicates.labels(self.transport_name).inc()
                return False
        await self._emit(event)
        self.metrics.handed_in(self.transport_name, event.kind, started)
        return True

    async def _accepted(self, event: Any) -> Any:
        """``event`` as it is stored and sent, every time: its ids chosen, its texts within
        ``xmpp.max_stanza_bytes``, a long body cut with a link to the whole of it, its files
        named and put on the user's server where it takes them (``upload.py``)."""
        if isinstance(event, InboundMessage) and event.oob_urls and self._uploads is not None:
            event = await self._uploads.share(event) if self._connected else event
        event = bound_fields(with_stable_ids(event), self._max_stanza)
        if needs_link(event, self._max_stanza, self._domain):
            full = event.body.encode("utf-8", "replace")
            digest = hashlib.sha256(event.user_jid.encode("utf-8", "replace") + b"\0" + full)
            url = await self._media.put(
                full,
                "text/plain; charset=utf-8",
                owner=self.transport_name,
                ttl_seconds=FULL_TEXT_TTL_SECONDS,
                filename="message.txt",
                source_key=f"full-text:{digest.hexdigest()}",
            )
            event = with_link(event, self._max_stanza, self._domain, url)
        return event

    async def enqueue(self, message: OutboundMessage, data: dict[str, Any] | None = None) -> bool:
        dedup_key = (
            f"{message.user_jid}|{message.contact}|{message.xmpp_id}" if message.xmpp_id else None
        )
        try:
            item = await self._store.outbox.enqueue(
                self.transport_name,
                message.user_jid,
                message.contact,
                {"message": dataclasses.asdict(message), "data": data or {}},
                xmpp_id=message.xmpp_id,
                dedup_key=dedup_key,
            )
        except OutboxFull as full:
            text = f"you have {full.max_waiting} messages waiting here; send more once some left"
            raise GatewayError(text, "resource-constraint", "wait") from None
        self.outbox_wakeup.set()
        return item is not None

    def attach(self, component: GatewayComponent) -> None:
        """Bind the host to its component and catch the answers that confirm drained batches."""
        self.component = component
        component.add_filter("in", self._pings.on_answer)
        self._uploads = Uploads(
            component, self._media.files, self.public_url, self._config.xmpp.upload_service
        )

    def reconfigure(self, config: Config, domain: str) -> None:
        """A reload (SIGHUP): admins and allowed domains from ``config`` from now on, and the
        component's domain (before a component with a new jid is attached)."""
        self._config = config
        self._domain = domain

    # -- connection state -------------------------------------------------------------------------

    def set_connected(self, connected: bool) -> None:
        self._connected = connected
        self.metrics.component_connected.labels(self.transport_name).set(1 if connected else 0)
        if connected:
            self._drain_wakeup.set()

    # -- the way out to XMPP ---------------------------------------------------------------------

    async def _emit(self, event: Any) -> None:
        assert self.component is not None
        if (
            isinstance(event, InboundMessage)
            and event.contact  # none: a word from the gateway itself, already in the roster
            and event.message_type in ("chat", "normal")
        ):
            await self.ensure_contact(event.user_jid, event.contact, event.nick)
        self.component.render(event)
        self._delivered.inc()

    async def ensure_contact(self, user_jid: str, address: str, nick: str | None) -> None:
        """Put a contact the user talks with into their roster, once (see introduce_contact)."""
        assert self.component is not None
        if not self.component.network.roster_contacts:
            return
        key = (user_jid.split("/", 1)[0], address)
        if key not in self._known_contacts:
            await self.component.introduce_contact(key[0], address, nick)
            self._known_contacts.add(key)

    def _sends_at_once(self) -> bool:
        """Whether stored events may go out at once: attached, and nothing queued before."""
        return self._connected and not self._backlog

    def _committed(self, committed: Committed) -> None:
        """A batch is stored: wake the drainer for it, or send it (stored already claimed)."""
        if not committed.confirm_ids:
            self._backlog = True
            self._drain_wakeup.set()
            return
        self._unsent.append(committed)
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_committed())

    async def _send_committed(self) -> None:
        """Send committed batches in order, each followed by the pings that confirm it."""
        try:
            while self._unsent:
                committed = self._unsent.popleft()
                try:
                    if not self._connected:
                        raise ConnectionError("detached before the batch could be sent")
                    await self._emit_all(committed.events)
                except Exception:
                    log.exception(
                        "%s: sending stored events failed; they wait in the queue", self._domain
                    )
                    for confirm_id in committed.confirm_ids.values():
                        await self._give_back(confirm_id, attempted=False)
                    continue
                for server, confirm_id in committed.confirm_ids.items():
                    task = asyncio.create_task(self._confirm_sent(server, confirm_id))
                    self._background.add(task)
                    task.add_done_callback(self._background.discard)
        finally:
            self._sender = None

    async def _confirm_sent(self, server: str, confirm_id: str) -> None:
        if not await self._ping_and_wait(server, confirm_id):
            await self._give_back(confirm_id)

    async def _give_back(self, confirm_id: str, *, attempted: bool = True) -> None:
        """Unconfirmed events go back to the queue, where the drainer sends them again.

        Events that were sent count an attempt: the server may have closed the stream on one
        of them. One that reaches ``MAX_ATTEMPTS`` is set aside, and its user is told.
        """
        if not attempted:
            await self._store.inbound.release(confirm_id)
        else:
            for queued in await self._store.inbound.fail(confirm_id, MAX_ATTEMPTS):
                self._set_aside.inc()
                log.warning(
                    "%s: inbound event %d for %s failed %d times; set aside (portway queue list)",
                    self._domain,
                    queued.id,
                    queued.user_jid,
                    queued.attempts,
                )
                notice = set_aside_notice(queued, self._contact_jid)
                if notice is not None:
                    await self._writer.put(notice, None)
        self._backlog = True
        self._drain_wakeup.set()

    def _contact_jid(self, address: str) -> str:
        assert self.component is not None
        return str(self.component.contact_jid(address))

    async def _emit_all(self, events: list[Any]) -> None:
        for event in events:
            try:
                await self._emit(event)
            except (AttributeError, KeyError, TypeError, ValueError, GatewayError):
                # An event that cannot be rendered (malformed, of an unknown kind, or hitting
                # a bug) must not hold up everything behind it, retried forever.
                log.exception("%s: dropping inbound event %r", self._domain, event)
                self.metrics.inbound_rejected.labels(self.transport_name, "unrenderable").inc()

    async def run_drainer(self) -> None:
        """Deliver the inbound queue in order whenever the component is attached."""
        while True:
            # Also wake up now and then: events leased by a process that died become ours.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drain_wakeup.wait(), LEASE_CHECK_SECONDS)
            self._drain_wakeup.clear()
            try:
                await self._drain()
            except Exception:
                log.exception("%s: delivering the inbound queue failed; will retry", self._domain)
                await asyncio.sleep(1)
                self._drain_wakeup.set()

    async def _drain(self) -> None:
        inbound = self._store.inbound
        while self._connected:
            batch = await inbound.claim(self.transport_name, DRAIN_BATCH)
            if not batch:
                self._backlog = False
                # An event may have been queued between the claim and the flag.
                if await inbound.backlog(self.transport_name):
                    self._backlog = True
                    continue
                return
            events = []
            for queued in batch:
                try:
                    events.append(event_from_dict(queued.event))
                except (KeyError, TypeError, ValueError):
                    log.exception("%s: dropping inbound event %s", self._domain, queued.id)
                    self.metrics.inbound_rejected.labels(self.transport_name, "unrenderable").inc()
            await self._emit_all(events)
            for queued in batch:  # a malformed one was counted as unrenderable above
                kind = queued.event.get("kind", "")
                self.metrics.handed_in(self.transport_name, kind, queued.created_at)
            if not await self._confirm_batch(batch):
                return  # what is unconfirmed is claimable again: sent again, not lost

    async def _confirm_batch(self, batch: list[QueuedEvent]) -> bool:
        """Ping the users' servers after the batch: a stream is processed in order, so the
        answer means the server has taken every stanza before it.

        The ping's id is stored on the batch's rows first, because with several connections
        for one component (ejabberd) the server may hand the answer to another process; that
        process then confirms the rows (confirming_ping.py).
        """
        inbound = self._store.inbound
        by_domain: dict[str, list[int]] = defaultdict(list)
        for queued in batch:
            by_domain[server_of(queued.user_jid)].append(queued.id)
        confirmed = True
        for domain, ids in by_domain.items():
            confirm_id = new_confirm_id()
            await inbound.await_confirmation(ids, confirm_id)
            if not await self._ping_and_wait(domain, confirm_id):
                await self._give_back(confirm_id)
                confirmed = False
        return confirmed

    async def _ping_and_wait(self, domain: str, confirm_id: str) -> bool:
        assert self.component is not None
        return await self._pings.ping_and_wait(
            self.component, self._domain, domain, confirm_id, lambda: self._connected
        )
