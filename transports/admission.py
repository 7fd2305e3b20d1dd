"""Which connections a listener serves, and when: each client address in its turn.

A connection costs its client a SYN and the gateway far more: a session built, a greeting
written, reads until the client hangs up. A client connecting in a loop (8 connections at a
time from one address, each hanging up after the SMTP greeting) made 4,000 connections a
second and held the gateway's core, which carries every transport, for as long as it went
on (bench/smtp_flood.py). Postfix answers such clients with a connection rate per client
(anvil); so does a listener here, but it slows a client down rather than refusing it: past
its rate, a client's new connection waits for its turn before it is served.

What a waiting connection costs is a descriptor and a timer; how many wait is bounded, for
one client (past it, its next connection is refused at once, by a write on the socket, no
session built) and for all. So are the connections answered each second, served or
refused. Past either bound the listener takes no connection for a while: new ones wait in
the kernel's backlog, at no cost to the gateway (see transports/listening.py), and are
taken in the order they came.

The caps on sessions are looked at when a connection's turn comes: over the client's, it is
refused then; over all, it waits a moment for a place (see :class:`Admission`). Each
listener says what its bounds are (:class:`Limits`): the SMTP listener's are in
transports/email/smtp_admission.py, the identd's in transports/irc/identd.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import socket
from abc import ABC, abstractmethod
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transports.listening import (
    BACKLOG,
    listening_sockets,
    next_connection,
    open_accepted,
    queued_connection,
)

log = logging.getLogger(__name__)

#: Clients whose rate is remembered at once (see :class:`ClientRates`)
MAX_CLIENTS = 4096


@dataclass(frozen=True)
class Limits:
    """What one listener serves at once, and how fast (see the module's docstring)."""

    #: sessions served at once, of all clients and of one
    sessions: int
    sessions_per_client: int
    #: a client's connections: ``burst`` at once, then ``per_second``
    burst: int
    per_second: float
    #: connections waiting (for their turn or a place), of all clients and of one
    waiting: int
    waiting_per_client: int
    #: how long a connection may wait for a session's place when all are taken
    place_wait_seconds: float
    #: connections answered (served or refused) in one second; past them the listener takes
    #: none until the next second
    answers_per_second: int
    #: what a refused connection is told before it is hung up on (may be nothing)
    refusal: bytes


def client_of(address: Any) -> str:
    """What a connection's rate and sessions are counted by: its IPv4 address, or the /64
    of its IPv6 address (one subscriber's, who has all of its 2^64 addresses)."""
    host = str(address[0]) if isinstance(address, tuple) and address else str(address)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return host


class ClientRates:
    """Each client's connection rate: when its next connection may come without waiting.

    A bucket of ``burst`` connections refilling at ``per_second``, kept as one time per
    client (GCRA's "theoretical arrival time"): when its bucket is full again. A time that
    is past is the same as none and is forgotten. At most ``max_clients`` are remembered:
    a new client past them (thousands of addresses connecting within seconds) waits one
    interval, as with an empty bucket.
    """

    def __init__(
        self,
        burst: int,
        per_second: float,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self._interval = 1.0 / per_second
        self._tolerance = (burst - 1) * self._interval
        self._max_clients = max_clients
        #: the time each client's bucket is full again, the least recently used first
        self._full_at: OrderedDict[str, float] = OrderedDict()

    def take(self, client: str, now: float) -> float:
        """Take a turn for ``client``'s new connection: the seconds it waits for it."""
        self._forget_full(now)
        full_at = self._full_at.get(client)
        if full_at is None:
            if len(self._full_at) >= self._max_clients:
                return self._interval
            full_at = now
        full_at = max(full_at, now)
        self._full_at[client] = full_at + self._interval
        self._full_at.move_to_end(client)
        return max(0.0, full_at - self._tolerance - now)

    def give_back(self, client: str) -> None:
        """Return the turn just taken: the connection was refused instead."""
        if client in self._full_at:
            self._full_at[client] -= self._interval

    def __len__(self) -> int:
        return len(self._full_at)

    def _forget_full(self, now: float) -> None:
        """Forget the clients, least recently used first, whose bucket is full again."""
        while self._full_at:
            client, full_at = next(iter(self._full_at.items()))
            if full_at > now:
                return
            del self._full_at[client]


class Admission:
    """The listener's connections: served (sessions by client), waiting, or refused.

    A connection waits for one of two things: its client's turn (:class:`ClientRates`), or,
    when every session's place is taken, a place, for at most ``place_wait_seconds``. Places
    are mostly freed soon (a client greeted and gone, a mail sent, a client that hung up a
    moment ago): under a flood from many addresses, taken in batches from the backlog, a
    sender among the flood's connections was told 421 because the same batch had filled the
    places a moment before (2 of 13 mails got through, see bench/smtp_flood.py).

    ``serve(sock, client)`` opens a session on an accepted socket (its end is reported with
    :meth:`ended`); ``count_refusal()`` counts a refusal.
    """

    def __init__(
        self,
        limits: Limits,
        serve: Callable[[socket.socket, str], None],
        count_refusal: Callable[[], None],
    ) -> None:
        self.limits = limits
        self._serve = serve
        self._count_refusal = count_refusal
        self.rates = ClientRates(limits.burst, limits.per_second)
        self.sessions: Counter[str] = Counter()
        #: every waiting connection, with its timer (its turn, or the end of its wait)
        self._waiting: dict[socket.socket, asyncio.TimerHandle] = {}
        self._waiting_of: Counter[str] = Counter()
        #: those waiting for a session's place, the first come first
        self._for_place: OrderedDict[socket.socket, str] = OrderedDict()
        self._room = asyncio.Event()
        self._room.set()
        self._answers_left = self.limits.answers_per_second
        self._answers_renewed = 0.0

    def full(self) -> bool:
        """Whether the listener should take no more connections for now."""
        return len(self._waiting) >= self.limits.waiting or self._answers_spent() > 0

    async def room(self) -> None:
        """Return once the listener may take a connection: few enough wait, and answers are
        left this second."""
        while True:
            await self._room.wait()
            pause = self._answers_spent()
            if pause <= 0:
                return
            await asyncio.sleep(pause)

    def take(self, sock: socket.socket, client: str) -> None:
        """An accepted connection: served now, in its turn, or refused."""
        loop = asyncio.get_running_loop()
        wait = self.rates.take(client, loop.time())
        if wait <= 0:
            self._turn(sock, client)
        elif not self._wait(sock, client, wait, self._waited):
            self.rates.give_back(client)
            self._refuse(sock)

    def ended(self, client: str) -> None:
        """A session of ``client`` is over: its place goes to the first waiting for one."""
        self.sessions[client] -= 1
        if self.sessions[client] <= 0:
            del self.sessions[client]
        for sock, waiting in self._for_place.items():
            if self.sessions[waiting] < self.limits.sessions_per_client:
                self._stop_waiting(sock, waiting)
                self._turn(sock, waiting)
                return

    def close(self) -> None:
        """Hang up on the connections still waiting (the listener is closing)."""
        for sock, timer in self._waiting.items():
            timer.cancel()
            sock.close()
        self._waiting.clear()
        self._waiting_of.clear()
        self._for_place.clear()
        self._room.set()

    def _wait(
        self,
        sock: socket.socket,
        client: str,
        seconds: float,
        then: Callable[[socket.socket, str], None],
    ) -> bool:
        """Hold ``sock`` for ``seconds``, then call ``then``; whether there was room."""
        limits = self.limits
        if (
            len(self._waiting) >= limits.waiting
            or self._waiting_of[client] >= limits.waiting_per_client
        ):
            return False
        self._waiting_of[client] += 1
        self._waiting[sock] = asyncio.get_running_loop().call_later(seconds, then, sock, client)
        if len(self._waiting) >= self.limits.waiting:
            self._room.clear()
        return True

    def _stop_waiting(self, sock: socket.socket, client: str) -> None:
        self._waiting.pop(sock).cancel()
        self._for_place.pop(sock, None)
        self._waiting_of[client] -= 1
        if self._waiting_of[client] <= 0:
            del self._waiting_of[client]
        self._room.set()

    def _waited(self, sock: socket.socket, client: str) -> None:
        """``client``'s turn came."""
        self._stop_waiting(sock, client)
        self._turn(sock, client)

    def _no_place(self, sock: socket.socket, client: str) -> None:
        """No session's place freed up in time."""
        self._stop_waiting(sock, client)
        self._refuse(sock)

    def _turn(self, sock: socket.socket, client: str) -> None:
        if self.sessions[client] >= self.limits.sessions_per_client:
            self._refuse(sock)
            return
        if self.sessions.total() >= self.limits.sessions:
            if self._wait(sock, client, self.limits.place_wait_seconds, self._no_place):
                self._for_place[sock] = client
            else:
                self._refuse(sock)
            return
        self._answer()
        self.sessions[client] += 1
        try:
            self._serve(sock, client)
        except Exception:  # a session that cannot start must not stop the listener
            log.exception("cannot open a session for %s", client)
            sock.close()
            self.ended(client)

    def _answers_spent(self) -> float:
        """Seconds until connections may be answered again; 0 if some answers are left."""
        if self._answers_left > 0:
            return 0.0
        return max(0.0, self._answers_renewed + 1.0 - asyncio.get_running_loop().time())

    def _answer(self) -> None:
        """Count one answer against this second's."""
        now = asyncio.get_running_loop().time()
        if now >= self._answers_renewed + 1.0:
            self._answers_left, self._answers_renewed = self.limits.answers_per_second, now
        self._answers_left -= 1

    def _refuse(self, sock: socket.socket) -> None:
        """The refusal in one write, and hang up: no session is built for it."""
        self._answer()
        with contextlib.suppress(OSError):
            sock.send(self.limits.refusal)
        sock.close()
        self._count_refusal()


async def take_connections(sock: socket.socket, admission: Admission, name: str) -> None:
    """Accept on the listening ``sock`` while few enough wait, each handed to ``admission``;
    those queued behind the first are taken in the same turn, as asyncio's listeners take
    them."""
    while True:
        await admission.room()
        taken = await next_connection(sock, name)
        # and no more than the backlog in one turn: clients faster than it wait for the next
        turn = 0
        while taken is not None:
            connection, address = taken
            connection.setblocking(False)
            admission.take(connection, client_of(address))
            turn += 1
            taken = None if turn >= BACKLOG or admission.full() else queued_connection(sock)


class AdmittingListener(ABC):
    """A listener whose connections an :class:`Admission` takes: its sockets, the tasks that
    accept on them, and the sessions it opens. A subclass says what a session is."""

    #: what the log calls the listener
    name = "a"

    def __init__(self, limits: Limits, count_refusal: Callable[[], None]) -> None:
        self.admission = Admission(limits, self._serve, count_refusal)
        self.sockets: list[socket.socket] = []
        self._taking: list[asyncio.Task[None]] = []
        self._opening: set[asyncio.Task[None]] = set()

    @abstractmethod
    def session(self, ended: Callable[[], None]) -> asyncio.Protocol:
        """The protocol that serves one connection; it calls ``ended`` once the connection
        is lost."""

    async def start(self, host: str | None, port: int) -> None:
        self.sockets = await listening_sockets(host, port)
        self._taking = [
            asyncio.create_task(take_connections(sock, self.admission, self.name))
            for sock in self.sockets
        ]

    def close(self) -> None:
        """Stop taking connections; sessions under way go on to their end."""
        for task in self._taking:
            task.cancel()
        for sock in self.sockets:
            sock.close()
        self.admission.close()

    async def wait_closed(self) -> None:
        await asyncio.gather(*self._taking, *self._opening, return_exceptions=True)

    def _serve(self, sock: socket.socket, client: str) -> None:
        ended = _once(functools.partial(self.admission.ended, client))
        open_accepted(sock, self.session(ended), ended, self._opening)


def _once(function: Callable[[], None]) -> Callable[[], None]:
    """``function``, called on the first call only (a session's place is given back once)."""
    called = False

    def once() -> None:
        nonlocal called
        if not called:
            called = True
            function()

    return once
