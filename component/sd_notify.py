"""systemd's readiness protocol (sd_notify), spoken directly: one datagram per state change.

Under ``Type=notify`` systemd waits for ``READY=1`` before it calls the service started, kills
it when ``WATCHDOG=1`` stops coming for ``WatchdogSec``, and shows ``RELOADING=1`` and
``STOPPING=1`` in ``systemctl status``. The protocol is a datagram of ``KEY=value`` lines to
the ``AF_UNIX`` socket named by ``$NOTIFY_SOCKET`` (``@`` at its start means the abstract
namespace), so it needs no library. Outside systemd the variable is unset and every call is a
no-op.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


def socket_address(value: str) -> str | None:
    """Where ``$NOTIFY_SOCKET`` points, as :mod:`socket` takes it; none if not a unix socket."""
    if value.startswith("@"):
        return "\0" + value[1:]  # the abstract namespace
    if value.startswith("/"):
        return value
    return None  # e.g. vsock: addresses systemd may use in VMs, not ours to speak


def watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """How often to send ``WATCHDOG=1``: half of ``$WATCHDOG_USEC``, as sd_watchdog_enabled(3)
    advises; none when the watchdog is off or meant for another process (``$WATCHDOG_PID``)."""
    watchdog_pid = environ.get("WATCHDOG_PID")
    if watchdog_pid and watchdog_pid != str(pid):
        return None
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 2 / 1_000_000 if usec > 0 else None


def reloading_message() -> str:
    """``RELOADING=1`` with the clock stamp systemd 253+ needs to match it to the reload."""
    return f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}"


class Notifier:
    """Sends state changes to systemd, if systemd is listening."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        self.address = socket_address(environ.get("NOTIFY_SOCKET", ""))
        self.watchdog_seconds = watchdog_interval(environ, os.getpid())
        self._failing = False

    def notify(self, message: str) -> None:
        """Send one message; a lost one is logged, never raised: systemd being away or busy
        must not take the gateway down (its watchdog will say so if it matters). Logged once
        until a message gets through again, not at every watchdog tick."""
        if self.address is None:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message.encode(), self.address)
        except OSError as exc:
            first = message.split("\n", 1)[0]
            log.log(
                logging.DEBUG if self._failing else logging.WARNING,
                "could not notify systemd (%s): %s",
                first,
                exc,
            )
            self._failing = True
        else:
            self._failing = False

    def ready(self, status: str) -> None:
        self.notify(f"READY=1\nSTATUS={status}")

    def reloading(self) -> None:
        self.notify(reloading_message())

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    async def keep_watchdog(self) -> None:
        """``WATCHDOG=1`` every half interval, from the event loop itself: a loop that hangs
        stops sending, and systemd restarts the service."""
        if self.address is None or self.watchdog_seconds is None:
            return
        while True:
            self.notify("WATCHDOG=1")
            await asyncio.sleep(self.watchdog_seconds)
