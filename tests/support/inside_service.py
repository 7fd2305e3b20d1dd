"""A service inside the gateway's network, as an attacker would aim the gateway at it.

It counts every TCP connection and keeps every byte it receives, so a test can show that
nothing reached it (zero connections) or what did (a password, a smuggled command). Given an
``answer``, it replies once and closes, like a small HTTP service whose reply would leak.
"""

from __future__ import annotations

import asyncio


class InsideService:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, answer: bytes | None = None):
        self.host = host
        self.port = port
        self.answer = answer
        self.connections = 0
        self.received = bytearray()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            if self.answer is not None:
                self.received += await reader.read(4096)
                writer.write(self.answer)
                await writer.drain()
            else:
                while data := await reader.read(4096):
                    self.received += data
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def wait_for(self, data: bytes, timeout: float = 15.0) -> None:
        async with asyncio.timeout(timeout):
            while data not in self.received:
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def http_answer(body: bytes) -> bytes:
    """A whole HTTP/1.1 response carrying ``body`` as text."""
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
