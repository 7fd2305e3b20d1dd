"""The way out of an IRC connection: lines behind the throttle, one socket write per turn.

What is written during one turn of the event loop leaves in one write at the end of that turn,
in order: a write is a system call, and a burst of messages from XMPP arrives in one read.
A line leaves at once when nothing waits before it, and otherwise behind the throttle (or a
full socket buffer), on a timer.

A base class of :class:`~transports.irc.connection.IrcConnection` rather than an object of
its own: a gateway holds one connection per user and server, and another object (its header
and its link) for each would be part of what every user costs.
"""

from __future__ import annotations

import abc
import asyncio
from collections import deque
from collections.abc import Callable
from typing import TypeAlias

from transports.irc.throttle import TokenBucket

#: In the outgoing queue: close once everything before it is written (after a QUIT).
CLOSE_MARK = b""
#: What a line's sender is told once the line is written to the socket (delivery metrics).
Written: TypeAlias = Callable[[], None]
#: A line waiting in the queue: its bytes, and whom to tell when it is written, if anyone.
Queued: TypeAlias = bytes | tuple[bytes, Written]


class LineWriter(asyncio.Protocol):
    __slots__ = (
        "_bucket",
        "_closed",
        "_paused",
        "_pump_timer",
        "_queue",
        "_token_taken",
        "_transport",
        "_unsent",
    )

    def __init__(self, bucket: TokenBucket | None) -> None:
        self._transport: asyncio.Transport | None = None
        #: Lines waiting behind the throttle or for the socket (None when none wait: an
        #: empty deque alone is half a KiB, and a gateway holds thousands of connections).
        self._queue: deque[Queued] | None = None
        #: Bytes written during this turn of the loop, to leave at its end (None: nothing).
        self._unsent: list[bytes] | None = None
        self._bucket = bucket
        self._token_taken = False
        self._pump_timer: asyncio.TimerHandle | None = None
        self._paused = False
        self._closed = False

    @abc.abstractmethod
    def close(self, reason: str = "closed") -> None:
        """Close now (the queue reached CLOSE_MARK); the connection says what else it ends."""

    @property
    def backlog(self) -> int:
        """Lines waiting behind the throttle."""
        return len(self._queue) if self._queue else 0

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._pump()

    def _write(self, data: bytes) -> None:
        """Write at the end of this turn of the loop, with whatever else is written in it."""
        if self._unsent is None:
            self._unsent = [data]
            asyncio.get_running_loop().call_soon(self._flush)
        else:
            self._unsent.append(data)

    def _flush(self) -> None:
        unsent, self._unsent = self._unsent, None
        # Closed meanwhile: close() flushed first, so what is left was never written.
        if unsent and self._transport is not None and not self._transport.is_closing():
            self._transport.write(b"".join(unsent) if len(unsent) > 1 else unsent[0])

    def _enqueue(self, data: Queued) -> None:
        if self._queue is None:
            self._queue = deque()
        self._queue.append(data)
        self._pump()

    def _pump(self) -> None:
        """Write queued lines as the throttle and the socket allow; a timer for the rest."""
        if self._pump_timer is not None:
            return  # already waiting for the throttle
        if self._transport is None:
            return  # connection_made pumps
        queue = self._queue
        while queue and not self._paused and not self._closed:
            if self._bucket is not None and not self._token_taken:
                wait = self._bucket.delay()
                if wait > 0:
                    self._token_taken = True  # this line leaves once the wait is over
                    self._pump_timer = asyncio.get_running_loop().call_later(wait, self._tick)
                    return
            self._token_taken = False
            item = queue.popleft()
            if item == CLOSE_MARK:
                self.close("quit")
                return
            if isinstance(item, tuple):
                self._write(item[0])
                item[1]()
            else:
                self._write(item)
        if not queue:
            self._queue = None

    def _tick(self) -> None:
        self._pump_timer = None
        self._pump()
