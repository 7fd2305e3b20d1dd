"""One user's connection to one IRC server: its life, and the lines it reads.

All of the user's resources share it. It connects and registers, reconnects with backoff
when the server drops the connection and rejoins the channels; what the user sends
meanwhile waits in ``pending`` (pending.py) and leaves after the rejoin, or comes back as
an error if the server never returns. Nothing is dropped without the user hearing of it.

Each line read is handled, one at a time and in order, by the function that
handlers.py names for its command. The rooms' side lives in plain functions that take the
session, and the transport calls them directly (``membership.join(session, …)``):
- membership.py: the user's joins and leaves; JOIN, NAMES, PART, QUIT, KICK, NICK, MODE;
- channel_messages.py: what is said in a channel, its topic, errors on room requests;
- private_messages.py: messages to and from nicks and the server, CTCP;
- invites.py: INVITEs, both ways.
The session itself keeps the state they share and the calls that need the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from transports.base import ContactPresence, GatewayError, InboundMessage
from transports.irc import membership, pending, private_messages
from transports.irc.addressing import IrcAddress
from transports.irc.channel import Channel, fold
from transports.irc.connection import ConnectOptions, IrcConnection, RegistrationFailed
from transports.irc.handlers import HANDLERS
from transports.irc.invites import PendingInvites
from transports.irc.limits import MAX_UNHANDLED_LINES, ReplyBudget, one_line
from transports.irc.numerics import JOIN_ERRORS, QUIET_NUMERICS
from transports.irc.pending import PendingLine
from transports.irc.protocol import IrcLine, UnsafeLine, parse_line, parse_raw_command
from transports.rooms import Occupant, OccupantPresence, RoomError, RoomStatus

log = logging.getLogger(__name__)


class Hooks(Protocol):
    """What a session needs from its transport: delivery, the archive, settings."""

    version_reply: str
    reconnect_attempts: int
    reconnect_delay: float
    reconnect_max_delay: float

    async def deliver_event(self, event: Any) -> bool: ...

    def archive_line(
        self, user_jid: str, room: str, nick: str, body: str, notice: bool
    ) -> str | None:
        """Keep a room line; return its stanza id (None when archiving is off).

        It returns before the line is written: the line can be delivered at once, and lines
        that arrive together are written together.
        """

    async def history(
        self, user_jid: str, room: str, resources: tuple[str, ...], max_history: int | None
    ) -> None:
        """Send the room's last lines to resources that just joined."""


