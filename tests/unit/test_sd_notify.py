"""sd_notify spoken to a real datagram socket standing in for systemd's NOTIFY_SOCKET."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from component.sd_notify import Notifier, socket_address, watchdog_interval


def listening(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(2)
    return sock


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A socket at a path, as systemd's /run/systemd/notify; yields it and $NOTIFY_SOCKET."""
    path = str(tmp_path / "notify")
    sock = listening(path)
    yield sock, path
    sock.close()


def test_addresses_as_systemd_writes_them() -> None:
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("@/org/freedesktop/systemd1/notify/123") == (
        "\0/org/freedesktop/systemd1/notify/123"
    )
    assert socket_address("") is None
    assert socket_address("vsock:2:1234") is None  # not a unix socket: not ours to speak


def test_watchdog_interval_is_half_of_watchdog_usec_and_for_this_process_only() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}, 42) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}, 42) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "41"}, 42) is None
    assert watchdog_interval({}, 42) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}, 42) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}, 42) is None


def test_ready_reloading_stopping_reach_a_path_socket(systemd: tuple[socket.socket, str]) -> None:
    sock, path = systemd
    notifier = Notifier({"NOTIFY_SOCKET": path})
    notifier.ready("attached: irc.example.org")
    assert sock.recv(4096) == b"READY=1\nSTATUS=attached: irc.example.org"
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    notifier.reloading()
    lines = sock.recv(4096).decode().split("\n")
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert lines[0] == "RELOADING=1"
    key, _, usec = lines[1].partition("=")
    assert key == "MONOTONIC_USEC" and before <= int(usec) <= after
    notifier.stopping()
    assert sock.recv(4096) == b"STOPPING=1"


def test_abstract_namespace_socket() -> None:
    name = f"portway-test-{uuid.uuid4().hex}"
    sock = listening("\0" + name)
    try:
        Notifier({"NOTIFY_SOCKET": "@" + name}).stopping()
        assert sock.recv(4096) == b"STOPPING=1"
    finally:
        sock.close()


def test_without_notify_socket_nothing_is_sent_and_nothing_fails() -> None:
    notifier = Notifier({})
    assert notifier.address is None
    notifier.ready("x")  # no socket, no error


def test_systemd_gone_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "notify"
    notifier = Notifier({"NOTIFY_SOCKET": str(path)})
    with caplog.at_level(logging.WARNING, logger="component.sd_notify"):
        notifier.ready("x")
        notifier.notify("WATCHDOG=1")  # still away: not logged again
        sock = listening(str(path))
        notifier.notify("WATCHDOG=1")  # back
        sock.close()
        path.unlink()
        notifier.stopping()  # away again: logged again
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "could not notify systemd (READY=1)",
        "could not notify systemd (STOPPING=1)",
    ]


async def test_watchdog_is_fed_every_half_interval(systemd: tuple[socket.socket, str]) -> None:
    sock, path = systemd
    sock.setblocking(False)
    environ = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000", "WATCHDOG_PID": str(os.getpid())}
    notifier = Notifier(environ)
    assert notifier.watchdog_seconds == 0.1
    feeding = asyncio.create_task(notifier.keep_watchdog())
    await asyncio.sleep(0.45)
    feeding.cancel()
    received = []
    while True:
        try:
            received.append(sock.recv(4096))
        except BlockingIOError:
            break
    assert set(received) == {b"WATCHDOG=1"}
    assert 4 <= len(received) <= 6


async def test_no_watchdog_without_watchdog_usec(systemd: tuple[socket.socket, str]) -> None:
    sock, path = systemd
    await asyncio.wait_for(Notifier({"NOTIFY_SOCKET": path}).keep_watchdog(), 1)  # returns
    sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        sock.recv(4096)
