"""Listening sockets for the gateway's own listeners, which accept only while they have room.

asyncio's ``create_server`` takes every connection the kernel hands it, and a listener that
then refuses what it cannot serve pays an accept, a transport and a close for each: a
client that reconnects at once turns that into a loop that holds the gateway's core (the
HTTP listener with wrk on 256 connections; the SMTP listener with a client connecting in a
loop). The HTTP listener (component/listener.py) and the listeners of
transports/admission.py (SMTP, identd) bind their own sockets here and accept from them
themselves; what they do not take waits in the kernel's listen backlog, at no cost to the
gateway.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

#: Connections the kernel holds for a listener, taken or not yet (``listen()``'s backlog);
#: past it the kernel drops SYNs, which clients send again later
BACKLOG = 128
#: How long a listener waits before accepting again when the system refuses (no free
#: descriptor): asyncio's own listeners wait as long
ACCEPT_RETRY_SECONDS = 1.0


async def listening_sockets(host: str | None, port: int) -> list[socket.socket]:
    """Listening sockets on each address of ``host`` (every interface for ``None``), bound as
    asyncio's ``create_server`` binds them; an address in use is an ``OSError``."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as error:
                raise OSError(error.errno, f"cannot bind {address}: {error.strerror}") from None
            sock.listen(BACKLOG)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


async def next_connection(sock: socket.socket, name: str) -> tuple[socket.socket, Any] | None:
    """The next connection on the listening ``sock`` and its address, once one comes; ``None``
    if it was given up before it was taken, or the system refused it (out of descriptors or
    buffers: then after :data:`ACCEPT_RETRY_SECONDS`, as asyncio's own listeners wait)."""
    try:
        return await asyncio.get_running_loop().sock_accept(sock)
    except ConnectionAbortedError:
        return None
    except OSError as error:
        log.warning("cannot accept %s connections for now: %s", name, error)
        await asyncio.sleep(ACCEPT_RETRY_SECONDS)
        return None


def queued_connection(sock: socket.socket) -> tuple[socket.socket, Any] | None:
    """A connection already queued on the listening ``sock``, taken without waiting; ``None``
    when none is (or the system refuses: the next :func:`next_connection` says so)."""
    while True:
        try:
            return sock.accept()
        except ConnectionAbortedError:
            continue
        except OSError:
            return None


def open_accepted(
    sock: socket.socket,
    protocol: asyncio.Protocol,
    lost: Callable[[], None],
    opening: set[asyncio.Task[None]],
) -> None:
    """The transport of an accepted ``sock``, served by ``protocol``, made in a task kept in
    ``opening``; ``lost()`` if the connection went before its transport was made (the
    protocol then never hears of it)."""

    async def make() -> None:
        try:
            await asyncio.get_running_loop().connect_accepted_socket(lambda: protocol, sock)
        except OSError:
            lost()
            sock.close()

    task = asyncio.create_task(make())
    opening.add(task)
    task.add_done_callback(opening.discard)
