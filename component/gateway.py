"""The process: one component per enabled transport, one store, one HTTP server, one loop."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal

from aiohttp import web

from component.config import Config
from component.host import Host
from component.http import make_app, serve
from component.link import ComponentLink, SecretRefused
from component.metrics import Metrics
from component.outbox_worker import OutboxWorker
from component.xmpp import GatewayComponent
from mappings.store import Store
from transports.base import Transport

log = logging.getLogger(__name__)

# section name -> "module:Class"; imported only when the section is present
TRANSPORT_CLASSES = {
    "irc": "transports.irc:IrcTransport",
    "sms": "transports.sms:SmsTransport",
    "email": "transports.email:EmailTransport",
    "webhook": "transports.webhook:WebhookTransport",
}

#: How often delivered inbound events past ``xmpp.inbound_retention_hours`` are forgotten
PRUNE_EVERY_SECONDS = 3600.0


def transport_class(name: str) -> type[Transport]:
    module_name, _, class_name = TRANSPORT_CLASSES[name].partition(":")
    cls: type[Transport] = getattr(importlib.import_module(module_name), class_name)
    return cls


async def forget_old_dedup_keys(
    store: Store,
    older_than_seconds: float,
    every_seconds: float = PRUNE_EVERY_SECONDS,
) -> None:
    """Prune delivered inbound events now and then: at start only, a gateway that runs for
    months would keep every dedup key it ever saw."""
    while True:
        try:
            pruned = await store.inbound.prune(older_than_seconds)
            if pruned:
                log.info("forgot %d delivered inbound events past the dedup horizon", pruned)
        except Exception:  # the database may be away for a while; the next round tries again
            log.exception("pruning the inbound queue failed")
        await asyncio.sleep(every_seconds)


class Gateway:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.metrics = Metrics()
        self.links: dict[str, ComponentLink] = {}
        self.transports: list[Transport] = []
        self._stop = asyncio.Event()

    def health(self) -> dict[str, str]:
        return {link.component.domain: link.state for link in self.links.values()}

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT (exit 0) or a fatal error such as a refused secret (1)."""
        store = await Store.open(self.config.database)
        app = make_app(self.health, self.metrics, store)
        tasks: list[asyncio.Task[None]] = []
        runner: web.AppRunner | None = None
        exit_code = 0
        try:
            retention = self.config.xmpp.inbound_retention_hours * 3600
            tasks.append(
                asyncio.create_task(forget_old_dedup_keys(store, retention), name="prune-inbound")
            )
            if not store.is_postgres:
                # SQLite serves one process: leases found at start are our own, left by a
                # crash, and waiting them out would only delay delivery. (On PostgreSQL other
                # processes may hold live leases; theirs run out on their own.)
                released = (
                    await store.outbox.release_leases() + await store.inbound.release_leases()
                )
                if released:
                    log.info("resuming %d deliveries interrupted by the last stop", released)
            for name, settings in self.config.transports.enabled().items():
                host = Host(name, settings.jid, self.config, store, app, self.metrics)  # type: ignore[attr-defined]
                transport = transport_class(name)(settings, host)  # type: ignore[arg-type]
                component = GatewayComponent(
                    transport,
                    host,
                    settings.secret.get_secret_value(),  # type: ignore[attr-defined]
                )
                host.attach(component)
                self.links[name] = ComponentLink(component, host, self.config.xmpp)
                self.transports.append(transport)
                try:
                    await transport.prepare()
                    await transport.start()
                except OSError as exc:  # typically a listen address already in use
                    log.critical("cannot start the %s transport: %s", name, exc)
                    return 1
                tasks.append(asyncio.create_task(host.run_drainer(), name=f"{name}-drainer"))
                tasks.append(
                    asyncio.create_task(OutboxWorker(transport, host).run(), name=f"{name}-outbox")
                )
            listen_host, listen_port = self.config.http.listen
            try:
                runner = await serve(app, listen_host, listen_port)
            except OSError as exc:
                log.critical("cannot listen for HTTP on %s:%s: %s", listen_host, listen_port, exc)
                return 1
            log.info("HTTP on %s:%s", listen_host, listen_port)
            link_tasks = [
                asyncio.create_task(link.run(), name=f"{name}-link")
                for name, link in self.links.items()
            ]
            tasks.extend(link_tasks)
            self._install_signal_handlers()
            stop = asyncio.create_task(self._stop.wait())
            done, _ = await asyncio.wait([stop, *link_tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stop and task.exception() is not None:
                    error = task.exception()
                    if isinstance(error, SecretRefused):
                        log.critical("%s", error)
                    else:
                        log.critical("a component stopped: %r", error)
                    exit_code = 1
            stop.cancel()
        finally:
            await self._shutdown(tasks, runner, store)
        return exit_code

    def request_stop(self) -> None:
        self._stop.set()

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, self.request_stop)

    async def _shutdown(
        self, tasks: list[asyncio.Task[None]], runner: web.AppRunner | None, store: Store
    ) -> None:
        log.info("shutting down")
        # Rooms first: each resource in one is told the service is going (332), and what the
        # transports say of rooms while closing is dropped. Then transports: what else they
        # say while closing (a connection's end) still has an attached stream to go out on.
        # Then each link says goodbye for contacts and the gateway, and closes.
        for link in self.links.values():
            try:
                link.leave_rooms()
            except Exception:
                log.exception("%s: could not close rooms", link.component.domain)
        for transport in self.transports:
            try:
                await transport.stop()
            except Exception:
                log.exception("%s: error while stopping", transport.name)
        for link in self.links.values():
            with contextlib.suppress(Exception):
                await link.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if runner is not None:
            await runner.cleanup()
        await store.close()
