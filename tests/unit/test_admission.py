"""Which connections a listener takes, and when (transports/admission.py).

The rates are pure and checked with a clock of the test's own; the admission is checked on
real sockets over loopback, with a session that only greets, so that what is measured is who
is let in and when, not aiosmtpd (tests/e2e/test_abuse_redteam.py runs the real SMTP
listener).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

import transports.admission as admission_module
from transports.admission import Admission, ClientRates, Limits, client_of, take_connections
from transports.listening import listening_sockets

GREETING = b"220 hello\r\n"
REFUSAL = b"421 busy\r\n"
#: Bounds that none of the tests reaches but those it changes
LOOSE = Limits(
    sessions=100,
    sessions_per_client=100,
    burst=100,
    per_second=100.0,
    waiting=100,
    waiting_per_client=100,
    place_wait_seconds=0.5,
    answers_per_second=1000,
    refusal=REFUSAL,
)


@pytest.mark.parametrize(
    ("address", "client"),
    [
        (("192.0.2.7", 25), "192.0.2.7"),
        (("2001:db8:1:2:aaaa::1", 25, 0, 0), "2001:db8:1:2::/64"),
        (("2001:db8:1:2:bbbb::9", 25, 0, 0), "2001:db8:1:2::/64"),
        (("::ffff:192.0.2.7", 25, 0, 0), "192.0.2.7"),
        (("not an address", 0), "not an address"),
    ],
)
def test_a_client_is_its_ipv4_address_or_its_ipv6_64(
    address: tuple[object, ...], client: str
) -> None:
    assert client_of(address) == client


def test_a_client_connects_a_burst_at_once_then_at_the_rate() -> None:
    rates = ClientRates(burst=3, per_second=10.0)
    assert [rates.take("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert rates.take("a", 0.0) == pytest.approx(0.1)
    assert rates.take("a", 0.0) == pytest.approx(0.2)
    assert rates.take("b", 0.0) == 0.0  # another client has a bucket of its own
    # The waits taken are kept: 0.05 s later the next waits 0.25 s.
    assert rates.take("a", 0.05) == pytest.approx(0.25)


def test_a_turn_given_back_is_the_next_clients() -> None:
    rates = ClientRates(burst=1, per_second=10.0)
    assert rates.take("a", 0.0) == 0.0
    assert rates.take("a", 0.0) == pytest.approx(0.1)
    rates.give_back("a")
    assert rates.take("a", 0.0) == pytest.approx(0.1)


def test_a_full_bucket_is_forgotten_and_the_table_is_bounded() -> None:
    rates = ClientRates(burst=2, per_second=10.0, max_clients=2)
    rates.take("a", 0.0)
    rates.take("b", 0.0)
    # Two clients remembered: a third waits one interval, and is not remembered.
    assert rates.take("c", 0.0) == pytest.approx(0.1)
    assert len(rates) == 2
    # Once their buckets are full again they are forgotten, and "c" gets its burst.
    assert rates.take("c", 1.0) == 0.0
    assert len(rates) == 1


class Greeter:
    """The session the admission opens, reduced to a greeting: records who was served."""

    def __init__(self) -> None:
        self.served: list[str] = []
        self.admission: Admission | None = None

    def serve(self, sock: socket.socket, client: str) -> None:
        self.served.append(client)
        sock.send(GREETING)
        sock.close()
        assert self.admission is not None
        self.admission.ended(client)


@contextlib.asynccontextmanager
async def listening(
    limits: Limits, greeter: Greeter | None = None
) -> AsyncIterator[tuple[int, Greeter, list[int]]]:
    """A listener on loopback with the admission in front, within ``limits``: its port, the
    greeter, and the refusals counted."""
    greeter = greeter or Greeter()
    refusals: list[int] = []
    admission = Admission(limits, greeter.serve, lambda: refusals.append(1))
    greeter.admission = admission
    (sock,) = await listening_sockets("127.0.0.1", 0)
    task = asyncio.create_task(take_connections(sock, admission, "test"))
    try:
        yield sock.getsockname()[1], greeter, refusals
    finally:
        task.cancel()
        admission.close()
        sock.close()


async def first_line(port: int, source: str = "127.0.0.1") -> bytes:
    """The first line the listener answers a connection from ``source``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        return await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()


