"""The gateway's side of the XMPP stream, on the way in: what is read is acknowledged at once.

Prosody writes to a component with Nagle's algorithm on (its default); with the gateway's
delayed ACKs, a burst of stanzas to the gateway stalled for 40 ms at a time (see
transports/quick_ack.py, where the figures are).
"""

from __future__ import annotations

from asyncio import BaseTransport
from typing import Any

from slixmpp.xmlstream import XMLStream

from transports.quick_ack import ack_now, ack_socket


class AckingStream(XMLStream):
    """Mixin for an :class:`XMLStream`: asks for an immediate TCP ACK after every read."""

    _ack_socket: Any = None

    def connection_made(self, transport: BaseTransport, send_event: bool = True) -> None:
        self._ack_socket = ack_socket(transport)
        super().connection_made(transport, send_event)

    def data_received(self, data: bytes | str) -> None:
        ack_now(self._ack_socket)
        super().data_received(data)
