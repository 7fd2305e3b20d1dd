"""One user's connection to one IRC server, and the rooms they are in there.

All of the user's resources share it. It turns IRC lines into room events and messages for
the host, and the user's room calls into IRC commands. When the server drops the
connection it reconnects with backoff and rejoins; what the user sends meanwhile waits in
``pending`` and leaves after the rejoin, or comes back as an error if the server never
returns. Nothing is dropped without the user hearing of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from transports.base import ContactPresence, DeliveryReport, GatewayError, InboundMessage
from transports.irc.addressing import IrcAddress
from transports.irc.channel import Channel, Member, fold
from transports.irc.connection import ConnectOptions, IrcConnection, RegistrationFailed
from transports.irc.invites import PendingInvites
from transports.irc.modes import parse_mode_changes
from transports.irc.protocol import IrcLine, UnsafeLine, parse_line, parse_raw_command
from transports.irc.text import body_from_xmpp, body_to_xmpp, ctcp, parse_ctcp, split_message
from transports.rooms import (
    Occupant,
    OccupantPresence,
    RoomError,
    RoomInvite,
    RoomMessage,
    RoomStatus,
    RoomSubject,
)

log = logging.getLogger(__name__)

#: Join errors → XMPP error condition.
JOIN_ERRORS = {
    "403": "item-not-found",
    "405": "resource-constraint",
    "437": "resource-constraint",
    "471": "service-unavailable",
    "473": "registration-required",
    "474": "forbidden",
    "475": "not-authorized",
    "476": "jid-malformed",
    "477": "registration-required",
    "479": "jid-malformed",
}
#: Numerics of the connection burst and of things handled elsewhere: not shown to the user.
QUIET_NUMERICS = frozenset(
    [
        "001",
        "002",
        "003",
        "004",
        "005",
        "042",
        "250",
        "251",
        "252",
        "253",
        "254",
        "255",
        "265",
        "266",
        "301",
        "305",
        "306",
        "331",
        "332",
        "333",
        "353",
        "366",
        "372",
        "375",
        "376",
        "396",
        "422",
        "900",
        "903",
    ]
)


@dataclass
class PendingLine:
    """A message waiting for the connection (or a rejoin) to be sent."""

    target: str  # channel key or nick
    body: str
    xmpp_id: str | None
    origin_id: str | None
    full_jid: str
    in_room: bool


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
        self._nick_room: str | None = None
        self._pm_ids: dict[str, str] = {}
        #: INVITEs waiting for the server's answer; exists only meanwhile
        self._invites: PendingInvites | None = None
        #: lines read and not yet handled; they and their worker task exist only meanwhile
        self._lines: deque[IrcLine] | None = None
        self._worker: asyncio.Task[None] | None = None

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
                raw = parse_raw_command(command)
                self.conn.send(*_split_raw(raw))
        if self.away:
            self.conn.send("AWAY", self.away)
        for channel in self.channels.values():
            if channel.wanted:
                self.conn.send("JOIN", channel.name)
        # Private messages that waited for the connection.
        for item in [p for p in self.pending if not p.in_room]:
            self.pending.remove(item)
            self._privmsg(item.target, item.body, item.xmpp_id)

    async def _connection_lost(self, reason: str) -> None:
        self._invites = None  # their answers will not come
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
        for item in self.pending:
            room = self._room_of(item.target) if item.in_room else self.contact(item.target)
            if item.in_room:
                await self.hooks.deliver_event(
                    RoomError(
                        self.user_jid,
                        room,
                        (item.full_jid.partition("/")[2],),
                        "message",
                        "remote-server-timeout",
                        text,
                        item.xmpp_id,
                    )
                )
            elif item.xmpp_id:
                await self.hooks.deliver_event(
                    DeliveryReport(self.user_jid, room, item.xmpp_id, False, text)
                )
        self.pending.clear()
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

    def _room_of(self, key: str) -> str:
        channel = self.channels.get(key)
        return self.room(channel) if channel else str(IrcAddress("channel", self.server, key))

    # -- calls from the user -------------------------------------------------------------------

    async def join(
        self, resource: str, channel_name: str, nick: str, max_history: int | None
    ) -> None:
        channel = self.channels.get(fold(channel_name))
        if channel is None:
            channel = Channel(channel_name)
            self.channels[channel.key] = channel
        channel.resources[resource] = nick
        channel.awaiting[resource] = max_history
        if channel.joined:
            await self._welcome(channel, [resource])
        elif self.connected and self.conn is not None and channel.names is None:
            self.conn.send("JOIN", channel.name)

    def keep(self, channel_name: str) -> None:
        """Stay in a channel with no resource there (a persistent room after a restart)."""
        channel = self.channels.get(fold(channel_name))
        if channel is None:
            channel = Channel(channel_name)
            self.channels[channel.key] = channel
        channel.persistent = True
        if self.connected and self.conn is not None and not channel.joined:
            self.conn.send("JOIN", channel.name)

    async def leave(self, resource: str, channel_key: str, status: str = "") -> None:
        channel = self.channels.get(channel_key)
        if channel is None or resource not in channel.resources:
            return
        channel.resources.pop(resource, None)
        channel.awaiting.pop(resource, None)
        await self.hooks.deliver_event(
            OccupantPresence(
                self.user_jid,
                self.room(channel),
                (resource,),
                self._self_occupant(channel),
                available=False,
                is_self=True,
            )
        )
        if not channel.wanted:
            del self.channels[channel.key]
            if self.connected and self.conn is not None:
                self.conn.send("PART", channel.name, *((status,) if status else ()))
            self.pending = [p for p in self.pending if not (p.in_room and p.target == channel.key)]

    async def say(
        self, full_jid: str, channel_key: str, body: str, xmpp_id: str | None, origin_id: str | None
    ) -> None:
        channel = self.channels.get(channel_key)
        resource = full_jid.partition("/")[2]
        if channel is None or resource not in channel.resources:
            raise GatewayError("you are not in this room; join it first", "not-acceptable")
        item = PendingLine(channel.key, body, xmpp_id, origin_id, full_jid, True)
        if not (channel.joined and self.connected):
            self.pending.append(item)
            return
        await self._say_now(channel, item)

    async def _say_now(self, channel: Channel, item: PendingLine) -> None:
        assert self.conn is not None
        text = body_from_xmpp(item.body)
        for line in split_message(
            "PRIVMSG",
            channel.name,
            text.body,
            prefix=self.conn.self_prefix,
            action=text.action,
            encoding=self.options.encoding,
        ):
            self.conn.send("PRIVMSG", channel.name, line)
        channel.last_xmpp_id = item.xmpp_id
        await self._room_message(
            channel, self.nick, item.body, xmpp_id=item.xmpp_id, origin_id=item.origin_id
        )

    async def private(self, nick: str, body: str, xmpp_id: str | None, full_jid: str) -> None:
        if not self.connected:
            self.pending.append(PendingLine(nick, body, xmpp_id, None, full_jid, False))
            return
        self._privmsg(nick, body, xmpp_id)

    def _privmsg(self, nick: str, body: str, xmpp_id: str | None) -> None:
        assert self.conn is not None
        text = body_from_xmpp(body)
        if xmpp_id:
            self._pm_ids[fold(nick)] = xmpp_id
        for line in split_message(
            "PRIVMSG",
            nick,
            text.body,
            prefix=self.conn.self_prefix,
            action=text.action,
            encoding=self.options.encoding,
        ):
            self.conn.send("PRIVMSG", nick, line)

    def raw(self, command: str) -> None:
        """A raw command the user sent to the server JID (already checked, one line)."""
        if self.conn is None or not self.connected:
            raise GatewayError(f"not connected to {self.server} yet", "service-unavailable", "wait")
        self.conn.send(*_split_raw(command))

    def change_nick(self, channel_key: str, nick: str) -> None:
        if self.conn is None or not self.connected:
            raise GatewayError(f"not connected to {self.server} yet", "service-unavailable", "wait")
        self._nick_room = channel_key
        self.conn.send("NICK", nick)

    def command(self, *params: str) -> None:
        if self.conn is None or not self.connected:
            raise GatewayError(f"not connected to {self.server} yet", "service-unavailable", "wait")
        self.conn.send(*params)

    def invite(self, channel_name: str, nick: str) -> None:
        """INVITE, as an IRC client sends it; the server's answer comes back as an event."""
        channel = self.channels.get(fold(channel_name))
        if channel is None:
            raise GatewayError(f"you are not in {channel_name}; join it first", "not-acceptable")
        if self.conn is None or not self.connected:
            raise GatewayError(f"not connected to {self.server} yet", "service-unavailable", "wait")
        if self._invites is None:
            self._invites = PendingInvites()
        self._invites.sent(nick, channel.key)
        self.conn.send("INVITE", nick, channel.name)

    def set_away(self, message: str | None) -> None:
        if message == self.away:
            return
        self.away = message
        if self.conn is not None and self.connected:
            self.conn.send("AWAY", *((message,) if message else ()))

    # -- room events ---------------------------------------------------------------------------

    def _self_occupant(self, channel: Channel) -> Occupant:
        member = channel.member(self.nick)
        return member.occupant() if member else Occupant(self.nick)

    async def _welcome(self, channel: Channel, resources: list[str]) -> None:
        """Bring resources into a joined room: occupants, self-presence, history, subject."""
        room = self.room(channel)
        for resource in resources:
            max_history = channel.awaiting.pop(resource, None)
            targets = (resource,)
            for member in channel.members.values():
                if fold(member.nick) != fold(self.nick):
                    await self.hooks.deliver_event(
                        OccupantPresence(self.user_jid, room, targets, member.occupant())
                    )
            asked = channel.resources.get(resource, self.nick)
            await self.hooks.deliver_event(
                OccupantPresence(
                    self.user_jid,
                    room,
                    targets,
                    self._self_occupant(channel),
                    is_self=True,
                    status="nick changed by the server" if asked != self.nick else "",
                )
            )
            await self.hooks.history(self.user_jid, room, targets, max_history)
            await self.hooks.deliver_event(
                RoomSubject(self.user_jid, room, targets, channel.topic, channel.topic_by)
            )

    async def _room_message(
        self,
        channel: Channel,
        nick: str,
        body: str,
        *,
        notice: bool = False,
        xmpp_id: str | None = None,
        origin_id: str | None = None,
    ) -> None:
        room = self.room(channel)
        stanza_id = self.hooks.archive_line(self.user_jid, room, nick, body, notice)
        if channel.present():
            await self.hooks.deliver_event(
                RoomMessage(
                    self.user_jid,
                    room,
                    channel.present(),
                    nick,
                    body,
                    stanza_id,
                    xmpp_id,
                    origin_id,
                    notice=notice,
                )
            )

    async def _presence(self, channel: Channel, member: Member | Occupant, **kwargs: Any) -> None:
        if not channel.present():
            return
        occupant = member.occupant() if isinstance(member, Member) else member
        is_self = kwargs.pop("is_self", False) or fold(occupant.nick) == fold(self.nick)
        await self.hooks.deliver_event(
            OccupantPresence(
                self.user_jid,
                self.room(channel),
                channel.present(),
                occupant,
                is_self=is_self,
                **kwargs,
            )
        )

    # -- IRC lines -----------------------------------------------------------------------------

    def _on_line(self, line: IrcLine) -> None:
        """Lines are handled one at a time, in order, by one worker per session.

        The worker runs only while lines wait: an idle session holds no task for it.
        """
        if self._lines is None:
            self._lines = deque()
        self._lines.append(line)
        if self._worker is None:
            self._worker = asyncio.create_task(self._line_worker())

    async def _line_worker(self) -> None:
        try:
            while self._lines:
                line = self._lines.popleft()
                try:
                    await self._handle(line)
                except Exception:
                    log.exception("IRC line handler failed for %s: %s", self.user_jid, line.command)
        finally:
            self._worker = None
            if not self._lines:
                self._lines = None

    async def _handle(self, line: IrcLine) -> None:
        handler = getattr(self, f"_irc_{line.command.lower()}", None)
        if handler is not None:
            await handler(line)
        elif line.command.isdigit() and line.command not in QUIET_NUMERICS:
            await self._numeric(line)

    async def _irc_join(self, line: IrcLine) -> None:
        channel = self.channels.get(fold(line.param(0)))
        if channel is None:
            return
        if fold(line.nick) == fold(self.nick):
            channel.start_names()
            return
        member = channel.add(line.nick)
        await self._presence(channel, member)

    async def _irc_353(self, line: IrcLine) -> None:
        channel = self.channels.get(fold(line.param(2)))
        if channel is not None and self.conn is not None:
            channel.add_names(line.param(3).split(), self.conn.prefix_modes)

    async def _irc_366(self, line: IrcLine) -> None:
        channel = self.channels.get(fold(line.param(1)))
        if channel is None or channel.names is None:
            return
        rejoin = channel.present()
        left, arrived, changed = channel.end_names()
        if channel.member(self.nick) is None:
            channel.add(self.nick)
        channel.joined = True
        if rejoin:
            for member in left:
                await self._presence(channel, member, available=False)
            for member in arrived + changed:
                await self._presence(channel, member)
            await self.hooks.deliver_event(
                RoomStatus(
                    self.user_jid,
                    self.room(channel),
                    rejoin,
                    f"Reconnected to {self.server} and rejoined {channel.name}",
                )
            )
        if channel.awaiting:
            await self._welcome(channel, list(channel.awaiting))
        for item in [p for p in self.pending if p.in_room and p.target == channel.key]:
            self.pending.remove(item)
            await self._say_now(channel, item)

    async def _irc_332(self, line: IrcLine) -> None:
        channel = self.channels.get(fold(line.param(1)))
        if channel is not None:
            channel.topic = line.param(2)

    async def _irc_topic(self, line: IrcLine) -> None:
        channel = self.channels.get(fold(line.param(0)))
        if channel is None:
            return
        channel.topic, channel.topic_by = line.param(1), line.nick
        if channel.present():
            await self.hooks.deliver_event(
                RoomSubject(
                    self.user_jid, self.room(channel), channel.present(), channel.topic, line.nick
                )
            )

    async def _irc_part(self, line: IrcLine) -> None:
        channel = self.channels.get(fold(line.param(0)))
        if channel is None:
            return
        if fold(line.nick) == fold(self.nick):
            return  # our own PART: leave() already told the resource
        member = channel.remove(line.nick)
        if member is not None:
            await self._presence(channel, member, available=False, status=line.param(1))

    async def _irc_quit(self, line: IrcLine) -> None:
        for channel in self.channels.values():
            member = channel.remove(line.nick)
            if member is not None:
                await self._presence(channel, member, available=False, status=line.param(0))

    async def _irc_kick(self, line: IrcLine) -> None:
        channel = self.channels.get(fold(line.param(0)))
        if channel is None:
            return
        victim, reason = line.param(1), line.param(2)
        member = channel.remove(victim) or Member(victim)
        await self._presence(
            channel,
            member,
            available=False,
            kicked=True,
            status=f"kicked by {line.nick}: {reason}" if reason else "",
        )
        if fold(victim) == fold(self.nick):
            del self.channels[channel.key]
            self.pending = [p for p in self.pending if not (p.in_room and p.target == channel.key)]

    async def _irc_nick(self, line: IrcLine) -> None:
        old, new = line.nick, line.param(0)
        if fold(old) == fold(self.nick) or fold(new) == fold(self.nick):
            self._nick_room = None
            await self.hooks.deliver_event(
                ContactPresence(self.user_jid, self.server, True, "", f"connected as {new}")
            )
        for channel in self.channels.values():
            member = channel.member(old)
            if member is None:
                continue
            occupant = member.occupant()
            is_self = fold(new) == fold(self.nick)
            await self._presence(channel, occupant, available=False, new_nick=new, is_self=is_self)
            channel.rename(old, new)
            await self._presence(channel, member, is_self=is_self)

    async def _irc_mode(self, line: IrcLine) -> None:
        channel = self.channels.get(fold(line.param(0)))
        if channel is None or self.conn is None or len(line.params) < 2:
            return
        changes = parse_mode_changes(
            line.param(1), line.params[2:], self.conn.prefix_modes, self.conn.chanmodes
        )
        for member in channel.apply_modes(changes, self.conn.prefix_modes):
            await self._presence(channel, member)

    async def _irc_privmsg(self, line: IrcLine) -> None:
        await self._text(line, notice=False)

    async def _irc_notice(self, line: IrcLine) -> None:
        await self._text(line, notice=True)

    async def _text(self, line: IrcLine, notice: bool) -> None:
        target, text = line.param(0), line.param(1)
        found = parse_ctcp(text)
        if found is not None and found[0] != "ACTION":
            if not notice:
                await self._ctcp_request(line.nick, *found)
            return
        body = body_to_xmpp(text)
        if notice:
            body = f"[notice] {body}"
        channel = self.channels.get(fold(target))
        if channel is not None:
            await self._room_message(channel, line.nick, body, notice=notice)
        elif line.from_server or not self.connected:
            await self.hooks.deliver_event(InboundMessage(self.user_jid, self.server, body))
        else:
            await self.hooks.deliver_event(
                InboundMessage(self.user_jid, self.contact(line.nick), body, nick=line.nick)
            )

    async def _ctcp_request(self, nick: str, command: str, argument: str) -> None:
        if self.conn is None:
            return
        if command == "VERSION":
            self.conn.send("NOTICE", nick, ctcp("VERSION", self.hooks.version_reply))
        elif command == "PING":
            self.conn.send("NOTICE", nick, ctcp("PING", argument[:100]))

    async def _irc_invite(self, line: IrcLine) -> None:
        channel = IrcAddress("channel", self.server, fold(line.param(1)))
        await self.hooks.deliver_event(RoomInvite(self.user_jid, str(channel), line.nick))

    async def _invite_answered(self, line: IrcLine) -> bool:
        """The server's answer to one of the user's INVITEs: a word in the room, or an error."""
        answer = self._invites.answer(line) if self._invites else None
        if answer is None:
            return False
        if not self._invites:
            self._invites = None
        channel = self.channels.get(answer.channel_key)
        room = self._room_of(answer.channel_key)
        if answer.condition is not None:
            await self.hooks.deliver_event(
                RoomError(
                    self.user_jid,
                    room,
                    (),
                    "invite",
                    answer.condition,
                    answer.text,
                    nick=answer.nick,
                )
            )
        elif channel is not None and channel.present():
            await self.hooks.deliver_event(
                RoomStatus(self.user_jid, room, channel.present(), answer.text)
            )
        else:
            await self.hooks.deliver_event(InboundMessage(self.user_jid, self.server, answer.text))
        return True

    async def _irc_341(self, line: IrcLine) -> None:
        """RPL_INVITING, and below the errors an INVITE may get (401 has its own handler)."""
        if not await self._invite_answered(line):
            await self._numeric(line)

    _irc_442 = _irc_443 = _irc_482 = _irc_341

    async def _irc_401(self, line: IrcLine) -> None:
        nick = line.param(1)
        invited = await self._invite_answered(line)
        xmpp_id = self._pm_ids.pop(fold(nick), None)
        if xmpp_id:
            await self.hooks.deliver_event(
                DeliveryReport(
                    self.user_jid,
                    self.contact(nick),
                    xmpp_id,
                    False,
                    f"{nick} is not on {self.server}",
                )
            )
        elif not invited:
            await self._numeric(line)

    async def _irc_404(self, line: IrcLine) -> None:
        channel = self.channels.get(fold(line.param(1)))
        if channel is None:
            await self._numeric(line)
            return
        await self.hooks.deliver_event(
            RoomError(
                self.user_jid,
                self.room(channel),
                channel.present(),
                "message",
                "forbidden",
                line.param(2),
                channel.last_xmpp_id,
            )
        )

    async def _nick_refused(self, line: IrcLine, condition: str) -> None:
        key = self._nick_room
        self._nick_room = None
        channel = self.channels.get(key) if key else None
        if channel is None:
            await self._numeric(line)
            return
        await self.hooks.deliver_event(
            RoomError(
                self.user_jid,
                self.room(channel),
                channel.present(),
                "nick",
                condition,
                line.param(len(line.params) - 1),
                nick=line.param(1),
            )
        )

    async def _irc_433(self, line: IrcLine) -> None:
        await self._nick_refused(line, "conflict")

    async def _irc_436(self, line: IrcLine) -> None:
        await self._nick_refused(line, "conflict")

    async def _irc_432(self, line: IrcLine) -> None:
        await self._nick_refused(line, "jid-malformed")

    async def _numeric(self, line: IrcLine) -> None:
        if line.command in JOIN_ERRORS and len(line.params) >= 2:
            channel = self.channels.get(fold(line.param(1)))
            if channel is not None and not channel.joined:
                await self._join_failed(channel, JOIN_ERRORS[line.command], line.param(2))
                return
        text = " ".join(line.params[1:])
        await self.hooks.deliver_event(InboundMessage(self.user_jid, self.server, text))

    async def _join_failed(self, channel: Channel, condition: str, text: str) -> None:
        room = self.room(channel)
        await self.hooks.deliver_event(
            RoomError(self.user_jid, room, tuple(channel.resources), "join", condition, text)
        )
        del self.channels[channel.key]
        self.pending = [p for p in self.pending if not (p.in_room and p.target == channel.key)]


def _split_raw(raw: str) -> tuple[str, ...]:
    """A checked raw line back into command and parameters for ``IrcConnection.send``."""
    parsed = parse_line(raw)
    return (parsed.command, *parsed.params)
