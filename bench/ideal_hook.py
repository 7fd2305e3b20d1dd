"""The least a webhook gateway can do, in a process of its own: bench/webhook.py's second bound.

Run by the benchmark as ``python bench/ideal_hook.py PORT XMPP_PORT DOMAIN SECRET TO``; it
prints ``ready`` once it is a component of the XMPP server (XEP-0114) and listens for posts.
Each post is a bare aiohttp handler (bench/bare_hook.py) that also writes the post's body to
``TO`` on the component stream before it answers 202, as the same ``<message/>`` the gateway
writes (its own renderer, ids and all, so that the XMPP server and the client do the same
work for both): no token check, no storage, no confirmation from the server. Nothing it
takes survives a restart, so it is no gateway; it says how much of the bare handler's rate
*any* gateway in Python that writes what Portway writes can deliver over XMPP on this
machine, where the HTTP server, the XMPP server and the client share the cores. The
gateway's ratio is set against this one, too.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import sys
from pathlib import Path
from xml.sax.saxutils import quoteattr

import bare_hook
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from component.render import message_xml
from mappings.stanza_ids import new_stanza_id
from transports.events import InboundMessage
from transports.webhook.inbound import new_post_id

STREAM = (
    "<stream:stream xmlns='jabber:component:accept'"
    " xmlns:stream='http://etherx.jabber.org/streams' to={to}>"
)


OPENING = re.compile(rb"<stream:stream[^>]*>")
STREAM_ID = re.compile(rb"\sid=['\"]([^'\"]+)")


async def until(reader: asyncio.StreamReader, pattern: re.Pattern[bytes]) -> bytes:
    """What the server sent, up to the first match of ``pattern``."""
    read = b""
    while (found := pattern.search(read)) is None:
        chunk = await reader.read(4096)
        if not chunk:
            raise RuntimeError(f"the XMPP server hung up: {read!r}")
        read += chunk
    return read[: found.end()]


class Component:
    """A component stream, logged in: it writes and never reads past the handshake."""

    def __init__(self, domain: str, to: str) -> None:
        self.domain = domain
        self.to = to
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self, port: int, secret: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(STREAM.format(to=quoteattr(self.domain)).encode())
        opening = await until(reader, OPENING)
        stream_id = STREAM_ID.search(opening)
        assert stream_id is not None, opening
        digest = hashlib.sha1(stream_id[1] + secret.encode()).hexdigest()
        writer.write(f"<handshake>{digest}</handshake>".encode())
        answer = await until(reader, re.compile(rb"<handshake\s*/>|</handshake>|</stream:stream>"))
        if b"handshake" not in answer:
            raise RuntimeError(f"handshake refused: {answer!r}")
        self.writer = writer
        # Prosody's own pings and errors are never read: drain them so its buffer stays empty.
        asyncio.get_running_loop().create_task(self._drain(reader))

    @staticmethod
    async def _drain(reader: asyncio.StreamReader) -> None:
        while await reader.read(65536):
            pass

    def message(self, body: str) -> None:
        """``body`` as the gateway writes a hook's post: the same renderer, the same ids."""
        assert self.writer is not None
        own_id = new_stanza_id()
        event = InboundMessage(self.to, "bench", body, remote_id=new_post_id(), xmpp_id=own_id)
        self.writer.write(
            message_xml(
                event, to=self.to, sender=f"bench@{self.domain}", msg_id=own_id, domain=self.domain
            ).encode()
        )


async def serve(port: int, xmpp_port: int, domain: str, secret: str, to: str) -> None:
    component = Component(domain, to)
    await component.connect(xmpp_port, secret)

    async def accept(request: web.Request) -> web.Response:
        component.message((await request.read()).decode())
        return web.json_response({"id": "x"}, status=202)

    await bare_hook.serve(port, accept)


if __name__ == "__main__":
    port, xmpp_port, domain, secret, to = sys.argv[1:6]
    asyncio.run(serve(int(port), int(xmpp_port), domain, secret, to))
