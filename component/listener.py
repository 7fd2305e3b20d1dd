"""The HTTP listener's connections: at most MAX_CONNECTIONS served at once, and a fair turn
for those past it.

aiohttp's own site takes every connection the kernel hands it. Here connections are taken
only while there is room, so that what strangers can hold stays bounded, and one waiting
past the cap gets a place by turns (:class:`Slots`) rather than being refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket

from aiohttp import web
from aiohttp.web_protocol import RequestHandler, _ErrInfo

from transports.listening import (
    listening_sockets,
    next_connection,
    open_accepted,
    queued_connection,
)

#: Connections the listener serves at once; past it, a new one waits to be taken (see
#: :class:`CappedSite`). An unfinished request holds what it has sent (up to
#: :data:`MAX_HEADERS` headers of :data:`MAX_FIELD_BYTES`: 128 KiB, about 250 KiB of the
#: gateway's memory each), so this bounds what strangers can hold to about 32 MiB; 600 such
#: connections uncapped held 145.
MAX_CONNECTIONS = 128
#: How long a connection asked to make room has to finish its request before the next
#: one is asked too
MAKE_ROOM_SECONDS = 1.0
#: How long a connection is served before it may be asked to make room (see :class:`Slots`)
MIN_SERVED_SECONDS = 1.0


class CappedSite(web.TCPSite):
    """aiohttp's TCP site, taking no more than :data:`MAX_CONNECTIONS` connections at once.

    Past the cap, new connections wait in the kernel's listen backlog until a place frees
    up or is made for them (:class:`Slots`), as nginx at ``worker_connections`` and Go's
    LimitListener make them wait; past the backlog the kernel drops their SYNs, which
    clients send again later. Waiting costs the gateway nothing. Closing them as they came
    cost an accept, a transport and an abort each, and a client that reconnects at once
    made that a loop: with wrk posting to a hook on 256 connections, the gateway spent its
    CPU refusing the 128 past the cap as wrk opened them again, and delivered 44 posts/s
    (11 ms of CPU each) where it delivers 6,000 on 128.
    """

    __slots__ = ("_sockets", "_taking")

    async def start(self) -> None:
        self._taking: list[asyncio.Task[None]] = []
        self._sockets: list[socket.socket] = []
        await web.BaseSite.start(self)  # registers the site: the runner stops it, even now
        server = self._runner.server
        assert server is not None
        self._sockets = await listening_sockets(self._host, self._port)
        slots = Slots(MAX_CONNECTIONS)
        self._taking = [
            asyncio.create_task(take_connections(sock, server, slots)) for sock in self._sockets
        ]

    async def stop(self) -> None:
        for task in self._taking:
            task.cancel()
        await asyncio.gather(*self._taking, return_exceptions=True)
        for sock in self._sockets:
            sock.close()
        await super().stop()


class Slots:
    """The connections being served, and a wait for a place among them.

    A client that keeps its connection alive keeps its place, and 128 posters that never
    stop would keep the others out for good: when the places are full and a connection
    waits to be taken, the connection served longest is asked to close (at once if it waits
    for a request, else once its request is answered), as nginx closes its idle keep-alive
    connections when it runs out of them. Only one served for :data:`MIN_SERVED_SECONDS`
    is asked: a stranger opening connections in a loop then turns over at most
    :data:`MAX_CONNECTIONS` places a second, not one per connection it opens.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        #: each connection served, with when it was taken (loop time), the oldest first
        self.live: dict[_DeafOnceRefused, float] = {}
        #: those asked to make room, not gone yet
        self._leaving: set[_DeafOnceRefused] = set()
        self._freed = asyncio.Event()

    def add(self, protocol: _DeafOnceRefused) -> None:
        self.live[protocol] = asyncio.get_running_loop().time()

    def release(self, protocol: _DeafOnceRefused) -> None:
        self.live.pop(protocol, None)
        self._leaving.discard(protocol)
        self._freed.set()

    async def room(self, sock: socket.socket) -> None:
        """Return once a connection may be taken on ``sock``; meanwhile, when one waits
        there, make room for it."""
        while len(self.live) >= self.limit:
            self._freed.clear()
            if await self._knocked_first(sock):
                await self._make_room()

    async def _knocked_first(self, sock: socket.socket) -> bool:
        """Wait until a place frees up or a connection waits on ``sock``: whether the latter
        came first."""
        loop = asyncio.get_running_loop()
        knocked = loop.create_future()
        loop.add_reader(sock.fileno(), _knock, knocked)
        freed = asyncio.ensure_future(self._freed.wait())
        try:
            await asyncio.wait((knocked, freed), return_when=asyncio.FIRST_COMPLETED)
        finally:
            loop.remove_reader(sock.fileno())
            freed.cancel()
            knocked.cancel()
        return not self._freed.is_set()

    async def _make_room(self) -> None:
        """Ask the connection served longest to close, if served long enough; return once
        a place frees up, or when it is time to ask again."""
        now = asyncio.get_running_loop().time()
        oldest = next(((p, t) for p, t in self.live.items() if p not in self._leaving), None)
        if oldest is None:  # all asked already, and busy answering
            await self._freed_within(MAKE_ROOM_SECONDS)
            return
        protocol, taken = oldest
        if now - taken < MIN_SERVED_SECONDS:
            await self._freed_within(taken + MIN_SERVED_SECONDS - now)
            return
        self._leaving.add(protocol)
        _close_when_answered(protocol.handler)
        await self._freed_within(MAKE_ROOM_SECONDS)

    async def _freed_within(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._freed.wait(), seconds)


