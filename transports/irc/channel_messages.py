"""What is said in a channel: the user's messages, the members' lines, and the topic.

Each line is archived (for history and MAM) and then shown to every resource in the room,
the user's own lines too, with the client's ids so that it recognises its echo.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from transports.base import GatewayError
from transports.irc.channel import Channel, fold
from transports.irc.pending import PendingLine, check_backlog, wait_for_connection
from transports.irc.protocol import IrcLine
from transports.irc.text import body_from_xmpp, split_message
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
    item = PendingLine(channel.key, body, xmpp_id, origin_id, full_jid, True)
    if not (channel.joined and session.connected):
        wait_for_connection(session, item)
        return
    check_backlog(session)
    await say_now(session, channel, item)


async def say_now(session: ServerSession, channel: Channel, item: PendingLine) -> None:
    assert session.conn is not None
    text = body_from_xmpp(item.body)
    for line in split_message(
        "PRIVMSG",
        channel.name,
        text.body,
        prefix=session.conn.self_prefix,
        action=text.action,
        encoding=session.options.encoding,
    ):
        session.conn.send("PRIVMSG", channel.name, line)
    channel.last_xmpp_id = item.xmpp_id
    await room_message(
        session, channel, session.nick, item.body, xmpp_id=item.xmpp_id, origin_id=item.origin_id
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
) -> None:
    """A line said in the channel: archived, then shown to every resource in the room."""
    room = session.room(channel)
    stanza_id = session.hooks.archive_line(session.user_jid, room, nick, body, notice)
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
                notice=notice,
            )
        )


async def on_topic_reply(session: ServerSession, line: IrcLine) -> None:
    """332 RPL_TOPIC: the topic at join, shown when the join completes."""
    channel = session.channels.get(fold(line.param(1)))
    if channel is not None:
        channel.topic = line.param(2)


async def on_topic(session: ServerSession, line: IrcLine) -> None:
    channel = session.channels.get(fold(line.param(0)))
    if channel is None:
        return
    channel.topic, channel.topic_by = line.param(1), line.nick
    if channel.present():
        await session.hooks.deliver_event(
            RoomSubject(
                session.user_jid, session.room(channel), channel.present(), channel.topic, line.nick
            )
        )


async def on_cannot_send(session: ServerSession, line: IrcLine) -> None:
    """404 ERR_CANNOTSENDTOCHAN: an error answering the user's last message there."""
    channel = session.channels.get(fold(line.param(1)))
    if channel is None:
        await session.server_reply(line)
        return
    await refused(
        session, channel, "message", "forbidden", line.param(2), xmpp_id=channel.last_xmpp_id
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
