"""Messages outside channels: to and from nicks, the server's words, and CTCP requests.

A private message from a nick comes from that nick's contact JID, or from ``room/nick``
when the user last wrote to that nick from a room (poezio's ``/query``), as biboumi does:
the reply lands in the window where the conversation started. One from the server (or
before registration) comes from the server's JID, and a services notice of the form
``[#chan] text`` goes to that channel when the user is in it. The ids of the user's private
messages are remembered a while, per nick, so that an error numeric (401 no such nick, 404,
…) comes back as an error on the message that caused it.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING

from transports.events import DeliveryReport, InboundMessage, Refers
from transports.irc import channel_messages, invites, versions
from transports.irc.limits import MAX_REMEMBERED_IDS, ReplyBudget, remember
from transports.irc.outgoing import Referring, outgoing
from transports.irc.protocol import IrcLine
from transports.irc.refers_store import PrivateEcho
from transports.irc.tags import replay_time
from transports.irc.text import body_to_xmpp, ctcp
from transports.rooms import RoomError

#: ids are the other side's tokens: a longer one is no id of a message we carried
MAX_ID_CHARS = 256
#: ``[#chan] text``: how services (ChanServ's entry message, …) speak about a channel.
_CHANNEL_NOTICE = re.compile(r"^\[([#&+!][^\]\s,]*)\]")

if TYPE_CHECKING:
    from transports.irc.session import ServerSession


def send(
    session: ServerSession,
    nick: str,
    body: str,
    xmpp_id: str | None,
    full_jid: str = "",
    referring: Referring | None = None,
    taken_at: float | None = None,
) -> None:
    """PRIVMSG; the id is kept with the resource that sent it, for an error to reach it.

    ``taken_at``: when the gateway took it (time.time()), for its delivery time.

    With echo-message, the echo brings the line's msgid, which is recorded with the XMPP id
    (refers_store.PrivateEcho): a later reaction or reply names the message by it.
    """
    assert session.conn is not None
    out = outgoing(body, referring, session.conn.has_cap("message-tags"))
    if xmpp_id:
        sender = full_jid or session.user_jid
        remember(session._pm_ids, session.fold(nick), (xmpp_id, sender), MAX_REMEMBERED_IDS)
    lines = channel_messages.send_out(session, nick, out, taken_at)
    if lines and session.conn.has_cap("echo-message"):
        session.conn.echoes.expect(session.fold(nick), len(lines), xmpp_id, None, out.refers)


async def on_echo(session: ServerSession, line: IrcLine) -> None:
    """The server's echo of the user's private line: its msgid, kept with the XMPP id."""
    if session.conn is None:
        return
    nick = line.param(0)
    sent = session.conn.echoes.echoed(session.fold(nick))
    # Only a message of its own gets its msgid kept: the line of a correction, reaction or
    # retraction is no message to name later, and kept as the latest it would make a
    # retraction of the message it corrects say "a message" rather than "their last".
    if sent is not None and sent.xmpp_id and line.msgid and not _refers_back(sent.refers):
        echo = PrivateEcho(
            session.user_jid,
            session.contact(nick),
            sent.xmpp_id,
            line.msgid,
            body_to_xmpp(line.param(1)),
        )
        await session.hooks.deliver_event(echo)


def _refers_back(refers: Refers | None) -> bool:
    """Whether a line is the IRC form of something done to an earlier message (a reply is a
    message of its own)."""
    return refers is not None and refers.kind != "reply"


def replied(line: IrcLine) -> Refers | None:
    """``+draft/reply=<msgid>`` (IRCv3): the line answers that message."""
    target = line.tags.get("+draft/reply", "")
    return Refers("reply", target) if 0 < len(target) <= MAX_ID_CHARS else None


async def heard(session: ServerSession, line: IrcLine, body: str) -> None:
    """A PRIVMSG or NOTICE to the user, not in a channel (``body`` already for XMPP)."""
    if line.command == "NOTICE" and await _channel_notice(session, line):
        return
    if line.from_server or not session.connected:
        await session.hooks.deliver_event(InboundMessage(session.user_jid, session.server, body))
        return
    await session.hooks.deliver_event(
        dataclasses.replace(
            from_nick(session, line.nick),
            body=body,
            remote_id=line.msgid,
            timestamp=replay_time(line.tags.get("time")),
            refers=replied(line),
        )
    )


def from_nick(session: ServerSession, nick: str) -> InboundMessage:
    """An empty private message from ``nick``, sent where the conversation is: from
    ``room/nick`` to the resource that wrote from the room, else from the nick's JID."""
    key, writer = session.reply_from.get(session.fold(nick)) or ("", "")
    channel = session.channels.get(key)
    if channel is not None:
        room = session.room(channel)
        return InboundMessage(writer, room, "", nick=nick, resource=nick)
    return InboundMessage(session.user_jid, session.contact(nick), "", nick=nick)


