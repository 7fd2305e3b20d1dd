"""Immediate ACKs are asked for on TCP sockets only, and never fail a read."""

from __future__ import annotations

import asyncio
import socket

import pytest

from transports.quick_ack import ack_now, ack_socket


class Reading(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport


class Recording:
    """A socket's stand-in that keeps the options set on it."""

    def __init__(self) -> None:
        self.options: list[tuple[int, int, int]] = []

    def setsockopt(self, level: int, option: int, value: int) -> None:
        self.options.append((level, option, value))


@pytest.mark.skipif(not hasattr(socket, "TCP_QUICKACK"), reason="TCP_QUICKACK is Linux's")
async def test_a_tcp_socket_is_asked_to_ack_at_once_after_each_read() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
    try:
        sock = ack_socket(transport)
        assert sock is not None and sock.family == socket.AF_INET
        ack_now(sock)  # on the real socket: accepted by the kernel
        recording = Recording()
        ack_now(recording)
        ack_now(recording)
        assert recording.options == [(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)] * 2
    finally:
        transport.close()
        server.close()
        await server.wait_closed()


async def test_a_unix_socket_is_left_alone() -> None:
    left, right = socket.socketpair()
    transport, _ = await asyncio.get_running_loop().connect_accepted_socket(Reading, left)
    try:
        assert ack_socket(transport) is None
        ack_now(None)  # what a connection without a TCP socket calls: nothing happens
    finally:
        transport.close()
        right.close()


def test_a_closed_socket_does_not_fail_the_read() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.close()
    ack_now(sock)
