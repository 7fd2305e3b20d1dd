"""What the component offers one transport (:class:`transports.base.TransportHost`).

It owns the inbound path back to XMPP: events go straight out while the component is attached
and nothing is waiting, and into the durable inbound queue otherwise, so that order is kept and
nothing is lost while the XMPP server is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import uuid
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web
from slixmpp import JID, Iq
from slixmpp.xmlstream import StanzaBase

from component.commands import CommandRunner
from transports.base import InboundMessage, OutboundMessage, event_from_dict, event_to_dict

if TYPE_CHECKING:
    from component.config import Config
    from component.metrics import Metrics
    from component.xmpp import GatewayComponent
    from mappings.inbound import QueuedEvent
    from mappings.store import Store

log = logging.getLogger(__name__)

DRAIN_BATCH = 200
LEASE_CHECK_SECONDS = 30.0
CONFIRM_PREFIX = "drain-"
CONFIRM_TIMEOUT_SECONDS = 15.0
CONFIRM_POLL_SECONDS = 0.25


@dataclass
class Committed:
    """What one group commit stored: the new events, in order, and how they were stored."""

    events: list[Any]
    #: user's server → id of the ping that confirms the events sent there; empty when the
    #: events were queued for the drainer instead of being sent at once
    confirm_ids: dict[str, str]


class GroupCommit:
    """Stores concurrent durable deliveries in one transaction.

    Each inbound HTTP request or SMTP session must wait until its message is stored before it
    answers; one transaction each made the database the bottleneck. While one batch commits,
    the next gathers, so under load a commit carries many messages and alone it carries one.

    When ``at_once()`` says the events can go straight out (attached, nothing queued before
    them), they are stored already claimed, and ``after_commit`` has them sent from memory;
    the drainer's claim would otherwise read back what was just written. Batches are handed
    to ``after_commit`` in commit order, which is the order they are sent in; it must not
    wait, so that the next batch commits while this one is being sent.
    """

    def __init__(
        self,
        store: Store,
        transport_name: str,
        at_once: Callable[[], bool],
        after_commit: Callable[[Committed], None],
    ) -> None:
        self._store = store
        self._transport = transport_name
        self._at_once = at_once
        self._after_commit = after_commit
        self._pending: list[tuple[Any, str | None, asyncio.Future[bool]]] = []
        self._confirmed: list[str] = []
        self._flushing = False
        self._task: asyncio.Task[None] | None = None

    async def put(self, event: Any, dedup_key: str | None) -> bool:
        """Store one event; ``False`` if its dedup key was seen before."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((event, dedup_key, future))
        self._start()
        return await future

    def confirm_soon(self, confirm_id: str) -> None:
        """Mark the events of an answered ping delivered, with the next commit.

        Nobody waits for this write: until it is done the events stay claimed, so nothing
        sends them again unless the process dies first (then they go once more, not never).
        """
        self._confirmed.append(confirm_id)
        self._start()

    def _start(self) -> None:
        if not self._flushing:
            self._flushing = True
            self._task = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self._pending or self._confirmed:
                batch, self._pending = self._pending, []
                confirmed, self._confirmed = self._confirmed, []
                confirm_ids: dict[str, str] = {}
                row_confirm_ids: list[str] | None = None
                if self._at_once():
                    row_confirm_ids = [
                        confirm_ids.setdefault(server_of(event.user_jid), new_confirm_id())
                        for event, _, _ in batch
                    ]
                try:
                    stored = await self._store.inbound.put_many(
                        self._transport,
                        [(event.user_jid, event_to_dict(event), key) for event, key, _ in batch],
                        confirm_ids=row_confirm_ids,
                        confirmed=confirmed,
                    )
                except Exception as exc:
                    if confirmed:
                        log.warning(
                            "could not mark %d delivered batches; they will be sent again: %s",
                            len(confirmed),
                            exc,
                        )
                    for *_, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (*_, future), was_stored in zip(batch, stored, strict=True):
                    if not future.done():
                        future.set_result(was_stored)
                events = [event for (event, _, _), new in zip(batch, stored, strict=True) if new]
                if events:
                    sent_to = {server_of(event.user_jid) for event in events}
                    self._after_commit(
                        Committed(events, {s: c for s, c in confirm_ids.items() if s in sent_to})
                    )
        finally:
            self._flushing = False


def server_of(jid: str) -> str:
    """The domain of a (bare or full) JID: where the confirming ping goes."""
    return jid.rpartition("@")[2].split("/", 1)[0]


_PROCESS_TOKEN = uuid.uuid4().hex
_confirm_numbers = itertools.count()


