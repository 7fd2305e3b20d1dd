"""The server's answers to what the user sent: awaited requests, and error replies.

Some requests wait for their answer (a kick or a mode change for muc#admin, LIST for the
room directory, CTCP VERSION for an occupant's software): each waits under a key in the
session's :class:`Requests`, bounded, until the line that confirms it, an error numeric
that refuses it, or a timeout. Other error numerics answer a message the user sent to a
channel, a nick or the server's JID: :func:`refusal` turns each into an error on that
message, so that nothing the user sent fails silently (RFC 1459/2812 numbering).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from transports.base import GatewayError
from transports.events import DeliveryReport
from transports.irc import channel_messages, private_messages
from transports.irc.protocol import IrcLine

if TYPE_CHECKING:
    from transports.irc.session import ServerSession

#: Requests a session may have waiting at once (each holds a future and a caller).
MAX_WAITING_REQUESTS = 50

#: Error numerics naming a channel the user is in → XMPP condition.
ROOM_ERRORS = {
    "403": "item-not-found",  # ERR_NOSUCHCHANNEL
    "404": "forbidden",  # ERR_CANNOTSENDTOCHAN
    "437": "resource-constraint",  # ERR_UNAVAILRESOURCE
    "442": "not-acceptable",  # ERR_NOTONCHANNEL
    "467": "conflict",  # ERR_KEYSET
    "472": "bad-request",  # ERR_UNKNOWNMODE
    "477": "forbidden",  # ERR_NEEDREGGEDNICK / ERR_NOCHANMODES
    "482": "forbidden",  # ERR_CHANOPRIVSNEEDED
    "489": "forbidden",  # ERR_VOICENEEDED
}
#: Which of those refuse the line the user last said in the channel (so echo its id).
CANNOT_SEND = frozenset(("404", "477", "489"))
#: Refusals of a nick change (others, 432/433/436, are membership's).
NICK_ERRORS = {"437": "resource-constraint", "447": "not-allowed", "484": "not-allowed"}


class Requests:
    """Requests waiting for the server, by key; asking twice waits for the same answer."""

    __slots__ = ("_waiting",)

    def __init__(self) -> None:
        self._waiting: dict[tuple[str, ...], asyncio.Future[Any]] = {}

    def open(self, key: tuple[str, ...]) -> asyncio.Future[Any]:
        found = self._waiting.get(key)
        if found is not None:
            return found
        if len(self._waiting) >= MAX_WAITING_REQUESTS:
            raise GatewayError(
                "too many requests wait for the IRC server's answer; try again shortly",
                "resource-constraint",
                "wait",
            )
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        return future

    async def wait(self, key: tuple[str, ...], timeout: float) -> Any:
        """The answer to the request under ``key``; ``TimeoutError`` when none comes."""
        return await self.until(key, self.open(key), timeout)

    async def until(self, key: tuple[str, ...], future: asyncio.Future[Any], timeout: float) -> Any:
        """``future`` (opened under ``key``, maybe answered already) within ``timeout``."""
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            if self._waiting.get(key) is future:  # all who wait for it time out with us
                del self._waiting[key]
                future.set_exception(TimeoutError())
                future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise

    def waiting(self, key: tuple[str, ...]) -> bool:
        return key in self._waiting

    def resolve(self, key: tuple[str, ...], value: Any = None) -> bool:
        future = self._waiting.pop(key, None)
        if future is None:
            return False
        if not future.done():
            future.set_result(value)
        return True

    def resolve_where(self, match: Callable[[tuple[str, ...]], bool]) -> bool:
        keys = [key for key in self._waiting if match(key)]
        for key in keys:
            self.resolve(key)
        return bool(keys)

    def fail(self, match: Callable[[tuple[str, ...]], bool], error: GatewayError) -> bool:
        keys = [key for key in self._waiting if match(key)]
        for key in keys:
            future = self._waiting.pop(key)
            if not future.done():
                future.set_exception(error)
        return bool(keys)

    def fail_all(self, reason: str) -> None:
        """The connection is lost: nothing waiting will be answered."""
        self.fail(lambda _key: True, GatewayError(reason, "remote-server-timeout", "wait"))


#: Refusals of awaited requests: numeric → (XMPP condition, index of the nick parameter or
#: None, index of the channel parameter or None).
REQUEST_REFUSALS: dict[str, tuple[str, int | None, int | None]] = {
    "401": ("item-not-found", 1, None),  # ERR_NOSUCHNICK
    "403": ("item-not-found", None, 1),  # ERR_NOSUCHCHANNEL
    "441": ("item-not-found", 1, 2),  # ERR_USERNOTINCHANNEL
    "442": ("not-acceptable", None, 1),  # ERR_NOTONCHANNEL
    "472": ("bad-request", None, None),  # ERR_UNKNOWNMODE
    "482": ("forbidden", None, 1),  # ERR_CHANOPRIVSNEEDED
    "484": ("not-allowed", None, 1),  # ERR_ISCHANSERVICE: a protected nick
}


def refuse_request(session: ServerSession, line: IrcLine) -> bool:
    """Fail the awaited requests (moderation, VERSION) this error numeric answers."""
    found = REQUEST_REFUSALS.get(line.command)
    if found is None:
        return False
    condition, nick_at, channel_at = found
    nick = session.fold(line.param(nick_at)) if nick_at is not None else None
    channel = session.fold(line.param(channel_at)) if channel_at is not None else None

    def answers(key: tuple[str, ...]) -> bool:
        if key[0] == "VERSION":
            return line.command == "401" and key[1] == nick
        if key[0] == "LIST":
            return False
        return (channel is None or key[1] == channel) and (nick is None or key[2] == nick)

    text = line.params[-1] if len(line.params) > 1 else line.command
    return session.requests.fail(answers, GatewayError(text, condition))


async def refusal(session: ServerSession, line: IrcLine) -> bool:
    """An error numeric as an error on what the user sent; False if it answers nothing."""
    code = line.command
    if not code.isdigit() or code[0] not in "45" or len(line.params) < 2:
        return False
    if refuse_request(session, line):
        return True
    target, text = line.param(1), line.params[-1]
    renaming = session.channels.get(session.nick_room or "")
    if code in NICK_ERRORS and renaming is not None:
        session.nick_room = None
        await channel_messages.refused(session, renaming, "nick", NICK_ERRORS[code], text)
        return True
    channel = session.channels.get(session.fold(target))
    if channel is not None and code in ROOM_ERRORS:
        xmpp_id = None
        if code in CANNOT_SEND:
            xmpp_id = channel.last_xmpp_id
            if session.conn is not None:
                # A refused line is never echoed: its ids must not go to the next echo.
                session.conn.echoes.forget(channel.key)
        await channel_messages.refused(
            session, channel, "message", ROOM_ERRORS[code], text, xmpp_id=xmpp_id
        )
        return True
    if await private_messages.undelivered(session, target, text):
        return True
    raw, session.last_raw_id = session.last_raw_id, None
    if raw is not None:  # it answers the raw command the user just sent
        raw_id, sender = raw
        await session.hooks.deliver_event(
            DeliveryReport(sender or session.user_jid, session.server, raw_id, False, text)
        )
        return True
    return False


async def on_pong(session: ServerSession, line: IrcLine) -> None:
    """PONG to a PING sent after a request: the server has answered all before it."""
    token = line.params[-1] if line.params else ""
    session.requests.resolve_where(lambda key: key[0] == "SYNC" and key[2] == token)
