"""Bounds on what IRC input can make the gateway hold or send, and the checked connection."""

from __future__ import annotations

import asyncio
import socket

import pytest

from transports.egress import REFUSED_TEXT, parse_networks
from transports.irc.casemap import fold
from transports.irc.connection import ConnectOptions, IrcConnection, RegistrationFailed
from transports.irc.invites import PendingInvites
from transports.irc.limits import MAX_PENDING_INVITES, ReplyBudget, one_line, remember
from transports.irc.protocol import IrcLine


def test_one_line_makes_a_status_or_reason_sendable() -> None:
    assert one_line("gone\nfor lunch\r\n  back at 2") == "gone for lunch back at 2"
    assert one_line("a\0b") == "a b"
    assert one_line("\n\n") == ""
    assert len(one_line("x" * 5000)) == 390


def test_remember_keeps_the_newest() -> None:
    table: dict[str, int] = {}
    for number in range(10):
        remember(table, f"nick{number}", number, 3)
    assert table == {"nick7": 7, "nick8": 8, "nick9": 9}
    remember(table, "nick7", 70, 3)  # seen again: newest now
    remember(table, "nick10", 10, 3)
    assert list(table) == ["nick9", "nick7", "nick10"]


def test_reply_budget_drops_what_exceeds_it() -> None:
    budget = ReplyBudget(burst=3, every=10.0)
    start = budget._stamp
    assert [budget.take(start) for _ in range(5)] == [True, True, True, False, False]
    assert not budget.take(start + 5)
    assert budget.take(start + 10.1)
    assert not budget.take(start + 10.2)
    assert [budget.take(start + 1000) for _ in range(4)] == [True, True, True, False]


def test_pending_invites_are_bounded() -> None:
    invites = PendingInvites(fold)
    for number in range(MAX_PENDING_INVITES * 5):
        invites.sent(f"nick{number}", "#chan")
    assert len(invites._waiting) == MAX_PENDING_INVITES
    newest = f"nick{MAX_PENDING_INVITES * 5 - 1}"
    answer = invites.answer(IrcLine("341", ("me", newest, "#chan")))
    assert answer is not None and answer.nick == newest


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "169.254.169.254", "::ffff:127.0.0.1"])
async def test_a_checked_connection_never_reaches_a_refused_address(host: str) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    port = listener.getsockname()[1]
    options = ConnectOptions(host, port, "me", tls=False, allowed_networks=())
    conn = IrcConnection(options, lambda _line: None, lambda _conn, _why: None)
    try:
        with pytest.raises(RegistrationFailed) as refused:
            await conn.connect(timeout=5)
        assert refused.value.final
        assert str(refused.value) == REFUSED_TEXT
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody ever connected
    finally:
        listener.close()


async def test_an_allowed_network_is_reached_at_the_checked_address() -> None:
    accepted: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(await reader.readline())
        writer.write(b":irc 001 me :welcome\r\n")
        await writer.drain()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    options = ConnectOptions(
        "localhost", port, "me", tls=False, allowed_networks=parse_networks(["127.0.0.1"])
    )
    conn = IrcConnection(options, lambda _line: None, lambda _conn, _why: None)
    try:
        await conn.connect(timeout=5)
        assert conn.registered and accepted == [b"NICK me\r\n"]
    finally:
        conn.close()
        server.close()
        await server.wait_closed()
