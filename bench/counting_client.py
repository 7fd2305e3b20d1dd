"""A minimal XMPP client for benchmarks: logs in, then finds message bodies by a byte scan.

A full client (slixmpp) builds a stanza object for every message it receives, and in the
webhook benchmark it shared the benchmark's process with the load generator: at around
400 µs of CPU a message it cost nearly as much as the gateway it measured, on a 2-core
machine where every process competes. This one does SASL PLAIN, binds a resource and sends
its presence, and from then on only scans the bytes it reads for ``<body>PREFIX N</body>``:
a few microseconds a message, so the measure is of the gateway, not of its receiver.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import time
from collections.abc import Callable

from transports.quick_ack import ack_now, ack_socket

NS_CLIENT = "jabber:client"
NS_STREAM = "http://etherx.jabber.org/streams"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
#: A body the benchmark posted: a word, a space and the post's number.
BODY = re.compile(rb"<body>([a-z]+) (\d+)</body>")
END = b"</message>"


class CountingClient:
    """One logged-in session; ``on_body(word, number, arrived)`` for each posted body read."""

    def __init__(self, jid: str, password: str, host: str, port: int) -> None:
        self.user, _, self.domain = jid.partition("@")
        self.password = password
        self.host = host
        self.port = port
        self.on_body: Callable[[bytes, int, float], None] | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    async def connect(self, timeout: float = 30.0) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        await asyncio.wait_for(self._log_in(), timeout)
        self._task = asyncio.create_task(self._scan())

    async def _log_in(self) -> None:
        self._open()
        await self._until(b"</stream:features>")
        token = base64.b64encode(f"\0{self.user}\0{self.password}".encode()).decode()
        self._send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{token}</auth>")
        if b"<success" not in await self._until(b"success", b"failure"):
            raise ConnectionError(f"{self.user}@{self.domain}: authentication failed")
        self._open()  # the stream restarts after SASL
        await self._until(b"</stream:features>")
        self._send(
            f"<iq type='set' id='bind'><bind xmlns='{NS_BIND}'>"
            "<resource>bench</resource></bind></iq>"
        )
        if b"result" not in await self._until(b"</iq>"):
            raise ConnectionError(f"{self.user}@{self.domain}: bind failed")
        self._send("<presence/>")

    def _open(self) -> None:
        self._send(
            f"<?xml version='1.0'?><stream:stream xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAM}'"
            f" to='{self.domain}' version='1.0'>"
        )

    def _send(self, text: str) -> None:
        assert self._writer is not None
        self._writer.write(text.encode())

    async def _until(self, *markers: bytes) -> bytes:
        """What is read until one of ``markers`` (login only: the server answers each step
        before the next is sent, so nothing past the marker is lost)."""
        assert self._reader is not None
        seen = b""
        while not any(marker in seen for marker in markers):
            chunk = await self._reader.read(65536)
            if not chunk:
                raise ConnectionError(f"stream closed; read {seen!r}")
            seen += chunk
        return seen

    def count(self, word: bytes, total: int) -> asyncio.Event:
        """Count the bodies starting with ``word`` from now on; the event is set at ``total``."""
        received = 0
        done = asyncio.Event()

        def on_body(found: bytes, _number: int, _arrived: float) -> None:
            nonlocal received
            if found == word:
                received += 1
                if received == total:
                    done.set()

        self.on_body = on_body
        return done

    async def _scan(self) -> None:
        assert self._reader is not None and self._writer is not None
        carry = b""
        while True:
            chunk = await self._reader.read(262144)
            if not chunk:
                return
            ack_now(ack_socket(self._writer.transport))
            arrived = time.perf_counter()
            data = carry + chunk
            # Only whole messages are scanned: a body split between two reads is found once.
            end = data.rfind(END) + len(END)
            if end < len(END):
                carry = data
                continue
            carry = data[end:]
            if self.on_body is not None:
                for word, number in BODY.findall(data, 0, end):
                    self.on_body(word, int(number), arrived)

    async def close(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._send("</stream:stream>")
                await asyncio.wait_for(self._writer.drain(), 5)
            self._writer.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
