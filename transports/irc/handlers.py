"""Which function handles which IRC line, for a session's line worker.

Each handler takes the session and the line. Commands not named here are ignored; numerics
not named here (nor quiet) are shown to the user as the server's words
(``ServerSession.server_reply``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from transports.irc import channel_messages, invites, membership, private_messages
from transports.irc.channel import fold
from transports.irc.protocol import IrcLine
from transports.irc.text import body_to_xmpp, parse_ctcp

if TYPE_CHECKING:
    from transports.irc.session import ServerSession

Handler = Callable[["ServerSession", IrcLine], Awaitable[None]]


async def _on_text(session: ServerSession, line: IrcLine, notice: bool) -> None:
    """PRIVMSG or NOTICE: a CTCP request, a line in a channel, or a private message."""
    target, text = line.param(0), line.param(1)
    found = parse_ctcp(text)
    if found is not None and found[0] != "ACTION":
        if not notice:
            await private_messages.answer_ctcp(session, line.nick, *found)
        return
    body = body_to_xmpp(text)
    if notice:
        body = f"[notice] {body}"
    channel = session.channels.get(fold(target))
    if channel is not None:
        await channel_messages.room_message(session, channel, line.nick, body, notice=notice)
    else:
        await private_messages.heard(session, line, body)


async def _on_privmsg(session: ServerSession, line: IrcLine) -> None:
    await _on_text(session, line, notice=False)


async def _on_notice(session: ServerSession, line: IrcLine) -> None:
    await _on_text(session, line, notice=True)


#: What handles each IRC command or numeric; other numerics are shown as the server's words.
HANDLERS: dict[str, Handler] = {
    "JOIN": membership.on_join,
    "353": membership.on_names,
    "366": membership.on_end_of_names,
    "PART": membership.on_part,
    "QUIT": membership.on_quit,
    "KICK": membership.on_kick,
    "NICK": membership.on_nick,
    "MODE": membership.on_mode,
    "432": membership.on_nick_invalid,
    "433": membership.on_nick_taken,
    "436": membership.on_nick_taken,
    "332": channel_messages.on_topic_reply,
    "TOPIC": channel_messages.on_topic,
    "404": channel_messages.on_cannot_send,
    "PRIVMSG": _on_privmsg,
    "NOTICE": _on_notice,
    "401": private_messages.on_no_such_nick,
    "INVITE": invites.on_invite,
    "341": invites.on_reply,
    "442": invites.on_reply,
    "443": invites.on_reply,
    "482": invites.on_reply,
}
