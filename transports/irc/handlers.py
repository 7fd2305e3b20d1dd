"""Which function handles which IRC line, for a session's line worker.

Each handler takes the session and the line. This table is the only one: a line is handled
here or nowhere. Commands not named here are ignored; numerics not named here (nor quiet)
go to ``ServerSession.server_reply``: a failed join, an error answering what the user sent
(answers.refusal: 403, 404, 482…), or else the server's words shown to the user.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from transports.irc import (
    answers,
    batches,
    channel_list,
    channel_messages,
    invites,
    isupport,
    membership,
    notifications,
    private_messages,
    users,
)
from transports.irc.protocol import IrcLine
from transports.irc.text import body_to_xmpp, parse_ctcp

if TYPE_CHECKING:
    from transports.irc.session import ServerSession

Handler = Callable[["ServerSession", IrcLine], Awaitable[None]]


async def _on_text(session: ServerSession, line: IrcLine, notice: bool) -> None:
    """PRIVMSG or NOTICE: a CTCP request, a line in a channel, or a private message.

    With echo-message, the user's own lines come back too: they are echoes, never requests
    or messages from someone else. Inside a batch (netsplit, chathistory) lines are handled
    as any other; a line of a replay batch (chathistory) is shown as history. A
    ``+draft/reply`` tag makes the line a reply to the message of that msgid.
    """
    target, text = line.param(0), line.param(1)
    if notifications.is_own(session, line):
        channel = session.channels.get(session.fold(target))
        if not notice and channel is not None:
            await notifications.on_echo(session, channel, body_to_xmpp(text), line)
        elif not notice:
            await private_messages.on_echo(session, line)
        return
    found = parse_ctcp(text)
    if found is not None and found[0] != "ACTION":
        await private_messages.on_ctcp(session, line.nick, notice, *found)
        return
    body = body_to_xmpp(text)
    if notice:
        body = f"[notice] {body}"
    channel = session.channels.get(session.fold(target))
    if channel is not None:
        await channel_messages.room_message(
            session,
            channel,
            line.nick,
            body,
            notice=notice,
            msgid=line.msgid,
            sent_at=line.time,
            replay=session.batches.is_replay(line),
            refers=private_messages.replied(line),
        )
    else:
        await private_messages.heard(session, line, body)


async def _on_privmsg(session: ServerSession, line: IrcLine) -> None:
    await _on_text(session, line, notice=False)


async def _on_notice(session: ServerSession, line: IrcLine) -> None:
    await _on_text(session, line, notice=True)


async def _on_isupport(session: ServerSession, line: IrcLine) -> None:
    """005: the connection read the server's settings; keys follow its CASEMAPPING.

    Only the 005 line that names it counts: a server sends several, and the others must not
    set the keys back to the default in between.
    """
    if any(token.startswith("CASEMAPPING=") for token in line.params[1:-1]):
        isupport.adopt_casemapping(session)


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
    "BATCH": batches.on_batch,
    "PRIVMSG": _on_privmsg,
    "NOTICE": _on_notice,
    "401": private_messages.on_no_such_nick,
    "INVITE": notifications.on_invite,
    "AWAY": notifications.on_away,
    "TAGMSG": notifications.on_tagmsg,
    "341": invites.on_reply,
    "442": invites.on_reply,
    "443": invites.on_reply,
    "482": invites.on_reply,
    "005": _on_isupport,
    "PONG": answers.on_pong,
    "321": channel_list.on_start,
    "322": channel_list.on_item,
    "323": channel_list.on_end,
    "352": users.on_who_reply,
    "315": users.on_end_of_who,
    "CHGHOST": users.on_chghost,
    "ACCOUNT": users.on_account,
}
