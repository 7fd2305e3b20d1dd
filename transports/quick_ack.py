"""Acknowledging what is read at once (``TCP_QUICKACK``), against the 40 ms Nagle stall.

Prosody (``network_settings.nagle`` is on by default) and InspIRCd leave Nagle's algorithm
on for the sockets they write to us: while one small segment is unacknowledged, the next
small write waits for its ACK. When we have nothing to send back at that moment, Linux may
delay our ACK, up to about 40 ms here, so a busy room or a burst of messages stalls for
40 ms at a time, the server and the gateway both idle. Measured in December 2026 with
bench/irc.py's lanes: with the gateway asking for an immediate ACK after each read, XMPP→IRC
went from about 5,700 to 7,500 msg/s and IRC→XMPP from 8,300 to 9,300, and p99 under that
load from about 40 to 23 and 15 ms.

Linux clears the flag by itself as the connection goes on, so it is set again after every
read: one system call per read, and a busy connection's reads are few and large. Elsewhere
(no ``TCP_QUICKACK``) or on a socket that is not TCP, nothing is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


def ack_socket(transport: asyncio.BaseTransport) -> Any:
    """The transport's TCP socket, to pass to :func:`ack_now`; ``None`` where it cannot
    be asked to ACK at once."""
    sock = transport.get_extra_info("socket")
    if _QUICKACK is None or sock is None or sock.type != socket.SOCK_STREAM:
        return None
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    return sock


def ack_now(sock: Any) -> None:
    """Acknowledge what was just read on ``sock`` now (an :func:`ack_socket`, or ``None``)."""
    if sock is not None and _QUICKACK is not None:
        with contextlib.suppress(OSError):  # closed meanwhile: nothing left to acknowledge
            sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
