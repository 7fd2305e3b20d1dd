"""Red-team checks of the HTTP listener: strangers cannot hold its memory with open requests.

The listener runs in-process on loopback (the same ``serve`` the gateway uses); the clients are
raw sockets, so a request can be left unfinished on purpose.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from component import http
from component.http import serve


@pytest.fixture
async def listener(unused_tcp_port: int) -> AsyncIterator[int]:
    app = web.Application()

    async def hello(_request: web.Request) -> web.Response:
        return web.Response(text="hello")

    app.router.add_get("/", hello)
    runner = await serve(app, "127.0.0.1", unused_tcp_port)
    yield unused_tcp_port
    await runner.cleanup()


async def get(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer


async def unfinished(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 4000 + b"\r\n")
    await writer.drain()
    return reader, writer


async def test_connections_past_the_cap_are_closed_at_once(
    listener: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = [await unfinished(listener) for _ in range(http.MAX_CONNECTIONS)]
    await asyncio.sleep(0.2)
    reader, writer = await unfinished(listener)
    assert await asyncio.wait_for(reader.read(), 2) == b""  # closed without an answer
    writer.close()
    for _reader, held_writer in held[:10]:
        held_writer.close()
    await asyncio.sleep(0.2)
    assert (await get(listener)).startswith(b"HTTP/1.1 200")
    for _reader, held_writer in held[10:]:
        held_writer.close()


async def test_a_request_whose_headers_never_end_is_closed_after_the_idle_time(
    unused_tcp_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http, "IDLE_SECONDS", 1.0)
    runner = await serve(web.Application(), "127.0.0.1", unused_tcp_port)
    try:
        reader, writer = await unfinished(unused_tcp_port)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
    finally:
        await runner.cleanup()


async def test_too_many_headers_are_refused(listener: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", listener)
    many = b"".join(b"X-H%d: v\r\n" % index for index in range(http.MAX_HEADERS + 1))
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert b" 400 " in answer.split(b"\r\n", 1)[0], answer[:100]


async def test_a_malformed_request_is_one_debug_line_not_an_error_traceback(
    listener: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Each malformed request used to log an ERROR with a traceback: strangers could fill
    the log at will."""
    caplog.set_level("DEBUG", logger="component.http.requests")
    reader, writer = await asyncio.open_connection("127.0.0.1", listener)
    writer.write(b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 8000 + b"\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert b" 400 Bad Request" in answer.split(b"\r\n", 1)[0]
    records = [r for r in caplog.records if r.name == "component.http.requests"]
    assert records, "the refusal is not logged at all"
    assert all(r.levelname == "DEBUG" and not r.exc_info for r in records)
    assert all(len(r.getMessage()) <= 200 for r in records)
