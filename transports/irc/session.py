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
import dataclasses
import logging
from collections import deque
from collections.abc import Callable, Sequence

from transports.base import GatewayError
from transports.events import InboundMessage
from transports.irc import (
    answers,
    membership,
    pending,
    private_messages,
    server_presence,
    user_commands,
)
from transports.irc.addressing import IrcAddress
from transports.irc.batches import OpenBatches
from transports.irc.casemap import RFC1459, fold
from transports.irc.channel import Channel, Member
from transports.irc.connection import ConnectOptions, IrcConnection, RegistrationFailed
from transports.irc.handlers import HANDLERS
from transports.irc.hooks import Hooks
from transports.irc.invites import PendingInvites
from transports.irc.limits import MAX_REMEMBERED_IDS, MAX_UNHANDLED_LINES, ReplyBudget, remember
from transports.irc.numerics import JOIN_ERRORS, QUIET_NUMERICS
from transports.irc.outgoing import Referring
from transports.irc.pacing import jittered
from transports.irc.pending import PendingLine
from transports.irc.protocol import IrcLine
from transports.rooms import Occupant, RoomListing

log = logging.getLogger(__name__)


class ServerSession:
    # Slots: one per user and server, held all along.
    __slots__ = (
        "_lines",
        "_pm_table",
        "_ready",
        "_reply_table",
        "_stopping",
        "_task",
        "_worker",
        "after_connect",
        "away",
        "batches",
        "casemapping",
        "channels",
        "conn",
        "connected",
        "ctcp_budget",
        "hooks",
        "invites",
        "last_raw_id",
        "listing",
        "nick_chosen",
        "nick_room",
        "on_gone",
        "options",
        "pending",
        "requests",
        "server",
        "sync_count",
        "user_jid",
        "wanted_nick",
    )

    def __init__(
        self,
        hooks: Hooks,
        user_jid: str,
        server: str,
        options: ConnectOptions,
        after_connect: Sequence[str],
        on_gone: Callable[[ServerSession], None],
    ) -> None:
        self.hooks = hooks
        self.user_jid = user_jid
        self.server = server
        # One copy for every connection of the session (WEBIRC names the user by it).
        self.options = dataclasses.replace(options, user_jid=user_jid)
        #: a tuple: none is the shared empty one, where an empty list was 56 bytes per user
        self.after_connect = tuple(after_connect)
        self.on_gone = on_gone
        self.conn: IrcConnection | None = None
        #: self.fold(name) → channel: keys by the server's CASEMAPPING (rfc1459 until 005)
        self.channels: dict[str, Channel] = {}
        self.casemapping = RFC1459
        self.pending: list[PendingLine] = []
        self.away: str | None = None
        #: registered on the server, and not lost since
        self.connected = False
        #: set at registration; exists only while a request waits for it (an Event is most
        #: of a KiB, and a gateway holds a session per user)
        self._ready: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        #: the channel whose nick change waits for the server's answer
        self.nick_room: str | None = None
        #: ``_pm_ids`` and ``reply_from`` (below), until the first use
        self._pm_table: dict[str, tuple[str, str]] | None = None
        self._reply_table: dict[str, tuple[str, str] | None] | None = None
        #: INVITEs waiting for the server's answer; exists only meanwhile
        self.invites: PendingInvites | None = None
        #: lines read and not yet handled; they and their worker task exist only meanwhile
        self._lines: deque[IrcLine] | None = None
        self._worker: asyncio.Task[None] | None = None
        #: CTCP replies still allowed (created at the first request)
        self.ctcp_budget: ReplyBudget | None = None
        #: whether a join chose the nick: a connection opened for a raw command or a private
        #: message takes the first join's nick (as biboumi), and only the first one's
        self.nick_chosen = False
        #: the nick to ask for once registered (chosen while the connection was under way)
        self.wanted_nick: str | None = None
        #: the user's requests waiting for the server's answer (moderation, LIST, VERSION)
        self.requests = answers.Requests()
        #: PINGs sent to learn that the server has answered what came before (moderation)
        self.sync_count = 0
        #: IRCv3 batches open on this connection (which lines are replays)
        self.batches = OpenBatches()
        #: the channels of the LIST under way (322…323); exists only meanwhile
        self.listing: list[RoomListing] | None = None
        #: (id, full JID) of the raw command the user last sent, until an error answers it
        self.last_raw_id: tuple[str, str] | None = None

    # -- tables made at first use (an empty dict: 64 bytes a user); set empty, dropped -------

    @property
    def _pm_ids(self) -> dict[str, tuple[str, str]]:
        """fold(nick) → id of the user's last private message to it, for a 401 to answer."""
        if self._pm_table is None:
            self._pm_table = {}
        return self._pm_table

    @_pm_ids.setter
    def _pm_ids(self, table: dict[str, tuple[str, str]]) -> None:
        self._pm_table = table or None

    @property
    def reply_from(self) -> dict[str, tuple[str, str] | None]:
        """fold(nick) → (channel key, full JID) when the user last wrote to that nick from a
        room (None: from its contact JID), so that replies come back where it started."""
        if self._reply_table is None:
            self._reply_table = {}
        return self._reply_table

    @reply_from.setter
    def reply_from(self, table: dict[str, tuple[str, str] | None]) -> None:
        self._reply_table = table or None

    # -- addresses -----------------------------------------------------------------------------

    def room(self, channel: Channel) -> str:
        # The name the user joined with, never the folded key: #foo[bar] stays #foo[bar].
        return str(IrcAddress("channel", self.server, channel.name))

    def contact(self, nick: str) -> str:
        return str(IrcAddress("nick", self.server, nick))

    def occupant(self, member: Member) -> Occupant:
        """A member as an XEP-0045 item, with its contact address (its real JID)."""
        return member.occupant(self.contact(member.nick))

    def fold(self, name: str) -> str:
        """The lookup key of a nick or channel name here: the server's CASEMAPPING."""
        return fold(name, self.casemapping)

    @property
    def nick(self) -> str:
        return self.conn.nick if self.conn is not None else self.options.nick

    @property
    def wanted(self) -> bool:
        return any(channel.wanted for channel in self.channels.values()) or bool(self.pending)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None and self.conn is None:
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

    def _closed(self, conn: IrcConnection, reason: str) -> None:
        """A connection ended: after registration, a task comes back to reconnect.

        While registered the session holds no task (a task and its coroutine were a KiB of
        what each user costs); while ``_run`` runs, it sees the connection closed itself.
        """
        if conn is not self.conn or self._task is not None:
            return
        self.connected = False
        if not self._stopping:
            name = f"irc {self.user_jid} {self.server}"
            self._task = asyncio.create_task(self._run(lost=reason), name=name)

    async def _run(self, lost: str | None = None) -> None:
        """Connect, and reconnect with backoff whenever the server drops us (``lost``: the
        registered connection was lost, why). Ends once registered, or when it gives up."""
        attempt = 0
        delay = self.hooks.reconnect_delay
        reason = lost or ""
        while not self._stopping:
            if lost is not None:
                await server_presence.disconnected(self, lost)
                lost = None
            else:
                conn = IrcConnection(self.options, self, self._closed)  # self: __call__
                self.conn = conn
                try:
                    await conn.connect()
                except Exception as exc:  # OSError, TimeoutError, RegistrationFailed, ssl errors
                    reason = str(exc) or type(exc).__name__
                    log.info("irc %s → %s: connect failed: %s", self.user_jid, self.server, reason)
                    if isinstance(exc, RegistrationFailed) and exc.final:
                        # A refused certificate or password stays refused: say so now, not
                        # after every attempt of the backoff.
                        await pending.give_up(self, reason)
                        break
                else:
                    attempt, delay = 0, self.hooks.reconnect_delay
                    await self._registered()
                    if not conn.closed:
                        self._task = None  # _closed starts the next one
                        return
                    reason = conn.close_reason  # lost already, while we told the user
                    self.connected = False
                    if self._stopping:
                        break
                    await server_presence.disconnected(self, reason)
            if self._stopping or not self.wanted:
                break
            attempt += 1
            if attempt > self.hooks.reconnect_attempts:
                await pending.give_up(self, reason)
                break
            await asyncio.sleep(jittered(delay))  # not all users back in step
            delay = min(delay * 2, self.hooks.reconnect_max_delay)
        if not self._stopping and self._worker is not None:
            # Let the worker finish the lines already read.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._worker)
        self.on_gone(self)

    async def _registered(self) -> None:
        assert self.conn is not None
        self.connected = True
        if self._ready is not None:
            self._ready.set()  # its waiters wake; the next wait makes a new one
            self._ready = None
        await server_presence.connected(self)
        user_commands.after_registration(self)

    # -- calls from the user that need the connection ---------------------------------------

    async def private(
        self,
        nick: str,
        body: str,
        xmpp_id: str | None,
        full_jid: str,
        channel_key: str | None = None,
        referring: Referring | None = None,
        taken_at: float | None = None,
    ) -> None:
        """A private message to a nick (from a room: ``channel_key``); it waits meanwhile.

        ``referring``: what it does to an earlier message, if anything (outgoing.py);
        ``taken_at``: when the gateway took it (time.time()), for its delivery time.
        """
        origin = (channel_key, full_jid) if channel_key else None
        remember(self.reply_from, self.fold(nick), origin, MAX_REMEMBERED_IDS)
        if not self.connected:
            item = PendingLine(
                nick, body, xmpp_id, None, full_jid, False, referring=referring, taken_at=taken_at
            )
            pending.wait_for_connection(self, item)
            return
        pending.check_backlog(self)
        private_messages.send(self, nick, body, xmpp_id, full_jid, referring, taken_at)

    async def wait_connected(self, timeout: float) -> None:
        """Until registered: for a request that needs the server now (LIST opened it)."""
        if self.connected:
            return
        if self._ready is None:
            self._ready = asyncio.Event()
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            raise GatewayError(
                f"not connected to {self.server} yet", "remote-server-timeout", "wait"
            ) from None

    def change_nick(self, channel_key: str, nick: str) -> None:
        if self.conn is None or not self.connected:
            raise GatewayError(f"not connected to {self.server} yet", "service-unavailable", "wait")
        self.nick_room = channel_key
        self.conn.send("NICK", nick)

    def command(self, *params: str) -> None:
        if self.conn is None or not self.connected:
            raise GatewayError(f"not connected to {self.server} yet", "service-unavailable", "wait")
        self.conn.send(*params)

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

    #: the connection's line callback: the session itself, not a bound method (64 bytes)
    __call__ = _on_line

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
        command = line.command.upper()
        handler = HANDLERS.get(command)
        if handler is not None:
            await handler(self, line)
        elif line.command.isdigit() and line.command not in QUIET_NUMERICS:
            await self.server_reply(line)

    def refuse_request(self, line: IrcLine) -> bool:
        """Fail the awaited requests an error numeric answers (answers.py)."""
        return answers.refuse_request(self, line)

    async def server_reply(self, line: IrcLine) -> None:
        """A numeric nothing else took: a failed join, or else the server's words to the user."""
        if line.command in JOIN_ERRORS and len(line.params) >= 2:
            channel = self.channels.get(self.fold(line.param(1)))
            if channel is not None and not channel.joined:
                await membership.join_failed(
                    self, channel, JOIN_ERRORS[line.command], line.param(2)
                )
                return
        if await answers.refusal(self, line):
            return
        text = " ".join(line.params[1:])
        await self.hooks.deliver_event(InboundMessage(self.user_jid, self.server, text))
