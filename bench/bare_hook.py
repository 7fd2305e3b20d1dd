"""The ceiling of bench/webhook.py: a bare aiohttp handler, in a process of its own.

Run by the benchmark as ``python bench/bare_hook.py PORT``; it prints ``ready`` once it
listens. The handler reads the body and answers 202 with a small JSON body, the least a
webhook endpoint does; nothing slows it down and nothing else runs in its process, as
nothing else runs in the gateway's: both sides of the ratio are a server process of their
own, loaded by the same client.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.Response]]


async def accept(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"id": "x"}, status=202)


async def serve(port: int, handler: Handler = accept) -> None:
    """Answer posts to ``/hooks/{name}`` with ``handler`` on ``port``, until ended."""
    app = web.Application()
    app.router.add_post("/hooks/{name}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()  # until the benchmark ends the process


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
