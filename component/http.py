"""The one HTTP listener: /healthz, /metrics, and the routes transports add."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from component.metrics import Metrics
from mappings.store import Store

#: The cap aiohttp applies to ``request.read()``, ``post()`` and ``json()``. No route reads
#: through those: each one that takes a body streams it under its own cap, checked before
#: reading (Twilio's callbacks: 64 KiB; hooks: ``max_body_bytes``). This is the backstop for a
#: route that forgets to, kept at the largest body any fixed cap allows, so it never buffers
#: megabytes for a stranger.
MAX_BODY_BYTES = 64 * 1024


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
        for (transport, state), count in (await store.outbox.counts()).items():
            metrics.outbox_items.labels(transport, state).set(count)
        waiting = await store.inbound.set_aside_counts()
        metrics.inbound_set_aside_items.clear()  # a transport whose events were all retried
        for transport, count in waiting.items():
            metrics.inbound_set_aside_items.labels(transport).set(count)
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", prometheus)
    return app