async def _channel_notice(session: ServerSession, line: IrcLine) -> bool:
    """``[#chan] text`` from services: a notice in that channel, if the user is in it."""
    found = _CHANNEL_NOTICE.match(line.param(1))
    channel = session.channels.get(session.fold(found.group(1))) if found else None
    if found is None or channel is None or not channel.joined:
        return False
    body = "[notice] " + body_to_xmpp(line.param(1))  # as biboumi: the [#chan] stays
    await channel_messages.room_message(session, channel, line.nick, body, notice=True)
    return True


def renamed(session: ServerSession, old: str, new: str) -> None:
    """A nick changed: its conversation stays where it was (and its 401s still answer)."""
    if session.fold(old) == session.fold(new):
        return
    if session.fold(old) in session.reply_from:
        session.reply_from[session.fold(new)] = session.reply_from.pop(session.fold(old))
    if session.fold(old) in session._pm_ids:
        session._pm_ids[session.fold(new)] = session._pm_ids.pop(session.fold(old))


async def on_ctcp(
    session: ServerSession, nick: str, notice: bool, command: str, argument: str
) -> None:
    """A CTCP request (PRIVMSG), or a reply (NOTICE) to one the user asked (VERSION)."""
    if notice:
        if command == "VERSION":
            versions.answered(session, nick, argument)
        return
    await answer_ctcp(session, nick, command, argument)


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
    """401 ERR_NOSUCHNICK: answers an INVITE, a request, a private message, or is a notice."""
    nick = line.param(1)
    invited = await invites.answered(session, line)
    if session.refuse_request(line):  # a VERSION, a kick or a mode change on that nick
        return
    if await undelivered(session, nick, f"{nick} is not on {session.server}", "item-not-found"):
        return
    if not invited:
        await session.server_reply(line)


async def undelivered(
    session: ServerSession, nick: str, text: str, condition: str = "undefined-condition"
) -> bool:
    """An error numeric naming ``nick``: an error on the user's last private message to it.

    It comes from where the user wrote: the nick's contact JID, or the room's (``room/nick``
    private messages); False when no message to that nick is remembered.
    """
    found = session._pm_ids.pop(session.fold(nick), None)
    if session.conn is not None:
        session.conn.echoes.forget(session.fold(nick))  # refused: it will not be echoed
    if found is None:
        return False
    xmpp_id, sender = found
    channel = session.channels.get((session.reply_from.get(session.fold(nick)) or ("", ""))[0])
    if channel is not None:
        writer = sender.partition("/")[2]
        await session.hooks.deliver_event(
            RoomError(
                session.user_jid,
                session.room(channel),
                (writer,) if writer else channel.present(),
                "message",
                condition,
                text,
                xmpp_id,
                nick,
            )
        )
        return True
    await session.hooks.deliver_event(
        # To the full JID: servers drop error messages addressed to a bare JID.
        DeliveryReport(sender, session.contact(nick), xmpp_id, False, text, condition)
    )
    return True
