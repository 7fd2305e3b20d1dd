"""The one HTTP listener: /healthz, /metrics, and the routes transports add."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler, _ErrInfo
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from component.metrics import Metrics
from mappings.store import Store

#: The cap aiohttp applies to ``request.read()``, ``post()`` and ``json()``. No route reads
#: through those: each one that takes a body streams it under its own cap, checked before
#: reading (Twilio's callbacks: 64 KiB; hooks: ``max_body_bytes``). This is the backstop for a
#: route that forgets to, kept at the largest body any fixed cap allows, so it never buffers
#: megabytes for a stranger.
MAX_BODY_BYTES = 64 * 1024


#: Connections the listener serves at once; past it, a new one is closed as it comes. An
#: unfinished request holds what it has sent (up to :data:`MAX_HEADERS` headers of
#: :data:`MAX_FIELD_BYTES`: 128 KiB, about 250 KiB of the gateway's memory each), so this
#: bounds what strangers can hold to about 32 MiB; 600 such connections uncapped held 145.
MAX_CONNECTIONS = 128
#: Headers a request may have, and the longest one; Twilio and hook senders send a dozen or
#: two short ones, and a reverse proxy adds a few.
MAX_HEADERS = 32
MAX_FIELD_BYTES = 4096
#: What is read from a connection ahead of its handler (aiohttp's default is 256 KiB).
READ_BUFFER_BYTES = 64 * 1024
#: Seconds a connection may stay without a request under way, the first one's headers
#: included (aiohttp's own default is an hour).
IDLE_SECONDS = 30.0


class MalformedRequests(logging.Filter):
    """A malformed request from outside is the sender's problem, not the gateway's: one
    DEBUG line, not an ERROR with a traceback, so that strangers cannot fill the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            record.msg = f"refused a malformed HTTP request: {error.message}"[:200]
            record.args, record.exc_info, record.exc_text = None, None, None
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


#: aiohttp's per-request logger, with malformed requests quietened.
request_log = logging.getLogger("component.http.requests")
request_log.addFilter(MalformedRequests())


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start the HTTP listener for ``app``, within :data:`MAX_CONNECTIONS` and the timeouts.

    ``runner.cleanup()`` stops it, as with aiohttp's own sites.
    """
    runner = web.AppRunner(
        app,
        access_log=None,
        keepalive_timeout=IDLE_SECONDS,
        max_headers=MAX_HEADERS,
        max_field_size=MAX_FIELD_BYTES,
        read_bufsize=READ_BUFFER_BYTES,
        logger=request_log,
    )
    await runner.setup()
    try:
        await CappedSite(runner, host, port).start()
    except OSError:
        await runner.cleanup()
        raise
    return runner


class CappedSite(web.TCPSite):
    """aiohttp's TCP site, closing connections past :data:`MAX_CONNECTIONS` as they come."""

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site, so the runner stops it
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            capped(server, MAX_CONNECTIONS), self._host, self._port
        )


def capped(server: web.Server, limit: int) -> Callable[[], asyncio.BaseProtocol]:
    """A protocol factory like ``server`` that drops connections past ``limit`` at once."""

    # Counted here, not by the server's own list: that one learns of a connection only once
    # the loop gets to it, so a burst of accepts (a whole listen backlog) went past the cap.
    # Weak, so that a connection the loop fails to set up is not counted for ever.
    live: weakref.WeakSet[_DeafOnceRefused] = weakref.WeakSet()

    def connection() -> asyncio.BaseProtocol:
        if len(live) >= limit:
            return _Refused()
        protocol = _DeafOnceRefused(server(), live)
        live.add(protocol)
        return protocol

    return connection


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

    def __init__(self, handler: RequestHandler, live: weakref.WeakSet[_DeafOnceRefused]) -> None:
        self.handler = handler
        self.live = live
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
        self.live.discard(self)
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


class _Refused(asyncio.Protocol):
    """A connection over the cap: closed as it is made, nothing read."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.abort()


def make_app(
    health: Callable[[], dict[str, str]], metrics: Metrics, store: Store
) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)

    async def healthz(_request: web.Request) -> web.Response:
        components = health()
        ok = bool(components) and all(state == "connected" for state in components.values())
        return web.json_response(
            {"status": "ok" if ok else "degraded", "components": components},
            status=200 if ok else 503,
        )

    async def prometheus(_request: web.Request) -> web.Response:
        await metrics.read(store)
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", prometheus)
    return app
