"""What an admin expects of a daemon run for years: systemd's protocol, clear refusals, quiet
logs, clean stops. Against a real Prosody, with the real `portway run`."""

from __future__ import annotations

import asyncio
import itertools
import logging
import shutil
import signal
import socket
import statistics
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from support.fixture_types import ConnectIrc, ConnectXmpp, MakeNgircd, MakeProsody
from support.gateway import GatewayProcess
from support.prosody import Prosody
from test_reload import ROOM, SECRETS, join, settings

from component.config import Config
from component.host import Host
from component.link import ComponentLink
from component.metrics import Metrics
from component.xmpp import GatewayComponent
from mappings.store import Store
from transports.webhook import WebhookTransport

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "contrib" / "systemd" / "portway.service"


# -- refusals ----------------------------------------------------------------------------------


async def test_a_component_the_server_does_not_know_is_named_and_the_secret_not_blamed(
    tmp_path: Path, make_prosody: MakeProsody
) -> None:
    prosody = make_prosody(components={"irc.example.org": SECRETS["irc.example.org"]})
    config = {
        "xmpp": {"host": "127.0.0.1", "port": prosody.component_port},
        "allowed_domains": ["example.org"],
        "transports": {"irc": {"jid": "irc2.example.org", "secret": "irc2-component-s3cret"}},
    }
    gateway = GatewayProcess(tmp_path / "gateway", config)
    gateway.start()
    assert gateway.process is not None
    assert await asyncio.to_thread(gateway.process.wait, 20) == 1
    log = gateway.log()
    assert "host-unknown: the XMPP server has no component irc2.example.org" in log
    assert "secret for" not in log and "irc2-component-s3cret" not in log
    assert "reconnecting" not in log


# -- sd_notify ---------------------------------------------------------------------------------


@pytest.fixture
def notify_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """An abstract-namespace datagram socket standing in for systemd's; the gateway started
    in the test inherits NOTIFY_SOCKET and a 0.6 s watchdog (fed every 0.3 s)."""
    name = f"portway-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    monkeypatch.setenv("WATCHDOG_USEC", "600000")
    yield sock
    sock.close()


async def next_state(
    sock: socket.socket, timeout: float = 20, fed: list[float] | None = None
) -> str:
    """The next message that is not WATCHDOG=1; when each WATCHDOG=1 came goes to ``fed``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        remaining = max(deadline - loop.time(), 0)
        message = (await asyncio.wait_for(loop.sock_recv(sock, 4096), remaining)).decode()
        if message != "WATCHDOG=1":
            return message
        if fed is not None:
            fed.append(loop.time())


async def test_sd_notify_ready_watchdog_reloading_stopping(
    tmp_path: Path, make_prosody: MakeProsody, make_ngircd: MakeNgircd, notify_socket: Any
) -> None:
    prosody = make_prosody(components=SECRETS)
    gateway = GatewayProcess(tmp_path / "gateway", settings(prosody, make_ngircd()))
    prosody.stop()  # READY waits for every component to attach
    gateway.start()
    try:
        await notified_in_order(gateway, prosody, notify_socket)
    finally:
        gateway.stop()


async def notified_in_order(gateway: GatewayProcess, prosody: Prosody, sock: socket.socket) -> None:
    """READY only once attached; WATCHDOG meanwhile; RELOADING, READY; STOPPING."""
    await gateway.wait_health(attached=False)  # up: HTTP answers
    with pytest.raises(TimeoutError):
        await next_state(sock, timeout=2)
    assert gateway.process is not None and gateway.process.poll() is None
    assert gateway.health()[0] == 503  # not attached: not ready
    prosody.start()
    ready = await next_state(sock)
    assert ready == "READY=1\nSTATUS=attached: irc.example.org, hooks.example.org"
    assert gateway.health()[0] == 200
    fed: list[float] = []
    with pytest.raises(TimeoutError):
        await next_state(sock, timeout=2, fed=fed)
    gateway.process.send_signal(signal.SIGHUP)
    reloading = await next_state(sock)
    # Every 0.3 s (half of WATCHDOG_USEC) while the loop runs; the median forgives one
    # hiccup of a loaded test machine.
    gaps = [later - earlier for earlier, later in itertools.pairwise(fed)]
    assert len(gaps) >= 4 and 0.2 <= statistics.median(gaps) <= 0.45, gaps
    lines = reloading.split("\n")
    assert lines[0] == "RELOADING=1" and lines[1].startswith("MONOTONIC_USEC=")
    assert (await next_state(sock)).startswith("READY=1\n")
    gateway.process.send_signal(signal.SIGTERM)
    assert await next_state(sock) == "STOPPING=1"
    assert await asyncio.to_thread(gateway.process.wait, 10) == 0


# -- stopping ----------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_a_stop_as_the_servers_stop_too_logs_nothing_after_shutting_down(
    tmp_path: Path,
    make_prosody: MakeProsody,
    make_ngircd: MakeNgircd,
    xmpp_client: ConnectXmpp,
    irc_client: ConnectIrc,
    signum: signal.Signals,
) -> None:
    """As a Ctrl-C in the demo's terminal: Prosody and the IRC server go at the same time.
    The gateway is held still meanwhile, so that it finds both at once when it wakes."""
    prosody = make_prosody(components=SECRETS, users={"alice": "alice-pw"})
    ngircd = make_ngircd()
    config = {**settings(prosody, ngircd), "log_level": "INFO"}  # as the demo and admins run
    gateway = GatewayProcess(tmp_path / "gateway", config)
    await gateway.astart()
    alice = await xmpp_client("alice@example.org", "alice-pw", prosody)
    alice.send_raw("<presence/>")
    assert (await join(alice, ROOM))["type"] != "error"
    assert gateway.process is not None
    gateway.process.send_signal(signal.SIGSTOP)
    try:
        prosody.stop()
        ngircd.stop()
        gateway.process.send_signal(signum)
    finally:
        gateway.process.send_signal(signal.SIGCONT)
    assert await asyncio.to_thread(gateway.process.wait, 15) == 0
    log = gateway.log()
    assert "Traceback" not in log and "NotConnectedError" not in log, log
    assert log.rstrip().endswith("shutting down"), log[log.find("shutting down") :]


async def test_a_stanza_caught_by_the_stream_closing_is_dropped_without_a_traceback(
    tmp_path: Path, make_prosody: MakeProsody, caplog: pytest.LogCaptureFixture
) -> None:
    """The cause of the traceback at every Ctrl-C: slixmpp's send task takes a stanza (a
    goodbye), waits for its caps filter, and the server's end of stream comes meanwhile."""
    jid = "hooks.example.org"
    prosody: Prosody = make_prosody(components={jid: SECRETS[jid]})
    config = Config.model_validate(
        {
            "database": f"sqlite:///{tmp_path / 'portway.db'}",
            "xmpp": {"host": "127.0.0.1", "port": prosody.component_port},
            "allowed_domains": ["example.org"],
            "transports": {"webhook": {"jid": jid, "secret": SECRETS[jid]}},
        }
    )
    assert config.transports.webhook is not None
    store = await Store.open(config.database)
    host = Host("webhook", jid, config, store, web.Application(), Metrics())
    transport = WebhookTransport(config.transports.webhook, host)
    component = GatewayComponent(transport, host, SECRETS[jid])
    host.attach(component)
    link = ComponentLink(component, host, config.xmpp)
    running = asyncio.create_task(link.run())
    try:
        await asyncio.wait_for(link.attached.wait(), 10)
        with caplog.at_level(logging.DEBUG):
            component.send_presence(pto="alice@example.org", ptype="unavailable")
            assert component.transport is not None
            component.transport.close()  # the stream ends before the send task writes
            await asyncio.sleep(0.5)
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert errors == [], [r.getMessage() for r in errors]
        assert f"{jid}: stream closed; not sent: presence" in caplog.text
    finally:
        link.begin_stop()
        await link.stop()
        running.cancel()
        await store.close()