class ServerSession:
    def __init__(
        self,
        hooks: Hooks,
        user_jid: str,
        server: str,
        options: ConnectOptions,
        after_connect: list[str],
        on_gone: Callable[[ServerSession], None],
    ) -> None:
        self.hooks = hooks
        self.user_jid = user_jid
        self.server = server
        self.options = options
        self.after_connect = after_connect
        self.on_gone = on_gone
        self.conn: IrcConnection | None = None
        self.channels: dict[str, Channel] = {}
        self.pending: list[PendingLine] = []
        self.away: str | None = None
        #: registered on the server, and not lost since
        self.connected = False
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        #: the channel whose nick change waits for the server's answer
        self.nick_room: str | None = None
        #: fold(nick) → id of the user's last private message to it, for a 401 to answer
        self._pm_ids: dict[str, str] = {}
        #: INVITEs waiting for the server's answer; exists only meanwhile
        self.invites: PendingInvites | None = None
        #: lines read and not yet handled; they and their worker task exist only meanwhile
        self._lines: deque[IrcLine] | None = None
        self._worker: asyncio.Task[None] | None = None
        #: CTCP replies still allowed (created at the first request)
        self.ctcp_budget: ReplyBudget | None = None

    # -- addresses -----------------------------------------------------------------------------

    def room(self, channel: Channel) -> str:
        return str(IrcAddress("channel", self.server, channel.key))

    def contact(self, nick: str) -> str:
        return str(IrcAddress("nick", self.server, nick))

    @property
    def nick(self) -> str:
        return self.conn.nick if self.conn is not None else self.options.nick

    @property
    def wanted(self) -> bool:
        return any(channel.wanted for channel in self.channels.values()) or bool(self.pending)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"irc {self.user_jid} {self.server}")

    async def stop(self, message: str = "") -> None:
        """Quit for good (the user left, or the gateway stops)."""
        self._stopping = True
        if self.conn is not None and not self.conn.closed:
            with contextlib.suppress(Exception):
                self.conn.quit(message)
            for _ in range(20):
                if self.conn.closed:
                    break
                await asyncio.sleep(0.05)
            self.conn.close("quit")
        for task in (self._task, self._worker):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _run(self) -> None:
        """Connect, and reconnect with backoff whenever the server drops us."""
        attempt = 0
        delay = self.hooks.reconnect_delay
        reason = ""
        while not self._stopping:
            closed: asyncio.Future[str] = asyncio.get_running_loop().create_future()

            def on_closed(
                _conn: IrcConnection, why: str, closed: asyncio.Future[str] = closed
            ) -> None:
                if not closed.done():
                    closed.set_result(why)

            conn = IrcConnection(self.options, self._on_line, on_closed)
            self.conn = conn
            try:
                await conn.connect()
            except Exception as exc:  # OSError, TimeoutError, RegistrationFailed, ssl errors
                reason = str(exc) or type(exc).__name__
                log.info("irc %s → %s: connect failed: %s", self.user_jid, self.server, reason)
                if isinstance(exc, RegistrationFailed) and exc.final:
                    # A refused certificate or password stays refused: say so now, not
                    # after every attempt of the backoff.
                    await self._give_up(reason)
                    break
            else:
                attempt, delay = 0, self.hooks.reconnect_delay
                await self._registered()
                reason = await closed
                self.connected = False
                if self._stopping:
                    break
                await self._connection_lost(reason)
            if self._stopping or not self.wanted:
                break
            attempt += 1
            if attempt > self.hooks.reconnect_attempts:
                await self._give_up(reason)
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.hooks.reconnect_max_delay)
        if not self._stopping and self._worker is not None:
            # Let the worker finish the lines already read.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._worker)
        self.on_gone(self)

    async def _registered(self) -> None:
        assert self.conn is not None
        self.connected = True
        await self.hooks.deliver_event(
            ContactPresence(self.user_jid, self.server, True, "", f"connected as {self.nick}")
        )
        for command in self.after_connect:
            with contextlib.suppress(UnsafeLine):
                self.conn.send(*_split_raw(parse_raw_command(command)))
        if self.away:
            with contextlib.suppress(UnsafeLine):  # one line already: a reconnect never fails
                self.conn.send("AWAY", self.away)
        for channel in self.channels.values():
            if channel.wanted:
                self.conn.send("JOIN", channel.name)
        # Private messages that waited for the connection.
        for item in [p for p in self.pending if not p.in_room]:
            self.pending.remove(item)
            private_messages.send(self, item.target, item.body, item.xmpp_id)

    async def _connection_lost(self, reason: str) -> None:
        self.invites = None  # their answers will not come
        await self.hooks.deliver_event(
            ContactPresence(self.user_jid, self.server, False, "", reason)
        )
        for channel in self.channels.values():
            channel.joined = False
            channel.names = None
            if channel.present():
                await self.hooks.deliver_event(
                    RoomStatus(
                        self.user_jid,
                        self.room(channel),
                        channel.present(),
                        f"Disconnected from {self.server} ({reason}); reconnecting…",
                    )
                )

    async def _give_up(self, reason: str) -> None:
        """The server is gone for good: every waiting message and join becomes an error."""
        text = f"cannot connect to {self.server}: {reason}"
        await pending.fail_all(self, text)
        for channel in list(self.channels.values()):
            room = self.room(channel)
            if channel.awaiting:
                await self.hooks.deliver_event(
                    RoomError(
                        self.user_jid,
                        room,
                        tuple(channel.awaiting),
                        "join",
                        "remote-server-not-found",
                        text,
                    )
                )
            if channel.present():
                await self.hooks.deliver_event(
                    OccupantPresence(
                        self.user_jid,
                        room,
                        channel.present(),
                        Occupant(self.nick, "none", "none"),
                        available=False,
                        is_self=True,
                        status=text,
                    )
                )
        self.channels.clear()

    def room_of_key(self, key: str) -> str:
        """The room of a channel key, whether or not the channel is still known."""
        channel = self.channels.get(key)
        return self.room(channel) if channel else str(IrcAddress("channel", self.server, key))

    # -- calls from the user that need the connection ---------------------------------------

    async def private(self, nick: str, body: str, xmpp_id: str | None, full_jid: str) -> None:
        """A private message to a nick; it waits while the server is not there."""
        if not self.connected:
            pending.wait_for_connection(
                self, PendingLine(nick, body, xmpp_id, None, full_jid, False)
            )
            return
        pending.check_backlog(self)
        private_messages.send(self, nick, body, xmpp_id)

    def raw(self, command: str) -> None:
        """A raw command the user sent to the server JID (already checked, one line)."""
        if self.conn is None or not self.connected:
            raise GatewayError(f"not connected to {self.server} yet", "service-unavailable", "wait")
        self.conn.send(*_split_raw(command))

    def change_nick(self, channel_key: str, nick: str) -> None:
        if self.conn is None or not self.connected:
            raise GatewayError(f"not connected to {self.server} yet", "service-unavailable", "wait")
        self.nick_room = channel_key
        self.conn.send("NICK", nick)

    def command(self, *params: str) -> None:
        if self.conn is None or not self.connected:
            raise GatewayError(f"not connected to {self.server} yet", "service-unavailable", "wait")
        self.conn.send(*params)

    def set_away(self, message: str | None) -> None:
        """AWAY on IRC; one line, so that it can be sent again at every reconnect."""
        message = one_line(message) if message else None
        if message == self.away:
            return
        self.away = message
        if self.conn is not None and self.connected:
            self.conn.send("AWAY", *((message,) if message else ()))

    # -- IRC lines -----------------------------------------------------------------------------

    def _on_line(self, line: IrcLine) -> None:
        """Lines are handled one at a time, in order, by one worker per session.

        The worker runs only while lines wait: an idle session holds no task for it.
        """
        if self._lines is None:
            self._lines = deque()
        self._lines.append(line)
        if len(self._lines) == MAX_UNHANDLED_LINES and self.conn is not None:
            self.conn.pause_reading()  # the server waits while we catch up
        if self._worker is None:
            self._worker = asyncio.create_task(self._line_worker())

    async def _line_worker(self) -> None:
        try:
            while self._lines:
                line = self._lines.popleft()
                if len(self._lines) == MAX_UNHANDLED_LINES // 2 and self.conn is not None:
                    self.conn.resume_reading()
                try:
                    await self._handle(line)
                except Exception:
                    log.exception("IRC line handler failed for %s: %s", self.user_jid, line.command)
        finally:
            self._worker = None
            if not self._lines:
                self._lines = None

    async def _handle(self, line: IrcLine) -> None:
        handler = HANDLERS.get(line.command.upper())
        if handler is not None:
            await handler(self, line)
        elif line.command.isdigit() and line.command not in QUIET_NUMERICS:
            await self.server_reply(line)

    async def server_reply(self, line: IrcLine) -> None:
        """A numeric nothing else took: a failed join, or else the server's words to the user."""
        if line.command in JOIN_ERRORS and len(line.params) >= 2:
            channel = self.channels.get(fold(line.param(1)))
            if channel is not None and not channel.joined:
                await membership.join_failed(
                    self, channel, JOIN_ERRORS[line.command], line.param(2)
                )
                return
        text = " ".join(line.params[1:])
        await self.hooks.deliver_event(InboundMessage(self.user_jid, self.server, text))


def _split_raw(raw: str) -> tuple[str, ...]:
    """A checked raw line back into command and parameters for ``IrcConnection.send``."""
    parsed = parse_line(raw)
    return (parsed.command, *parsed.params)
