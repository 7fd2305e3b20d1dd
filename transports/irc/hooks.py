"""What a session needs from its transport (transport.py implements it).

A Protocol rather than the transport's class: sessions, and the modules that take a session,
see only delivery, the archive and the reconnect settings, and tests give a session a fake.
"""

from __future__ import annotations

from typing import Any, Protocol


class Hooks(Protocol):
    """What a session needs from its transport: delivery, the archive, settings."""

    version_reply: str
    reconnect_attempts: int
    reconnect_delay: float
    reconnect_max_delay: float

    async def deliver_event(self, event: Any) -> bool: ...

    def archive_line(
        self,
        user_jid: str,
        room: str,
        nick: str,
        body: str,
        notice: bool,
        *,
        timestamp: float | None = None,
        msgid: str | None = None,
    ) -> str | None:
        """Keep a room line; return its stanza id (None when archiving is off).

        ``msgid`` (IRCv3) becomes the stanza id and ``timestamp`` (server-time) its time,
        so that history and MAM show what the server said, when it said it.

        It returns before the line is written: the line can be delivered at once, and lines
        that arrive together are written together.
        """

    async def history(
        self, user_jid: str, room: str, resources: tuple[str, ...], max_history: int | None
    ) -> None:
        """Send the room's last lines to resources that just joined."""

    def handed_out(self, taken_at: float) -> None:
        """A message of the user's, taken at ``taken_at`` (time.time()), is written to the
        server's socket: its delivery time counts on /metrics."""
