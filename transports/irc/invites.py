"""Which of the server's replies answer the user's INVITEs.

A server answers an INVITE with 341 (RPL_INVITING) or with an error numeric: some name the
nick (401, 443), others only the channel (442, 482), and none names the INVITE. The session
keeps here the invitations still waiting for their answer, so that a reply is told apart
from the same numeric caused by something else (482 after a KICK, 401 after a private
message) and becomes what the user sees: a word in the room, or an error stanza.

An INVITE from someone on IRC to the user becomes a :class:`RoomInvite`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from transports.base import GatewayError
from transports.events import InboundMessage
from transports.irc.addressing import IrcAddress, parse_address
from transports.irc.limits import MAX_PENDING_INVITES, remember
from transports.irc.protocol import IrcLine
from transports.rooms import RoomError, RoomInvite, RoomStatus

if TYPE_CHECKING:
    from transports.irc.session import ServerSession
    from transports.irc.transport import IrcTransport

#: Error numerics an INVITE may get → XMPP error condition.
INVITE_ERRORS = {
    "401": "item-not-found",  # ERR_NOSUCHNICK
    "442": "not-acceptable",  # ERR_NOTONCHANNEL
    "443": "conflict",  # ERR_USERONCHANNEL
    "482": "forbidden",  # ERR_CHANOPRIVSNEEDED (an invite-only channel)
}
#: Replies whose first parameter after ours is the invited nick (the others name the channel).
NAMING_THE_NICK = ("341", "401", "443")


@dataclass(frozen=True)
class InviteAnswer:
    nick: str
    #: the channel as the user's INVITE named it (its room JID, even once the room is left)
    channel: str
    condition: str | None  # None: the server passed the invitation on
    text: str


class PendingInvites:
    """Invitations sent and not answered yet, by invited nick (one at a time per nick)."""

    __slots__ = ("_fold", "_waiting")

    def __init__(self, fold: Callable[[str], str]) -> None:
        #: the session's folding (its server's CASEMAPPING)
        self._fold = fold
        #: fold(nick) → (nick, channel name)
        self._waiting: dict[str, tuple[str, str]] = {}

    def __bool__(self) -> bool:
        return bool(self._waiting)

    def sent(self, nick: str, channel: str) -> None:
        """Wait for the answer; past the bound, the oldest invitation's answer is not awaited."""
        remember(self._waiting, self._fold(nick), (nick, channel), MAX_PENDING_INVITES)

    def answer(self, line: IrcLine) -> InviteAnswer | None:
        """The invitation ``line`` answers, and how; None if it answers none of ours."""
        if line.command != "341" and line.command not in INVITE_ERRORS:
            return None
        if line.command in NAMING_THE_NICK:
            found = self._waiting.pop(self._fold(line.param(1)), None)
        else:
            key = self._fold(line.param(1))
            nick = next((n for n, (_, c) in self._waiting.items() if self._fold(c) == key), None)
            found = self._waiting.pop(nick) if nick is not None else None
        if found is None:
            return None
        nick, key = found
        if line.command == "341":
            return InviteAnswer(nick, key, None, f"{nick} has been invited to {line.param(2, key)}")
        reason = line.params[-1] if len(line.params) > 2 else line.command
        return InviteAnswer(
            nick, key, INVITE_ERRORS[line.command], f"cannot invite {nick} to {key}: {reason}"
        )


def invited_nick(transport: IrcTransport, address: IrcAddress, invitee: str) -> str:
    """The nick an invitation to the channel ``address`` goes to (``invitee``: a JID's
    localpart): IRC invites a nick on the channel's own server, nothing else."""
    target = parse_address(invitee, transport.settings.fixed_server)
    if target.kind != "nick" or target.server != address.server:
        example = transport.format_address(f"nick%{address.server}")
        raise GatewayError(
            f"only a nick on {address.server} can be invited to {address.name} "
            f"({example}@{transport.host.domain})",
            "not-acceptable",
            "modify",
        )
    return target.name


def invite(transport: IrcTransport, user_jid: str, address: IrcAddress, invitee: str) -> None:
    """INVITE, as an IRC client sends it: IRC carries no reason, so none is sent.

    Mediated (XEP-0045) and direct (XEP-0249) invitations both come here. The user must be
    in the channel (any of their resources, or a persistent room): IRC requires it.
    """
    nick = invited_nick(transport, address, invitee)
    session = transport.sessions.get((user_jid, address.server))
    if session is None:
        raise GatewayError(f"you are not in {address.name}; join it first", "not-acceptable")
    send(session, address.name, nick)


def send(session: ServerSession, channel_name: str, nick: str) -> None:
    """INVITE, as an IRC client sends it; the server's answer comes back as an event."""
    channel = session.channels.get(session.fold(channel_name))
    if channel is None:
        raise GatewayError(f"you are not in {channel_name}; join it first", "not-acceptable")
    if session.conn is None or not session.connected:
        raise GatewayError(f"not connected to {session.server} yet", "service-unavailable", "wait")
    if session.invites is None:
        session.invites = PendingInvites(session.fold)
    session.invites.sent(nick, channel.name)
    session.conn.send("INVITE", nick, channel.name)


async def on_invite(session: ServerSession, line: IrcLine) -> None:
    """Someone on IRC invites the user to a channel."""
    channel = IrcAddress("channel", session.server, line.param(1))  # as written: a JID
    await session.hooks.deliver_event(RoomInvite(session.user_jid, str(channel), line.nick))


async def answered(session: ServerSession, line: IrcLine) -> bool:
    """The server's answer to one of the user's INVITEs: a word in the room, or an error."""
    answer = session.invites.answer(line) if session.invites else None
    if answer is None:
        return False
    if not session.invites:
        session.invites = None
    channel = session.channels.get(session.fold(answer.channel))
    room = str(IrcAddress("channel", session.server, answer.channel))
    if answer.condition is not None:
        await session.hooks.deliver_event(
            RoomError(
                session.user_jid,
                room,
                (),
                "invite",
                answer.condition,
                answer.text,
                nick=answer.nick,
            )
        )
    elif channel is not None and channel.present():
        await session.hooks.deliver_event(
            RoomStatus(session.user_jid, room, channel.present(), answer.text)
        )
    else:
        await session.hooks.deliver_event(
            InboundMessage(session.user_jid, session.server, answer.text)
        )
    return True


async def on_reply(session: ServerSession, line: IrcLine) -> None:
    """RPL_INVITING, and the errors an INVITE may get (401 is private_messages')."""
    if not await answered(session, line):
        await session.server_reply(line)
