"""What is said in a channel: the user's messages, the members' lines, and the topic.

Each line is archived (for history and MAM) and then shown to every resource in the room,
the user's own lines too, with the client's ids so that it recognises its echo.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from transports.base import GatewayError
from transports.irc.channel import Channel
from transports.irc.pending import PendingLine, check_backlog, wait_for_connection
from transports.irc.protocol import IrcLine
from transports.irc.tags import replayed
from transports.irc.text import body_from_xmpp, body_to_xmpp, split_message
from transports.rooms import RoomError, RoomMessage, RoomSubject

if TYPE_CHECKING:
    from transports.irc.session import ServerSession


async def say(
    session: ServerSession,
    full_jid: str,
    channel_key: str,
    body: str,
    xmpp_id: str | None,
    origin_id: str | None,
) -> None:
    """A groupchat message from one of the user's resources; it waits while not joined."""
    channel = session.channels.get(channel_key)
    resource = full_jid.partition("/")[2]
    if channel is None or resource not in channel.resources:
        raise GatewayError("you are not in this room; join it first", "not-acceptable")
    if body == "/mode" or body.startswith("/mode "):
        # As biboumi: a mode change typed in the room; the server's MODE echo shows it.
        session.command("MODE", channel.name, *body[len("/mode") :].split())
        return
    item = PendingLine(channel.key, body, xmpp_id, origin_id, full_jid, True)
    if not (channel.joined and session.connected):
        wait_for_connection(session, item)
        return
    check_backlog(session)
    await say_now(session, channel, item)


async def say_now(session: ServerSession, channel: Channel, item: PendingLine) -> None:
    """Send the user's message, and echo it to the room as IRC carries it: one line each.

    As biboumi: the first line's echo keeps the client's ids (so the client recognises
    its message); the others are new messages, with ids of their own.
    """
    assert session.conn is not None
    text = body_from_xmpp(item.body)
    lines = split_message(
        "PRIVMSG",
        channel.name,
        text.body,
        prefix=session.conn.self_prefix,
        action=text.action,
        encoding=session.options.encoding,
    )
    for line in lines:
        session.conn.send("PRIVMSG", channel.name, line)
    channel.last_xmpp_id = item.xmpp_id
    if session.conn.has_cap("echo-message"):
        # The server's echoes are shown instead (notifications.on_echo), with these ids.
        session.conn.echoes.expect(channel.key, len(lines), item.xmpp_id, item.origin_id)
        return
    echoes = [item.body] if len(lines) <= 1 else [body_to_xmpp(line) for line in lines]
    for index, echo in enumerate(echoes):
        first = index == 0
        await room_message(
            session,
            channel,
            session.nick,
            echo,
            xmpp_id=item.xmpp_id if first else None,
            origin_id=item.origin_id if first else None,
        )


async def room_message(
    session: ServerSession,
    channel: Channel,
    nick: str,
    body: str,
    *,
    notice: bool = False,
    xmpp_id: str | None = None,
    origin_id: str | None = None,
    msgid: str | None = None,
    sent_at: float | None = None,
    replay: bool = False,
) -> None:
    """A line said in the channel: archived, then shown to every resource in the room.

    ``msgid`` is the server's id (IRCv3), the stanza id when the archive gives none;
    ``sent_at`` its server-time; shown as a delay for a line of a replay batch (``replay``),
    or an old one (tags.replayed).
    """
    room = session.room(channel)
    stanza_id = (
        session.hooks.archive_line(
            session.user_jid, room, nick, body, notice, timestamp=sent_at, msgid=msgid
        )
        or msgid
    )
    if channel.present():
        await session.hooks.deliver_event(
            RoomMessage(
                session.user_jid,
                room,
                channel.present(),
                nick,
                body,
                stanza_id,
                xmpp_id,
                origin_id,
                timestamp=sent_at if replay and sent_at is not None else replayed(sent_at),
                notice=notice,
            )
        )


async def on_topic_reply(session: ServerSession, line: IrcLine) -> None:
    """332 RPL_TOPIC: the topic at join, shown when the join completes."""
    channel = session.channels.get(session.fold(line.param(1)))
    if channel is not None:
        channel.topic = line.param(2)


async def on_topic(session: ServerSession, line: IrcLine) -> None:
    channel = session.channels.get(session.fold(line.param(0)))
    if channel is None:
        return
    channel.topic, channel.topic_by = line.param(1), line.nick
    if channel.present():
        await session.hooks.deliver_event(
            RoomSubject(
                session.user_jid, session.room(channel), channel.present(), channel.topic, line.nick
            )
        )


async def refused(
    session: ServerSession,
    channel: Channel,
    on: str,
    condition: str,
    text: str,
    *,
    xmpp_id: str | None = None,
    nick: str = "",
) -> None:
    """What the user asked in the room failed: an error to every resource in it."""
    await session.hooks.deliver_event(
        RoomError(
            session.user_jid,
            session.room(channel),
            channel.present(),
            on,
            condition,
            text,
            xmpp_id,
            nick,
        )
    )
