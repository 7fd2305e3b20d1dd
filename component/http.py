"""The one HTTP listener: /healthz, /metrics, and the routes transports add."""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from component.listener import CappedSite
from component.metrics import Metrics
from mappings.store import Store

#: The cap aiohttp applies to ``request.read()``, ``post()`` and ``json()``. No route reads
#: through those: each one that takes a body streams it under its own cap, checked before
#: reading (Twilio's callbacks: 64 KiB; hooks: ``max_body_bytes``). This is the backstop for a
#: route that forgets to, kept at the largest body any fixed cap allows, so it never buffers
#: megabytes for a stranger.
MAX_BODY_BYTES = 64 * 1024
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
    """Start the HTTP listener for ``app``, within its cap (component/listener.py) and the
    timeouts.

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
