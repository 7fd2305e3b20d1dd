"""The benchmarks' receiving clients acknowledge every read at once (``TCP_QUICKACK``).

Prosody and InspIRCd leave Nagle's algorithm on for the sockets they write to clients: while
a small segment is unacknowledged, the next small write waits for its ACK. A client that
only reads has nothing to carry an ACK on, and Linux may then delay it, up to about 40 ms
here. The two together stall a stream of small messages for 40 ms at a time, and with at
most 100 messages in flight that, not the gateway, set the rate: measured in December 2026,
Portway's IRC→XMPP rate went from about 3,000 to 8,000 msg/s when the receiving client only
acknowledged at once, with the same gateway, Prosody and InspIRCd.

Whether it happened depended on the shape of the measure (how the receiver's kernel judged
the connection), so it hit some measures and not others: the XMPP ceiling's receiver was
spared, the IRC→XMPP receiver was not. Every receiving client here therefore asks for an
immediate ACK after each read (Linux resets the flag by itself, so it is set each time),
and the figures measure the servers and the gateways, not a client's ACK timer.
"""

from __future__ import annotations

import asyncio
import socket


def ack_at_once(writer: asyncio.StreamWriter) -> None:
    """Acknowledge what was just read now, not when the delayed-ACK timer fires (Linux)."""
    sock = writer.get_extra_info("socket")
    if sock is not None and hasattr(socket, "TCP_QUICKACK"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
