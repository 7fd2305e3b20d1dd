"""Body caps on the HTTP listener: decided from Content-Length, enforced while streaming.

An in-process aiohttp server per test; the e2e abuse suite (tests/e2e/test_abuse_http.py)
shows the same against the real gateway, with timings and memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from component.http import MAX_BODY_BYTES, make_app
from component.metrics import Metrics
from transports.http_body import read_capped
from transports.sms import webhooks

LIMIT = 100


async def echo(request: web.Request) -> web.Response:
    body = await read_capped(request, LIMIT)
    return web.Response(status=413) if body is None else web.Response(body=body)


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_bodies_up_to_the_cap_pass_and_larger_ones_get_413() -> None:
    app = web.Application()
    app.router.add_post("/body", echo)
    async with TestClient(TestServer(app)) as client:
        response = await client.post("/body", data=b"x" * LIMIT)
        assert (response.status, await response.read()) == (200, b"x" * LIMIT)
        response = await client.post("/body", data=b"x" * (LIMIT + 1))
        assert response.status == 413
        # Chunked: no Content-Length to decide by; the cap is met while reading.
        response = await client.post("/body", data=chunks(b"x" * 60, b"x" * 60))
        assert response.status == 413
        response = await client.post("/body", data=chunks(b"x" * 50, b"x" * 50))
        assert (response.status, len(await response.read())) == (200, LIMIT)


async def test_the_app_buffers_no_more_than_twilio_callbacks_need() -> None:
    app = make_app(dict, Metrics(), None)  # type: ignore[arg-type]
    assert app._client_max_size == MAX_BODY_BYTES == webhooks.MAX_BODY_BYTES
    assert MAX_BODY_BYTES <= 64 * 1024
