"""What IRCv3 servers tell beyond RFC 1459: away-notify, invite-notify, ``+typing``, echoes.

- away-notify: ``:nick!u@h AWAY :gone`` (and ``AWAY`` alone on return) becomes the
  occupant's show ``away`` (and back), with the away text as status, in every room the nick
  is in; without the capability the server sends none of these, and nothing changes.
- invite-notify: ``:op INVITE bob #chan`` for someone else is a status line in the room;
  only an INVITE naming the user is an invitation to the user.
- ``+typing`` client tags (TAGMSG): active, paused and done become the XEP-0085 states
  composing, paused and active, in a room or from a nick's contact JID.
- ``+draft/react``/``+draft/unreact`` client tags (TAGMSG, with ``+draft/reply``): a
  reaction to the message of that msgid (refers_store.py makes it XEP-0444).
- echo-message: the server's echo of the user's own line is what the room shows, with the
  ids of the XMPP message it came from (echoes.py); an echo of a private line is not shown,
  since the user's client shows what it sent, but its msgid is kept with the message's
  XMPP id (private_messages.on_echo), for replies and reactions to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from transports.events import ContactChatState, InboundMessage
from transports.irc import channel_messages, invites, membership, private_messages
from transports.irc.channel import Channel
from transports.irc.protocol import IrcLine
from transports.irc.refers_store import HeardReaction
from transports.rooms import RoomChatState, RoomMessage, RoomStatus

if TYPE_CHECKING:
    from transports.irc.session import ServerSession

#: IRCv3 ``+typing`` value → XEP-0085 state.
CHAT_STATES = {"active": "composing", "paused": "paused", "done": "active"}


def is_own(session: ServerSession, line: IrcLine) -> bool:
    """The line is the server's echo of something the user sent (echo-message)."""
    # The server writes our nick as it registered it, which is ``session.nick``: no folding.
    conn = session.conn
    return (
        "!" in line.prefix
        and line.nick == session.nick
        and conn is not None
        and conn.has_cap("echo-message")
    )


async def on_echo(session: ServerSession, channel: Channel, body: str, line: IrcLine) -> None:
    """The user's own line in a room, as the server accepted it: shown with its ids (a
    message that refers to another is shown once, whole, as the user sent it)."""
    if session.conn is None:
        return
    sent = session.conn.echoes.echoed(channel.key)
    if sent is not None and sent.echo is False:
        return  # a later line of a message shown whole on its first line
    if sent is not None and isinstance(sent.echo, str):
        body = sent.echo
    await channel_messages.room_message(
        session,
        channel,
        session.nick,
        body,
        xmpp_id=sent.xmpp_id if sent else None,
        origin_id=sent.origin_id if sent else None,
        msgid=line.msgid,
        sent_at=line.time,
        refers=sent.refers if sent else None,
    )


async def on_away(session: ServerSession, line: IrcLine) -> None:
    """away-notify: a member went away (with a reason) or came back (no parameter).

    The member stays away until it says otherwise: every later presence of it (a mode
    change, a new host) keeps show ``away`` (membership.tell_room).
    """
    message = line.param(0)
    for channel in session.channels.values():
        member = channel.member(line.nick)
        if member is None:
            continue
        member.away = bool(message)
        if channel.present() and channel.joined:
            await membership.tell_room(session, channel, member, status=message)


async def on_invite(session: ServerSession, line: IrcLine) -> None:
    """An INVITE for the user is an invitation; one for someone else (invite-notify) is a
    line of status in the room, where the user is in it."""
    invited, channel_name = line.param(0), line.param(1)
    conn = session.conn
    if conn is None or session.fold(invited) == session.fold(session.nick):
        await invites.on_invite(session, line)
        return
    channel = session.channels.get(session.fold(channel_name))
    if channel is not None and channel.present():
        await session.hooks.deliver_event(
            RoomStatus(
                session.user_jid,
                session.room(channel),
                channel.present(),
                f"{line.nick} invited {invited} to {channel.name}",
            )
        )


async def on_tagmsg(session: ServerSession, line: IrcLine) -> None:
    """A TAGMSG: ``+typing``, or a reaction; the user's own echo is ignored."""
    if session.conn is None or is_own(session, line) or line.from_server:
        return
    if "+draft/react" in line.tags or "+draft/unreact" in line.tags:
        await _on_reaction(session, line)
        return
    state = CHAT_STATES.get(line.tags.get("+typing", ""))
    if state is None:
        return
    channel = session.channels.get(session.fold(line.param(0)))
    if channel is not None:
        if channel.present() and channel.joined:
            await session.hooks.deliver_event(
                RoomChatState(
                    session.user_jid,
                    session.room(channel),
                    channel.present(),
                    line.nick,
                    state,
                )
            )
        return
    if session.fold(line.param(0)) == session.fold(session.nick):
        await session.hooks.deliver_event(
            ContactChatState(session.user_jid, session.contact(line.nick), state)
        )


async def _on_reaction(session: ServerSession, line: IrcLine) -> None:
    """``+draft/react`` (``+draft/unreact``) with ``+draft/reply=<msgid>``: a reaction added
    to (removed from) that message; the transport makes it the nick's whole set (XEP-0444)."""
    removed = "+draft/react" not in line.tags
    emoji = line.tags.get("+draft/unreact" if removed else "+draft/react", "").strip()
    target = private_messages.replied(line)
    if not emoji or target is None:
        return
    channel = session.channels.get(session.fold(line.param(0)))
    message: RoomMessage | InboundMessage
    if channel is not None:
        if not (channel.present() and channel.joined):
            return
        room = session.room(channel)
        message = RoomMessage(session.user_jid, room, channel.present(), line.nick, "")
    elif session.fold(line.param(0)) == session.fold(session.nick):
        message = private_messages.from_nick(session, line.nick)
    else:
        return
    reactor = session.contact(line.nick)
    await session.hooks.deliver_event(
        HeardReaction(message, reactor, target.target, emoji, removed)
    )
