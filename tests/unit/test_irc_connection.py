"""The IRC connection as an asyncio protocol: lines across reads, throttle, quit, closing.

A fake transport stands for the socket, so what the connection writes, and when, is seen
exactly, without a server.
"""

from __future__ import annotations

import asyncio
from typing import Any

from transports.irc.connection import ConnectOptions, IrcConnection
from transports.irc.line_reader import MAX_READ_LINE
from transports.irc.protocol import IrcLine


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.written.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def lines(self) -> list[str]:
        return b"".join(self.written).decode().split("\r\n")[:-1]


def connection(**options: Any) -> tuple[IrcConnection, FakeTransport, list[IrcLine], list[str]]:
    lines: list[IrcLine] = []
    reasons: list[str] = []
    conn = IrcConnection(
        ConnectOptions("irc.example", 6667, "me", tls=False, **options),
        lines.append,
        lambda _conn, why: reasons.append(why),
    )
    transport = FakeTransport()
    conn.connection_made(transport)
    conn.registered = True
    return conn, transport, lines, reasons


async def test_lines_split_across_reads_and_crlf_variants() -> None:
    conn, _, lines, _ = connection(burst=None)
    conn.data_received(b":a!u@h PRIVMSG #c :one\r\n:a!u@h PRIV")
    conn.data_received(b"MSG #c :two\n:a!u@h PRIVMSG #c :thr")
    conn.data_received(b"ee\r\n")
    assert [line.params[1] for line in lines] == ["one", "two", "three"]


async def test_an_overlong_line_is_skipped_and_the_next_one_read() -> None:
    conn, _, lines, reasons = connection(burst=None)
    conn.data_received(b":a!u@h PRIVMSG #c :" + b"x" * (MAX_READ_LINE + 10))
    conn.data_received(b"x" * 1000)
    conn.data_received(b"yyy\r\n:a!u@h PRIVMSG #c :after\r\n")
    assert [line.params[1] for line in lines] == ["after"]
    assert not reasons


async def test_ping_is_answered_past_the_throttle() -> None:
    conn, transport, _, _ = connection(burst=1, lines_per_second=0.001)
    conn.send("PRIVMSG", "#c", "first")
    conn.send("PRIVMSG", "#c", "held")
    conn.data_received(b"PING :tok\r\n")
    await asyncio.sleep(0)  # what a turn of the loop writes leaves at its end
    assert transport.lines() == ["PRIVMSG #c first", "PONG tok"]
    assert conn.backlog == 1
    conn.close()


async def test_unthrottled_lines_leave_at_once_in_one_write() -> None:
    conn, transport, _, _ = connection(burst=None)
    for n in range(100):
        conn.send("PRIVMSG", "#c", f"line {n}")
    assert transport.written == [] and conn.backlog == 0  # at the end of this turn
    await asyncio.sleep(0)
    assert len(transport.written) == 1  # one system call, not a hundred
    assert transport.lines() == [f"PRIVMSG #c :line {n}" for n in range(100)]


async def test_written_is_told_once_the_line_leaves_the_throttle() -> None:
    conn, transport, _, _ = connection(burst=1, lines_per_second=20.0)
    told: list[str] = []
    conn.send("PRIVMSG", "#c", "first", written=lambda: told.append("first"))
    conn.send("PRIVMSG", "#c", "held", written=lambda: told.append("held"))
    assert told == ["first"] and conn.backlog == 1
    await asyncio.sleep(0.1)
    assert told == ["first", "held"] and transport.lines()[-1] == "PRIVMSG #c held"


async def test_a_line_dropped_at_close_is_never_told_written() -> None:
    conn, _, _, _ = connection(burst=1, lines_per_second=0.001)
    told: list[str] = []
    conn.send("PRIVMSG", "#c", "first")
    conn.send("PRIVMSG", "#c", "held", written=lambda: told.append("held"))
    conn.close()
    await asyncio.sleep(0)
    assert told == []


async def test_throttle_lets_a_burst_through_then_paces() -> None:
    conn, transport, _, _ = connection(burst=3, lines_per_second=50.0)
    for n in range(6):
        conn.send("PRIVMSG", "#c", f"line {n}")
    await asyncio.sleep(0)
    assert len(transport.lines()) == 3 and conn.backlog == 3
    await asyncio.sleep(0.2)
    assert transport.lines() == [f"PRIVMSG #c :line {n}" for n in range(6)]
    assert conn.backlog == 0


async def test_paused_socket_queues_and_resumes_in_order() -> None:
    conn, transport, _, _ = connection(burst=None)
    conn.pause_writing()
    conn.send("PRIVMSG", "#c", "a")
    conn.send("PRIVMSG", "#c", "b")
    assert transport.written == [] and conn.backlog == 2
    conn.resume_writing()
    conn.send("PRIVMSG", "#c", "c")
    await asyncio.sleep(0)
    assert transport.lines() == ["PRIVMSG #c a", "PRIVMSG #c b", "PRIVMSG #c c"]


async def test_quit_closes_after_what_was_queued() -> None:
    conn, transport, _, reasons = connection(burst=1, lines_per_second=50.0)
    conn.send("PRIVMSG", "#c", "last words")
    conn.send("PRIVMSG", "#c", "really last")
    conn.quit("bye")
    assert not transport.closed
    await asyncio.sleep(0.2)
    assert transport.lines() == ["PRIVMSG #c :last words", "PRIVMSG #c :really last", "QUIT bye"]
    assert transport.closed and reasons == ["quit"] and conn.closed


async def test_connection_lost_reports_once_with_the_server_error() -> None:
    conn, _, _, reasons = connection(burst=None)
    conn.data_received(b"ERROR :Closing link (K-lined)\r\n")
    conn.connection_lost(None)
    conn.connection_lost(ConnectionResetError("again"))
    assert reasons == ["the server said: Closing link (K-lined)"]
    conn.send("PRIVMSG", "#c", "after close")  # dropped, no error
