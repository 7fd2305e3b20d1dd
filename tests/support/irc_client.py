"""A tiny raw IRC client for tests, independent of the gateway's IRC library.

It stands for the people on the IRC side. Being raw, it shows exactly which lines the
gateway put on the wire, and a bug in the library the gateway uses cannot hide itself by
being on both ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable

LinePredicate = Callable[[str], bool]


class RawIrcClient:
    """One IRC connection: registers a nick, answers PING, buffers every line it receives."""

    def __init__(self, host: str, port: int, nick: str, password: str | None = None) -> None:
        self.host = host
        self.port = port
        self.nick = nick
        #: the server password (PASS), for a server that wants one
        self.password = password
        #: Every line received, without CRLF, in order.
        self.lines: list[str] = []
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._pending: list[str] = []
        self._read_task: asyncio.Task[None] | None = None
        self._closed = False

    async def connect(self, timeout: float = 10.0) -> str:
        """Register with NICK/USER and wait for 001 (welcome); returns the 001 line."""
        self._reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), timeout
        )
        self._read_task = asyncio.create_task(self._read_loop())
        if self.password:
            await self.send(f"PASS {self.password}")
        await self.send(f"NICK {self.nick}")
        await self.send(f"USER {self.nick} 0 * :{self.nick} (test)")
        # 433/432: nick in use or invalid; ERROR: the server refused us. Fail fast on those.
        line = await self.expect(r"^(:\S+ (001|432|433) |ERROR )", timeout=timeout)
        if " 001 " not in line:
            raise ConnectionError(f"IRC {self.nick} was not registered: {line}")
        return line

    async def _read_loop(self) -> None:
        """Read lines, answer PING at once (so the server keeps us), queue everything."""
        assert self._reader is not None
        try:
            while True:
                raw = await self._reader.readline()
                if not raw:
                    break
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                self.lines.append(line)
                if line.startswith("PING"):
                    await self.send("PONG" + line[4:])
                self._queue.put_nowait(line)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._queue.put_nowait(None)  # wakes expect(): the connection is gone

    async def send(self, line: str) -> None:
        """Send one raw line; CRLF is added."""
        if self._writer is None:
            raise RuntimeError("not connected")
        self._writer.write(line.encode("utf-8") + b"\r\n")
        await self._writer.drain()

    async def expect(
        self, predicate_or_regex: LinePredicate | str | re.Pattern[str], timeout: float = 10.0
    ) -> str:
        """Wait for a received line that matches (regex searched, or a predicate).

        Lines that do not match stay buffered, so a later expect can still find them.
        """
        predicate: LinePredicate
        if isinstance(predicate_or_regex, str | re.Pattern):
            pattern = re.compile(predicate_or_regex)

            def predicate(line: str) -> bool:
                return pattern.search(line) is not None

        else:
            predicate = predicate_or_regex

        for index, line in enumerate(self._pending):
            if predicate(line):
                return self._pending.pop(index)
        deadline = time.monotonic() + timeout
        closed = False
        while not closed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                item = await asyncio.wait_for(self._queue.get(), remaining)
            except TimeoutError:
                break
            if item is None:
                closed = True
                self._queue.put_nowait(None)  # later expects fail fast too
                continue
            if predicate(item):
                return item
            self._pending.append(item)
        why = "connection closed" if closed else f"nothing matched within {timeout}s"
        recent = "\n".join(self.lines[-15:]) or "(nothing received)"
        raise TimeoutError(
            f"IRC {self.nick}: {why} ({predicate_or_regex!r}); last lines:\n{recent}"
        )

    async def join(self, channel: str, timeout: float = 10.0) -> None:
        """JOIN and wait for the end of NAMES (366), when the join is complete."""
        await self.send(f"JOIN {channel}")
        await self.expect(
            rf"^:\S+ 366 {re.escape(self.nick)} {re.escape(channel)} ", timeout=timeout
        )

    async def privmsg(self, target: str, text: str) -> None:
        """Send a PRIVMSG to a channel or nick."""
        await self.send(f"PRIVMSG {target} :{text}")

    async def close(self, quit_message: str | None = "bye") -> None:
        """QUIT (if still connected) and close the socket."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            if quit_message is not None:
                with contextlib.suppress(Exception):
                    await self.send(f"QUIT :{quit_message}")
            self._writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._writer.wait_closed(), 5)
        if self._read_task is not None:
            self._read_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._read_task

    async def __aenter__(self) -> RawIrcClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