def _close_when_answered(handler: RequestHandler) -> None:
    """Close ``handler``'s connection now if it waits for a request, as aiohttp's own
    keep-alive timeout does, or else once its request is answered.

    Whether it waits is aiohttp's ``_waiter``, which it does not publish (its keep-alive
    timeout reads it the same way). ``close()`` alone does not close an idle connection
    (seen with aiohttp 3.14). Should ``_waiter`` go,
    ``test_connections_holding_every_place_make_room_for_one_that_waits[kept-alive]`` fails.
    """
    waiter = getattr(handler, "_waiter", None)
    if waiter is not None and not waiter.done():
        handler.force_close()
    else:
        handler.close()


def _knock(knocked: asyncio.Future[None]) -> None:
    """The listening socket is readable: a connection waits to be taken."""
    if not knocked.done():
        knocked.set_result(None)


async def take_connections(sock: socket.socket, server: web.Server, slots: Slots) -> None:
    """Accept on the listening ``sock`` while ``slots`` has room, each connection served by
    ``server``.

    Once one connection is in, those waiting behind it are taken in the same turn, as
    asyncio's own listeners take them: one accept and one transport at a time, each awaited,
    served about 40% fewer requests of clients that open a connection per request (wrk with
    ``Connection: close``: 5,800-6,200 against 9,200-10,400 a second).
    """
    opening: set[asyncio.Task[None]] = set()
    while True:
        await slots.room(sock)
        first = await next_connection(sock, "HTTP")
        if first is None:
            continue
        taken = [first[0]]
        while len(slots.live) + len(taken) < slots.limit:
            more = queued_connection(sock)
            if more is None:
                break
            taken.append(more[0])
        for connection in taken:
            connection.setblocking(False)
            protocol = _DeafOnceRefused(server(), slots)
            slots.add(protocol)
            open_accepted(connection, protocol, functools.partial(slots.release, protocol), opening)


class _DeafOnceRefused(asyncio.Protocol):
    """aiohttp's handler for one connection, reading nothing more once it refuses a request.

    Until its 400 is sent, aiohttp goes on reading a connection whose request it refused (a
    header too long, too many of them): each read queues one more refusal, whose traceback
    keeps the bytes read (up to 256 KiB). 128 connections each sending 1 MiB of headers held
    100 MiB that way, and the allocator kept it after they were answered. Paused here, a
    refused connection holds one read at most; aiohttp closes it once the 400 is written.

    The refusal is seen in the handler's queue of parsed messages, which aiohttp does not
    publish: should that change, :func:`refused` says no and only this guard is lost
    (``test_http_requests_whose_headers_never_end_are_bounded`` would show it).
    """

    def __init__(self, handler: RequestHandler, slots: Slots) -> None:
        self.handler = handler
        self.slots = slots
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.handler.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.handler.data_received(data)
        if self.transport is not None and refused(self.handler):
            self.transport.pause_reading()

    def eof_received(self) -> bool | None:
        self.handler.eof_received()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.slots.release(self)
        self.handler.connection_lost(exc)

    def pause_writing(self) -> None:
        self.handler.pause_writing()

    def resume_writing(self) -> None:
        self.handler.resume_writing()


def refused(handler: RequestHandler) -> bool:
    """Whether the last message aiohttp parsed on this connection is a refusal."""
    queued = getattr(handler, "_messages", None)
    if not queued:
        return False
    return isinstance(queued[-1][0], _ErrInfo)
