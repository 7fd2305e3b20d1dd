"""Many users on one network: connection pacing, the per-server cap, jitter, WEBIRC, identd."""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import socket
from types import SimpleNamespace
from typing import Any, cast

import pytest

from transports.irc import identd
from transports.irc.echoes import MAX_WAITING, Echoes
from transports.irc.pacing import ServerGate, gate, jittered
from transports.irc.settings import IrcSettings
from transports.irc.transport import IrcTransport
from transports.irc.webirc import identity, webirc_params


async def test_connections_to_one_server_leave_at_the_configured_pace() -> None:
    server = ServerGate(per_second=20.0, max_connections=None)
    loop = asyncio.get_running_loop()
    start = loop.time()
    times: list[float] = []

    async def one() -> None:
        await server.wait_turn()
        times.append(loop.time() - start)

    await asyncio.gather(*(one() for _ in range(6)))
    assert times[0] < 0.03
    assert times[-1] >= 5 / 20.0 - 0.01  # six connections: five gaps of 1/20 s
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 1 / 20.0 - 0.01


def test_the_cap_per_server_is_held_and_given_back() -> None:
    server = ServerGate(per_second=5.0, max_connections=2)
    assert server.take() and server.take()
    assert not server.take()
    server.give_back()
    assert server.take()


def test_one_gate_per_server_shared_and_following_the_config() -> None:
    first = gate("IRC.Example.net", 6697, 5.0, 3)
    again = gate("irc.example.net", 6697, 2.0, None)
    assert first is again and again.per_second == 2.0 and again.max_connections is None
    assert gate("irc.example.net", 6667) is not first


def test_jitter_spreads_delays_within_bounds() -> None:
    delays = {jittered(10.0) for _ in range(200)}
    assert all(5.0 <= d <= 15.0 for d in delays)
    assert len(delays) > 150  # not in step


def test_webirc_identity_is_stable_pseudonymous_and_per_user() -> None:
    host, ip = identity("Alice@Example.org/phone", "pw")
    assert identity("alice@example.org", "pw") == (host, ip)  # resource and case ignored
    assert host.endswith(".example.org") and "alice" not in host
    address = ipaddress.IPv6Address(ip)
    assert address in ipaddress.IPv6Network("fd00::/8")
    assert identity("bob@example.org", "pw") != (host, ip)
    assert identity("alice@example.org", "other-network-pw") != (host, ip)
    assert webirc_params("alice@example.org", "pw") == ("pw", "portway", host, ip)


def test_identd_answers_only_open_connections() -> None:
    identd.register(40001, 6667, "alice")
    try:
        assert identd.answer("40001 , 6667\r\n") == "40001, 6667 : USERID : UNIX : alice"
        assert identd.answer("40001,6668") == "40001, 6668 : ERROR : NO-USER"
    finally:
        identd.unregister(40001, 6667)
    assert identd.answer("40001, 6667") == "40001, 6667 : ERROR : NO-USER"


@pytest.mark.parametrize("query", ["", "x, y", "1, 2, 3", "70000, 1", "0, 6667", "1;2"])
def test_identd_refuses_bad_queries(query: str) -> None:
    assert "ERROR : INVALID-PORT" in identd.answer(query)


async def test_identd_server_over_tcp() -> None:
    server = await identd.serve("127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    identd.register(40002, 6697, "bob")
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"40002, 6697\r\n")
        reply = await asyncio.wait_for(reader.readline(), 5)
        writer.close()
        assert reply == b"40002, 6697 : USERID : UNIX : bob\r\n"
    finally:
        identd.unregister(40002, 6697)
        server.close()
        await server.wait_closed()


async def test_identd_strangers_holding_connections_keep_no_one_out() -> None:
    """Unbounded before: each connection held open was a task and a descriptor for 10 s, so a
    stranger could take every descriptor of the process (and with them, every transport's
    new connections)."""
    server = await identd.serve("127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    identd.register(40003, 6697, "carol")
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(20)]
    try:
        # The places of one address are taken; its next connections are closed unanswered.
        per_client = identd.IDENT_LIMITS.sessions_per_client
        closed = await asyncio.gather(
            *(asyncio.wait_for(reader.read(), 5) for reader, _ in held[per_client:])
        )
        assert closed == [b""] * (20 - per_client)
        # Another address is answered meanwhile.
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, local_addr=("127.0.0.2", 0)
        )
        writer.write(b"40003, 6697\r\n")
        assert await asyncio.wait_for(reader.readline(), 5) == (
            b"40003, 6697 : USERID : UNIX : carol\r\n"
        )
        writer.close()
    finally:
        identd.unregister(40003, 6697)
        for _, writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


def test_echoes_give_ids_to_the_first_line_of_each_message_in_order() -> None:
    echoes = Echoes()
    echoes.expect("#a", 2, "id1", "o1")
    echoes.expect("#b", 1, "id2", None)
    echoes.expect("#a", 1, "id3", "o3")
    first = echoes.echoed("#a")
    assert first is not None and (first.xmpp_id, first.origin_id) == ("id1", "o1")
    b = echoes.echoed("#b")
    assert b is not None and b.xmpp_id == "id2"
    second = echoes.echoed("#a")
    assert second is not None and second.xmpp_id is None  # the second line of message 1
    refused = echoes.forget("#a")  # 404: message 3 will not be echoed
    assert refused is not None and refused.xmpp_id == "id3"
    assert echoes.echoed("#a") is None


def test_echoes_waiting_are_bounded() -> None:
    echoes = Echoes()
    echoes.expect("#a", MAX_WAITING + 5, "id", None)
    count = 0
    while echoes.echoed("#a") is not None:
        count += 1
    assert count == MAX_WAITING


class NoRows:
    async def fetch_all(self, *_args: Any, **_kwargs: Any) -> list[Any]:
        return []


async def test_the_transport_runs_identd_while_it_runs() -> None:
    """identd_port set: the transport answers ident queries from start to stop."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = IrcSettings.model_validate(
        {
            "jid": "irc.example.org",
            "secret": "a-component-secret",
            "identd_port": port,
            "identd_host": "127.0.0.1",
        }
    )
    host = SimpleNamespace(domain="irc.example.org", store=NoRows())
    transport = IrcTransport(settings, cast(Any, host))
    await transport.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"40003, 6667\r\n")
        assert await asyncio.wait_for(reader.readline(), 5) == b"40003, 6667 : ERROR : NO-USER\r\n"
        writer.close()
    finally:
        await transport.stop()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
