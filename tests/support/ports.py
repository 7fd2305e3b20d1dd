"""Free loopback TCP ports for throwaway servers, so parallel instances never clash."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago.

    The kernel picks it (bind to port 0), so two instances started side by side get
    different ports. There is a small race until the server binds it; tests accept that.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Tell whether something accepts TCP connections on host:port right now."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_ports(
    ports: list[int],
    timeout: float,
    alive: Callable[[], bool] | None = None,
    host: str = "127.0.0.1",
) -> bool:
    """Poll until every port accepts connections; False on timeout or if `alive()` says no.

    `alive` is an optional zero-argument callable, used to stop waiting as soon as the
    server process has died instead of waiting out the whole timeout.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            return False
        if all(port_open(p, host) for p in ports):
            return True
        time.sleep(0.05)
    return False