async def test_past_its_waiting_a_clients_connections_are_refused_others_are_not() -> None:
    limits = replace(LOOSE, burst=1, per_second=2.0, waiting_per_client=2)
    async with listening(limits) as (port, _greeter, refusals):
        lines = await asyncio.gather(*(first_line(port) for _ in range(6)))
        # One at once, two in their turn (0.5 s apart), three refused at once.
        assert sorted(lines) == [GREETING] * 3 + [REFUSAL] * 3
        assert len(refusals) == 3
        assert await first_line(port, "127.0.0.2") == GREETING


async def test_past_the_answers_of_a_second_the_listener_waits_for_the_next() -> None:
    """A client told 421 at once can come back at once; past ANSWERS_PER_SECOND the
    listener takes nothing more that second, and connections wait in the backlog."""
    limits = replace(LOOSE, burst=1, per_second=0.01, waiting_per_client=0, answers_per_second=5)
    loop = asyncio.get_running_loop()
    async with listening(limits) as (port, _greeter, refusals):
        started = loop.time()
        lines = await asyncio.gather(*(first_line(port) for _ in range(12)))
        elapsed = loop.time() - started
    assert lines.count(GREETING) == 1
    assert len(refusals) == 11
    # 11 refusals at 5 a second: the last waited for the third second.
    assert elapsed >= 2.0, elapsed


async def test_clients_of_many_addresses_are_answered_at_most_so_many_a_second() -> None:
    """Each within its own rate, but together bounded: one with many addresses (an IPv6
    /48) gets no more of the gateway than one with one."""
    loop = asyncio.get_running_loop()
    async with listening(replace(LOOSE, answers_per_second=5)) as (port, greeter, _refusals):
        started = loop.time()
        sources = [f"127.0.0.{10 + index}" for index in range(12)]
        lines = await asyncio.gather(*(first_line(port, source) for source in sources))
        elapsed = loop.time() - started
    assert lines == [GREETING] * 12
    assert sorted(greeter.served) == sorted(sources)
    assert elapsed >= 2.0, elapsed


class Holder(Greeter):
    """Sessions that greet and then stay until :meth:`release`."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[tuple[socket.socket, str]] = []

    def serve(self, sock: socket.socket, client: str) -> None:
        self.served.append(client)
        sock.send(GREETING)
        self.held.append((sock, client))

    def release(self) -> None:
        sock, client = self.held.pop(0)
        sock.close()
        assert self.admission is not None
        self.admission.ended(client)


async def test_a_connection_waits_a_moment_for_a_place() -> None:
    holder = Holder()
    loop = asyncio.get_running_loop()
    async with listening(replace(LOOSE, sessions=2), holder) as (port, _greeter, refusals):
        held = [
            await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
            for source in ("127.0.0.10", "127.0.0.11")
        ]
        for reader, _writer in held:
            assert await asyncio.wait_for(reader.readline(), 10) == GREETING
        # Both places are taken: the next one waits for a place...
        third = asyncio.create_task(first_line(port, "127.0.0.12"))
        await asyncio.sleep(0.2)
        assert not third.done()
        holder.release()
        # ...and gets the first that frees up.
        assert await third == GREETING
        # None frees up within SESSION_WAIT_SECONDS: a 421 then.
        started = loop.time()
        assert await first_line(port, "127.0.0.13") == REFUSAL
        assert loop.time() - started >= 0.45
        assert len(refusals) == 1
        for _reader, writer in held:
            writer.close()
        while holder.held:
            holder.release()


async def test_every_connection_taken_in_a_turn_is_answered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A turn takes at most BACKLOG connections; one accepted past it and then dropped was
    hung up on without a word (seen under a flood: a few connections in a thousand)."""
    monkeypatch.setattr(admission_module, "BACKLOG", 2)
    async with listening(LOOSE) as (port, greeter, _refusals):
        lines = await asyncio.gather(*(first_line(port) for _ in range(15)))
    assert lines == [GREETING] * 15
    assert len(greeter.served) == 15


class Failing(Greeter):
    """A session that fails to start the first time."""

    def serve(self, sock: socket.socket, client: str) -> None:
        if not self.served:
            self.served.append("failed")
            raise RuntimeError("no session")
        super().serve(sock, client)


async def test_a_session_that_cannot_start_gives_its_place_back_and_the_listener_goes_on() -> None:
    async with listening(replace(LOOSE, sessions=1), Failing()) as (port, greeter, _refusals):
        assert await first_line(port) == b""
        assert await first_line(port) == GREETING
    assert greeter.served == ["failed", "127.0.0.1"]