def new_confirm_id() -> str:
    """An id no other process and no earlier run uses (one random token, then a counter)."""
    return f"{CONFIRM_PREFIX}{_PROCESS_TOKEN}-{next(_confirm_numbers)}"


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
        self._confirmations: dict[str, asyncio.Future[None]] = {}
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
        self._writer = GroupCommit(store, transport_name, self._sends_at_once, self._committed)

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

    async def deliver(
        self, event: Any, *, dedup_key: str | None = None, durable: bool = False
    ) -> bool:
        if durable or not self._connected or self._backlog:
            if not await self._writer.put(event, dedup_key):
                self.metrics.inbound_duplicates.labels(self.transport_name).inc()
                return False
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
        return True

    async def enqueue(self, message: OutboundMessage, data: dict[str, Any] | None = None) -> bool:
        dedup_key = (
            f"{message.user_jid}|{message.contact}|{message.xmpp_id}" if message.xmpp_id else None
        )
        item = await self._store.outbox.enqueue(
            self.transport_name,
            message.user_jid,
            message.contact,
            {"message": dataclasses.asdict(message), "data": data or {}},
            xmpp_id=message.xmpp_id,
            dedup_key=dedup_key,
        )
        self.outbox_wakeup.set()
        return item is not None

    def attach(self, component: GatewayComponent) -> None:
        """Bind the host to its component and catch the answers that confirm drained batches."""
        self.component = component
        component.add_filter("in", self._on_confirmation)

    # -- connection state -------------------------------------------------------------------------

    def set_connected(self, connected: bool) -> None:
        self._connected = connected
        self.metrics.component_connected.labels(self.transport_name).set(1 if connected else 0)
        if connected:
            self._drain_wakeup.set()

    # -- the way out to XMPP ---------------------------------------------------------------------

    async def _emit(self, event: Any) -> None:
        assert self.component is not None
        if isinstance(event, InboundMessage) and event.message_type in ("chat", "normal"):
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
                        await self._give_back(confirm_id)
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

    async def _give_back(self, confirm_id: str) -> None:
        """Unconfirmed events go back to the queue, where the drainer sends them again."""
        await self._store.inbound.release(confirm_id)
        self._backlog = True
        self._drain_wakeup.set()

    async def _emit_all(self, events: list[Any]) -> None:
        for event in events:
            try:
                await self._emit(event)
            except (AttributeError, KeyError, TypeError, ValueError):
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
            if not await self._confirm_batch(batch):
                return  # what is unconfirmed is claimable again: sent again, not lost

    async def _confirm_batch(self, batch: list[QueuedEvent]) -> bool:
        """Ping the users' servers after the batch: a stream is processed in order, so the
        answer means the server has taken every stanza before it.

        The ping's id is stored on the batch's rows first, because with several connections
        for one component (ejabberd) the server may hand the answer to another process; that
        process then confirms the rows (see :meth:`_on_confirmation`).
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
                await inbound.release(confirm_id)
                confirmed = False
        return confirmed

    async def _ping_and_wait(self, domain: str, confirm_id: str) -> bool:
        assert self.component is not None
        if not self._connected:
            return False
        answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._confirmations[confirm_id] = answered
        ping = self.component.make_iq_get(ito=JID(domain), ifrom=JID(self._domain))
        ping["id"] = confirm_id
        ping.enable("ping")
        self.component.send(ping)  # no waiter of slixmpp's: the answer may reach another process
        deadline = asyncio.get_running_loop().time() + CONFIRM_TIMEOUT_SECONDS
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(answered), CONFIRM_POLL_SECONDS)
                if answered.done():
                    self._writer.confirm_soon(confirm_id)
                    return True
                if not await self._store.inbound.unconfirmed(confirm_id):
                    return True  # another process got the answer and confirmed
                if asyncio.get_running_loop().time() > deadline or not self._connected:
                    log.warning(
                        "%s: no answer from %s; the batch will be sent again", self._domain, domain
                    )
                    return False
        finally:
            self._confirmations.pop(confirm_id, None)

    def _on_confirmation(self, stanza: StanzaBase) -> StanzaBase | None:
        """Incoming filter: answers to drain pings, ours or another process's."""
        if (
            not isinstance(stanza, Iq)
            or stanza["type"] not in ("result", "error")
            or not stanza["id"].startswith(CONFIRM_PREFIX)
        ):
            return stanza
        waiting = self._confirmations.get(stanza["id"])
        if waiting is not None:
            if not waiting.done():
                waiting.set_result(None)
        else:
            self._writer.confirm_soon(stanza["id"])
        return None  # an error answer confirms too: the server processed what came before