# -- logs --------------------------------------------------------------------------------------


async def test_an_outage_is_logged_when_it_starts_and_when_it_ends(
    tmp_path: Path, make_prosody: MakeProsody
) -> None:
    jid = "hooks.example.org"
    prosody = make_prosody(components={jid: SECRETS[jid]})
    config = {
        "xmpp": {"host": "127.0.0.1", "port": prosody.component_port, "reconnect_max_seconds": 0.3},
        "allowed_domains": ["example.org"],
        "log_level": "INFO",
        "transports": {"webhook": {"jid": jid, "secret": SECRETS[jid]}},
    }
    gateway = GatewayProcess(tmp_path / "gateway", config)
    await gateway.astart()
    try:
        prosody.stop()
        await asyncio.sleep(3)  # many attempts, at most 0.3 s apart
        prosody.start()
        await gateway.wait_health(attached=True, timeout=20)
        log = gateway.log()
        assert log.count("reconnecting to") == 1, log
        back = [line for line in log.splitlines() if "attached again" in line]
        assert len(back) == 1, log
        attempts = int(back[0].split(" after ")[1].split()[0])
        assert attempts >= 5, back
    finally:
        gateway.stop()


# -- the unit file -----------------------------------------------------------------------------


def unit_settings() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_the_unit_file_runs_portway_as_a_hardened_notify_service() -> None:
    unit = unit_settings()
    expected = {
        "Type": ["notify"],
        "ExecReload": ["/bin/kill -HUP $MAINPID"],
        "StateDirectory": ["portway"],
        "NoNewPrivileges": ["yes"],
        "ProtectSystem": ["strict"],
        "ProtectHome": ["yes"],
        "PrivateTmp": ["yes"],
        "PrivateDevices": ["yes"],
        "RestrictAddressFamilies": ["AF_UNIX AF_INET AF_INET6"],
        "CapabilityBoundingSet": [""],
    }
    for key, values in expected.items():
        assert unit.get(key) == values, key
    assert "@system-service" in unit["SystemCallFilter"]
    assert unit["WatchdogSec"] and unit["ExecStart"][0].endswith(
        " run -c /etc/portway/portway.yaml"
    )
    assert unit.get("DynamicUser") == ["yes"] or unit.get("User") == ["portway"]


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here; the unit's keys are checked above")
    portway = shutil.which("portway")
    assert portway is not None, "pip install -e . puts portway on PATH"
    # verify checks that ExecStart's binary exists: point it at this machine's portway.
    unit = tmp_path / "portway.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/portway", portway))
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
