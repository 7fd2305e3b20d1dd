"""A small identd (RFC 1413), so that networks can tell gateway users apart by ident.

An IRC server that does ident lookups connects back to port 113 of the gateway and asks
``<port on the gateway>, <port on the server>`` for a connection; the answer names the
user of that connection. Each IRC connection registers its port pair and its ident (the
IRC username it registers with) while it is open, and the server answers from that table;
a pair it does not know gets ``NO-USER``, never another user's name. Off by default
(``identd_port``); port 113 needs privileges, so a redirect from 113 to a high port, or
``CAP_NET_BIND_SERVICE``, is the usual setup.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable

from transports.admission import AdmittingListener, Limits

log = logging.getLogger(__name__)

#: (port on the gateway, port on the IRC server) → ident; only open connections are here.
_open: dict[tuple[int, int], str] = {}
_QUERY = re.compile(r"^\s*(\d{1,5})\s*,\s*(\d{1,5})\s*$")
_MAX_QUERY = 1000
_READ_TIMEOUT = 10.0
#: The identd's bounds (transports/admission.py). An IRC server asks one question a
#: connection, as each client registers; a stranger holding connections open or connecting in
#: a loop gets a few places and a few connections a second, and holds no more. RFC 1413 has no
#: reply for a busy server: a refused connection is closed unanswered, which servers take as
#: "no ident".
IDENT_LIMITS = Limits(
    sessions=32,
    sessions_per_client=8,
    burst=30,
    per_second=10.0,
    waiting=32,
    waiting_per_client=8,
    place_wait_seconds=0.5,
    answers_per_second=200,
    refusal=b"",
)


def register(local_port: int, remote_port: int, ident: str) -> None:
    _open[(local_port, remote_port)] = ident


def unregister(local_port: int, remote_port: int) -> None:
    _open.pop((local_port, remote_port), None)


def answer(query: str) -> str:
    """The reply line to one query (without CRLF)."""
    found = _QUERY.match(query)
    if found is None:
        return "0, 0 : ERROR : INVALID-PORT"
    local, remote = int(found[1]), int(found[2])
    pair = f"{local}, {remote}"
    if not (0 < local < 65536 and 0 < remote < 65536):
        return f"{pair} : ERROR : INVALID-PORT"
    ident = _open.get((local, remote))
    if ident is None:
        return f"{pair} : ERROR : NO-USER"
    return f"{pair} : USERID : UNIX : {ident}"


class IdentAnswer(asyncio.Protocol):
    """One connection: a query line read (at most :data:`_MAX_QUERY` bytes, within
    :data:`_READ_TIMEOUT`), its answer written, and the connection closed."""

    def __init__(self, ended: Callable[[], None]) -> None:
        self._ended = ended
        self._read = b""
        self._transport: asyncio.Transport | None = None
        self._timeout: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._timeout = asyncio.get_running_loop().call_later(_READ_TIMEOUT, transport.close)

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._read += data
        line, newline, _rest = self._read.partition(b"\n")
        if newline or len(self._read) >= _MAX_QUERY:
            self._transport.pause_reading()
            query = line[:_MAX_QUERY].decode("ascii", errors="replace")
            self._transport.write(answer(query).encode() + b"\r\n")
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timeout is not None:
            self._timeout.cancel()
        self._ended()


class IdentServer(AdmittingListener):
    """The identd's listener: the connections it takes, each one query answered."""

    name = "ident"

    def __init__(self) -> None:
        super().__init__(IDENT_LIMITS, lambda: None)

    def session(self, ended: Callable[[], None]) -> IdentAnswer:
        return IdentAnswer(ended)


async def serve(host: str, port: int) -> IdentServer:
    """Start answering ident queries on ``host:port``; close the returned server to stop."""
    server = IdentServer()
    await server.start(host, port)
    log.info("identd listening on %s:%s", host, port)
    return server
