"""The process: one component per enabled transport, one store, one HTTP server, one loop.

Signals: SIGTERM and SIGINT stop it cleanly (exit 0); SIGHUP reloads the config file without
dropping connections (see :mod:`component.reload`). Under systemd it says when it is ready,
reloading and stopping, and feeds the watchdog (:mod:`component.sd_notify`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import signal
from pathlib import Path
from typing import Any

from aiohttp import web

from component.config import Config, ConfigError, load_config
from component.host import Host
from component.http import make_app, serve
from component.link import AttachRefused, ComponentLink
from component.logs import reconfigure_logging
from component.metrics import Metrics
from component.outbox_worker import OutboxWorker
from component.reload import Reloadable, plan_reload, running_config
from component.retention import keep_pruning
from component.sd_notify import Notifier
from component.xmpp import GatewayComponent
from mappings.store import Store
from transports.base import Transport
from transports.settings import TransportSettings

log = logging.getLogger(__name__)

# section name -> "module:Class"; imported only when the section is present
TRANSPORT_CLASSES = {
    "irc": "transports.irc:IrcTransport",
    "sms": "transports.sms:SmsTransport",
    "email": "transports.email:EmailTransport",
    "webhook": "transports.webhook:WebhookTransport",
}

#: How often readiness looks again at which components are attached (a reload may swap one)
READY_CHECK_SECONDS = 1.0
#: How long a reload waits for a re-attached component to be accepted or refused; past it,
#: the component keeps trying alone, as at start
REATTACH_WAIT_SECONDS = 15.0


def transport_class(name: str) -> type[Transport]:
    module_name, _, class_name = TRANSPORT_CLASSES[name].partition(":")
    cls: type[Transport] = getattr(importlib.import_module(module_name), class_name)
    return cls


class Gateway:
    def __init__(self, config: Config, config_path: str | Path | None = None) -> None:
        self.config = config
        #: read again on SIGHUP; none: nothing to reload from
        self.config_path = config_path
        self.hosts: dict[str, Host] = {}
        self.transports: dict[str, Transport] = {}
        self.metrics = Metrics(self.transports.values())  # read at each scrape: reloads count
        self.links: dict[str, ComponentLink] = {}
        self.notifier = Notifier()
        self._link_tasks: dict[str, asyncio.Task[None]] = {}
        self._stop = asyncio.Event()
        self._exit_code = 0
        self._reloading = asyncio.Lock()
        #: set by a reload that changes ``retention``: the pruning round starts at once
        self._retention_changed = asyncio.Event()
        self._background: set[asyncio.Task[Any]] = set()

    def health(self) -> dict[str, str]:
        return {link.component.domain: link.state for link in self.links.values()}

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT (exit 0) or a fatal error such as a refused secret (1)."""
        # First of all: a Ctrl-C during the start must stop cleanly too, not raise
        # KeyboardInterrupt through whatever was starting.
        self._install_signal_handlers()
        store = await Store.open(self.config.database)
        app = make_app(self.health, self.metrics, store)
        tasks: list[asyncio.Task[None]] = []
        runner: web.AppRunner | None = None
        try:
            tasks.append(
                asyncio.create_task(
                    keep_pruning(
                        store, lambda: self.config.retention, self.metrics, self._retention_changed
                    ),
                    name="retention",
                )
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
                self.hosts[name], self.transports[name] = host, transport
                self.links[name] = self._link(name)
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
            freeze_start_up()
            for name in self.links:
                self._start_link(name)
            tasks.append(asyncio.create_task(self.notifier.keep_watchdog(), name="watchdog"))
            tasks.append(asyncio.create_task(self._ready_once_attached(), name="readiness"))
            await self._stop.wait()
        finally:
            await self._shutdown(tasks, runner, store)
        return self._exit_code

    def request_stop(self) -> None:
        self._stop.set()

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError):
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self.request_stop)
            loop.add_signal_handler(signal.SIGHUP, self._on_sighup)

    # -- components -------------------------------------------------------------------------------

    def _link(self, name: str) -> ComponentLink:
        """A new component for the transport, as its settings say now, and its link."""
        transport, host = self.transports[name], self.hosts[name]
        secret = transport.settings.secret.get_secret_value()
        component = GatewayComponent(transport, host, secret)
        host.attach(component)
        return ComponentLink(component, host, self.config.xmpp)

    def _start_link(self, name: str) -> None:
        task = asyncio.create_task(self.links[name].run(), name=f"{name}-link")
        task.add_done_callback(self._link_ended)
        self._link_tasks[name] = task

    def _link_ended(self, task: asyncio.Task[None]) -> None:
        """A link ends by itself only when it cannot go on: the whole gateway stops."""
        if task.cancelled() or task.exception() is None:
            return  # stopped: the shutdown, or a re-attach
        error = task.exception()
        if isinstance(error, AttachRefused):
            log.critical("%s", error)
        else:
            log.critical("a component stopped: %r", error)
        self._exit_code = 1
        self._stop.set()

    async def _ready_once_attached(self) -> None:
        """READY=1 once every component is attached: a unit ordered after Portway would
        otherwise start against a gateway that cannot route anything yet."""
        while True:
            waiting = [link for link in self.links.values() if not link.attached.is_set()]
            if not waiting:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiting[0].attached.wait(), READY_CHECK_SECONDS)
        self.notifier.ready(self._status())

    def _status(self) -> str:
        return "attached: " + ", ".join(link.component.domain for link in self.links.values())

    # -- reload -----------------------------------------------------------------------------------

    def _on_sighup(self) -> None:
        if self._stop.is_set():
            return
        if not self._link_tasks:
            log.warning("SIGHUP ignored: still starting; send it again once started")
            return
        task = asyncio.create_task(self.reload(), name="reload")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def reload(self) -> None:
        """Read the config file again and apply it; one reload at a time, in signal order."""
        async with self._reloading:
            self.notifier.reloading()
            try:
                await self._reload()
            except Exception:  # the old config keeps running; the next SIGHUP tries again
                log.exception("config reload failed")
            if not self._stop.is_set():  # a stop meanwhile has said STOPPING=1: not ready
                self.notifier.ready(self._status())

    async def _reload(self) -> None:
        if self.config_path is None:
            log.error("SIGHUP ignored: this gateway was started without a config file")
            return
        try:
            new = await asyncio.to_thread(load_config, self.config_path)
        except ConfigError as error:
            log.error("config not reloaded, the running one stays: %s", "; ".join(error.problems))
            return
        reconfigure_logging(new.log_level, new.secrets())
        plan = plan_reload(self.config, new)
        new = running_config(self.config, new)
        notes = []
        for name in plan.reattach:
            kept = await self._reattach(name, new)
            if kept is None:
                notes.append(f"re-attached {name}")
            else:  # refused: what runs is the old identity with the new rest
                transports = new.transports.model_copy(update={name: kept})
                new = new.model_copy(update={"transports": transports})
        sections = new.transports.enabled()
        at_restart = list(plan.at_restart)
        for name in plan.changed:
            transport = self.transports[name]
            if isinstance(transport, Reloadable):
                transport.reload(sections[name])
            else:
                at_restart.append(f"transports.{name}")
        for host in self.hosts.values():
            host.reconfigure(new, host.domain)
        if new.retention != self.config.retention:
            self._retention_changed.set()
        self.config = new
        if at_restart:
            notes.append(f"changes that take effect at the next restart: {', '.join(at_restart)}")
        log.info("config reloaded from %s%s", self.config_path, "".join(f"; {n}" for n in notes))

    async def _reattach(self, name: str, config: Config) -> TransportSettings | None:
        """A new jid or secret: the old component says goodbye and leaves, the new one comes.
        The transport stays, with its connections: what arrives meanwhile waits in the
        inbound queue. If the server refuses the new component, the old one comes back, and
        the section as it now runs is returned."""
        settings: TransportSettings = getattr(config.transports, name)
        running = self.transports[name].settings
        old = self.links[name]
        old.begin_stop()
        old.leave_rooms()
        await old.stop()
        self._link_tasks[name].cancel()
        self._take_identity(name, settings, config)
        if await self._attach_or_refused(name):
            return None
        self._take_identity(name, running, config)
        self._start_link(name)
        return settings.model_copy(update={"jid": running.jid, "secret": running.secret})

    def _take_identity(self, name: str, settings: TransportSettings, config: Config) -> None:
        transport = self.transports[name]
        if isinstance(transport, Reloadable):
            transport.reload(settings)
        else:  # only what the new component needs; the rest waits for a restart
            transport.settings = transport.settings.model_copy(
                update={"jid": settings.jid, "secret": settings.secret}
            )
        self.hosts[name].reconfigure(config, settings.jid)
        self.links[name] = self._link(name)

    async def _attach_or_refused(self, name: str) -> bool:
        """Start the link and wait a while: False if the server refuses it (logged), True
        if it attached or is still trying (it goes on alone, as at start)."""
        link = self.links[name]
        task = asyncio.create_task(link.run(), name=f"{name}-link")
        self._link_tasks[name] = task
        attached = asyncio.create_task(link.attached.wait())
        await asyncio.wait(
            [task, attached], timeout=REATTACH_WAIT_SECONDS, return_when=asyncio.FIRST_COMPLETED
        )
        attached.cancel()
        if task.done() and not task.cancelled() and isinstance(task.exception(), AttachRefused):
            log.error("%s; %s keeps its previous jid and secret", task.exception(), name)
            return False
        task.add_done_callback(self._link_ended)
        return True

    # -- shutdown ---------------------------------------------------------------------------------

    async def _shutdown(
        self, tasks: list[asyncio.Task[None]], runner: web.AppRunner | None, store: Store
    ) -> None:
        log.info("shutting down")
        self.notifier.stopping()
        for task in self._background:
            task.cancel()
        for link in self.links.values():
            link.begin_stop()
        # Rooms first: each resource in one is told the service is going (332), and what the
        # transports say of rooms while closing is dropped. Then transports: what else they
        # say while closing (a connection's end) still has an attached stream to go out on.
        # Then each link says goodbye for contacts and the gateway, and closes.
        for link in self.links.values():
            try:
                link.leave_rooms()
            except Exception:
                log.exception("%s: could not close rooms", link.component.domain)
        for transport in self.transports.values():
            try:
                await transport.stop()
            except Exception:
                log.exception("%s: error while stopping", transport.name)
        for link in self.links.values():
            with contextlib.suppress(Exception):
                await link.stop()
        for task in [*tasks, *self._link_tasks.values()]:
            task.cancel()
        await asyncio.gather(*tasks, *self._link_tasks.values(), return_exceptions=True)
        if runner is not None:
            await runner.cleanup()
        await store.close()


def freeze_start_up() -> None:
    """Put what the start made (modules, slixmpp's stanza classes, aiohttp, the config: some
    66,000 objects) out of the garbage collector's sight; it lives until exit anyway.

    Every full collection walked all of it: 40–120 ms on the 2-core test machine, during
    which nothing is answered nor sent, a post's latency at 100 posts/s (issue #14). Frozen,
    a full collection walks only what came since: 0.3–0.6 ms there.
    """
    gc.collect()
    gc.freeze()
