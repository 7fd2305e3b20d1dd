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
import contextlib
import logging
import re

log = logging.getLogger(__name__)

#: (port on the gateway, port on the IRC server) → ident; only open connections are here.
_open: dict[tuple[int, int], str] = {}
_QUERY = re.compile(r"^\s*(\d{1,5})\s*,\s*(\d{1,5})\s*$")
_MAX_QUERY = 1000
_READ_TIMEOUT = 10.0


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


async def _client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(
        OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError
    ):
        raw = await asyncio.wait_for(reader.readuntil(b"\n"), _READ_TIMEOUT)
        query = raw[:_MAX_QUERY].decode("ascii", errors="replace")
        writer.write(answer(query).encode() + b"\r\n")
        await writer.drain()
    writer.close()


async def serve(host: str, port: int) -> asyncio.Server:
    """Start answering ident queries on ``host:port``; close the returned server to stop."""
    server = await asyncio.start_server(_client, host, port, limit=_MAX_QUERY)
    log.info("identd listening on %s:%s", host, port)
    return server
