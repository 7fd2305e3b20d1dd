"""Messages outside channels: to and from nicks, the server's words, and CTCP requests.

A private message from a nick comes from that nick's contact JID; one from the server (or
before registration) from the server's JID. The ids of the user's private messages are
remembered a while, per nick, so that 401 (no such nick) comes back as an error on the
message that caused it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from transports.base import DeliveryReport, InboundMessage
from transports.irc import invites
from transports.irc.channel import fold
from transports.irc.limits import MAX_REMEMBERED_IDS, ReplyBudget, remember
from transports.irc.protocol import IrcLine
from transports.irc.text import body_from_xmpp, ctcp, split_message

if TYPE_CHECKING:
    from transports.irc.session import ServerSession


def send(session: ServerSession, nick: str, body: str, xmpp_id: str | None) -> None:
    assert session.conn is not None
    text = body_from_xmpp(body)
    if xmpp_id:
        remember(session._pm_ids, fold(nick), xmpp_id, MAX_REMEMBERED_IDS)
    for line in split_message(
        "PRIVMSG",
        nick,
        text.body,
        prefix=session.conn.self_prefix,
        action=text.action,
        encoding=session.options.encoding,
    ):
        session.conn.send("PRIVMSG", nick, line)


async def heard(session: ServerSession, line: IrcLine, body: str) -> None:
    """A PRIVMSG or NOTICE to the user, not in a channel (``body`` already for XMPP)."""
    if line.from_server or not session.connected:
        await session.hooks.deliver_event(InboundMessage(session.user_jid, session.server, body))
    else:
        await session.hooks.deliver_event(
            InboundMessage(session.user_jid, session.contact(line.nick), body, nick=line.nick)
        )


async def answer_ctcp(session: ServerSession, nick: str, command: str, argument: str) -> None:
    if session.conn is None:
        return
    if session.ctcp_budget is None:
        session.ctcp_budget = ReplyBudget()
    if command not in ("VERSION", "PING") or not session.ctcp_budget.take():
        return  # a flood of requests gets no flood of replies
    if command == "VERSION":
        session.conn.send("NOTICE", nick, ctcp("VERSION", session.hooks.version_reply))
    elif command == "PING":
        session.conn.send("NOTICE", nick, ctcp("PING", argument[:100]))


async def on_no_such_nick(session: ServerSession, line: IrcLine) -> None:
    """401 ERR_NOSUCHNICK: answers an INVITE, or a private message, or else is a notice."""
    nick = line.param(1)
    invited = await invites.answered(session, line)
    xmpp_id = session._pm_ids.pop(fold(nick), None)
    if xmpp_id:
        await session.hooks.deliver_event(
            DeliveryReport(
                session.user_jid,
                session.contact(nick),
                xmpp_id,
                False,
                f"{nick} is not on {session.server}",
            )
        )
    elif not invited:
        await session.server_reply(line)
