"""What the component offers one transport (:class:`transports.base.TransportHost`).

It owns the inbound path back to XMPP: events go straight out while the component is attached
and nothing is waiting, and into the durable inbound queue otherwise, so that order is kept and
nothing is lost while the XMPP server is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from slixmpp import JID
from slixmpp.exceptions import IqError, IqTimeout

from component.commands import CommandRunner
from transports.base import InboundMessage, OutboundMessage, event_from_dict, event_to_dict

if TYPE_CHECKING:
    from component.config import Config
    from component.metrics import Metrics
    from component.xmpp import GatewayComponent
    from mappings.store import Store

log = logging.getLogger(__name__)

DRAIN_BATCH = 200
LEASE_CHECK_SECONDS = 30.0


class GroupCommit:
    """Stores concurrent durable deliveries in one transaction.

    Each inbound HTTP request or SMTP session must wait until its message is stored before it
    answers; one transaction each made the database the bottleneck. While one batch commits,
    the next gathers, so under load a commit carries many messages and alone it carries one.
    """

    def __init__(self, store: Store, transport_name: str) -> None:
        self._store = store
        self._transport = transport_name
        self._pending: list[tuple[str, dict[str, Any], str | None, asyncio.Future[bool]]]
        self._pending = []
        self._flushing = False
        self._task: asyncio.Task[None] | None = None

    async def put(self, user_jid: str, event: dict[str, Any], dedup_key: str | None) -> bool:
        """Store one event; ``False`` if its dedup key was seen before."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((user_jid, event, dedup_key, future))
        if not self._flushing:
            self._flushing = True
            self._task = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    stored = await self._store.inbound.put_many(
                        self._transport, [(user, event, key) for user, event, key, _ in batch]
                    )
                except Exception as exc:
                    for *_, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (*_, future), was_stored in zip(batch, stored, strict=True):
                    if not future.done():
                        future.set_result(was_stored)
        finally:
            self._flushing = False


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
        self.outbox_wakeup = asyncio.Event()
        self._drain_wakeup = asyncio.Event()
        self._connected = False
        self._backlog = True  # until the first drain says otherwise
        self._known_contacts: set[tuple[str, str]] = set()
        self._writer = GroupCommit(store, transport_name)

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
            if not await self._writer.put(event.user_jid, event_to_dict(event), dedup_key):
                self.metrics.inbound_duplicates.labels(self.transport_name).inc()
                return False
            self._backlog = True
            self._drain_wakeup.set()
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
        self.metrics.inbound_delivered.labels(self.transport_name).inc()

    async def ensure_contact(self, user_jid: str, address: str, nick: str | None) -> None:
        """Put a contact the user talks with into their roster, once (see introduce_contact)."""
        assert self.component is not None
        if not self.component.network.roster_contacts:
            return
        key = (user_jid.split("/", 1)[0], address)
        if key not in self._known_contacts:
            await self.component.introduce_contact(key[0], address, nick)
            self._known_contacts.add(key)

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
            for queued in batch:
                try:
                    await self._emit(event_from_dict(queued.event))
                except (KeyError, TypeError, ValueError):
                    # A malformed or unknown event must not hold up everything behind it.
                    log.exception("%s: dropping inbound event %s", self._domain, queued.id)
                    self.metrics.inbound_rejected.labels(self.transport_name, "unrenderable").inc()
            ids = [queued.id for queued in batch]
            if not self._connected or not await self._server_has_processed(
                {q.user_jid for q in batch}
            ):
                await inbound.release(ids)  # sent again after the reconnect rather than lost
                return
            await inbound.mark_delivered(ids)

    async def _server_has_processed(self, users: set[str]) -> bool:
        """Ping the users' servers: a stream is processed in order, so a pong after our
        stanzas means the server has taken them. Only then are they marked delivered."""
        assert self.component is not None
        domains = {user.rpartition("@")[2].split("/", 1)[0] for user in users}
        for domain in domains:
            try:
                await self.component.plugin["xep_0199"].send_ping(
                    JID(domain), ifrom=JID(self._domain), timeout=15
                )
            except IqError:
                pass  # an error reply still means the server processed what came before
            except IqTimeout:
                log.warning("%s: no answer from %s; keeping the batch queued", self._domain, domain)
                return False
        return True
