"""Reading a request body from outside without letting its sender choose how much is kept.

Every route that takes a body from the internet decides on its cap before it reads: a
``Content-Length`` over the cap is refused before a byte is read, and a chunked body is cut
off where it passes the cap. aiohttp discards whatever of the body is left, without keeping it.
"""

from __future__ import annotations

from aiohttp import web


async def read_capped(request: web.Request, limit: int) -> bytes | None:
    """The body, or ``None`` as soon as it is known to be over ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.readany():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
