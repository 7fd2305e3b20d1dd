"""What is said in a channel: the user's messages, the members' lines, and the topic.

Each line is archived (for history and MAM) and then shown to every resource in the room,
the user's own lines too, with the client's ids so that it recognises its echo.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from transports.base import GatewayError
from transports.events import Refers, new_stanza_id
from transports.irc.channel import Channel
from transports.irc.limits import MAX_REMEMBERED_IDS, remember
from transports.irc.line_writer import Written
from transports.irc.outgoing import Outgoing, Referring, outgoing
from transports.irc.pending import PendingLine, check_backlog, wait_for_connection
from transports.irc.protocol import IrcLine
from transports.irc.refer_forms import substitution
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
    referring: Referring | None = None,
    taken_at: float | None = None,
) -> None:
    """A groupchat message from one of the user's resources; it waits while not joined.

    ``referring``: what it does to an earlier message, if anything (outgoing.py);
    ``taken_at``: when the gateway took it (time.time()), for its delivery time.
    """
    channel = session.channels.get(channel_key)
    resource = full_jid.partition("/")[2]
    if channel is None or resource not in channel.resources:
        raise GatewayError("you are not in this room; join it first", "not-acceptable")
    if body == "/mode" or body.startswith("/mode "):
        # As biboumi: a mode change typed in the room; the server's MODE echo shows it.
        session.command("MODE", channel.name, *body[len("/mode") :].split())
        return
    item = PendingLine(
        channel.key,
        body,
        xmpp_id,
        origin_id,
        full_jid,
        True,
        referring=referring,
        taken_at=taken_at,
    )
    if not (channel.joined and session.connected):
        wait_for_connection(session, item)
        return
    check_backlog(session)
    await say_now(session, channel, item)


async def say_now(session: ServerSession, channel: Channel, item: PendingLine) -> None:
    """Send the user's message, and echo it to the room as IRC carries it: one line each.

    As biboumi: the first line's echo keeps the client's ids (so the client recognises
    its message); the others are new messages, with ids of their own. A message that
    refers to another (a correction, reply, reaction, retraction) is echoed once, whole,
    as the user sent it, so that their client applies it to the message it names.
    """
    assert session.conn is not None
    out = outgoing(item.body, item.referring, session.conn.has_cap("message-tags"))
    lines = send_out(session, channel.name, out, item.taken_at)
    channel.last_xmpp_id = item.xmpp_id
    if session.conn.has_cap("echo-message") and (lines or out.refers is None):
        # The server's echoes are shown instead (notifications.on_echo), with these ids.
        session.conn.echoes.expect(
            channel.key, len(lines), item.xmpp_id, item.origin_id, out.refers, out.echo
        )
        return
    if out.refers is not None or len(lines) <= 1:
        echoes = [out.echo]
    else:
        echoes = [body_to_xmpp(line) for line in lines]
    for index, echo in enumerate(echoes):
        first = index == 0
        await room_message(
            session,
            channel,
            session.nick,
            echo,
            xmpp_id=item.xmpp_id if first else None,
            origin_id=item.origin_id if first else None,
            refers=out.refers,
        )


def send_out(
    session: ServerSession, target: str, out: Outgoing, taken_at: float | None
) -> list[str]:
    """The user's message to ``target``: its TAGMSGs, then ``out.text`` as PRIVMSGs (its
    tags on the first line); the PRIVMSG lines sent.

    Once the last of them is written to the socket (after the throttle), the delivery time
    from ``taken_at`` is counted (``portway_delivery_seconds``, direction out).
    """
    assert session.conn is not None
    written: Written | None = None
    if taken_at is not None:
        written = partial(session.hooks.handed_out, taken_at)
    lines: list[str] = []
    if out.text:
        text = body_from_xmpp(out.text)
        lines = split_message(
            "PRIVMSG",
            target,
            text.body,
            prefix=session.conn.self_prefix,
            action=text.action,
            encoding=session.options.encoding,
        )
    last = len(out.tagmsgs) + len(lines) - 1
    for index, client_tags in enumerate(out.tagmsgs):
        told = _only_last(index == last, written)
        session.conn.send("TAGMSG", target, tags=dict(client_tags), written=told)
    for index, line in enumerate(lines):
        tags = dict(out.tags) if index == 0 and out.tags else None
        told = _only_last(len(out.tagmsgs) + index == last, written)
        session.conn.send("PRIVMSG", target, line, tags=tags, written=told)
    return lines


def _only_last(last: bool, written: Written | None) -> Written | None:
    """Only the message's last line tells that it was written."""
    return written if last else None


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
    refers: Refers | None = None,
) -> None:
    """A line said in the channel: archived, then shown to every resource in the room.

    ``msgid`` is the server's id (IRCv3), the stanza id when the archive gives none;
    ``sent_at`` its server-time; shown as a delay for a line of a replay batch (``replay``),
    or an old one (tags.replayed). A reaction or a retraction has no text to archive.
    """
    room = session.room(channel)
    stanza_id = (
        session.hooks.archive_line(
            session.user_jid, room, nick, body, notice, timestamp=sent_at, msgid=msgid
        )
        if body
        else None
    ) or msgid
    shown = body
    if nick == session.nick:
        if xmpp_id and (refers is None or refers.kind == "reply"):
            channel.last_own = stanza_id
    elif not (notice or replay):
        if stanza_id is None:
            xmpp_id = new_stanza_id()  # the id a correction of this line will name
        shown, refers = _corrected(channel, nick, body, stanza_id or xmpp_id or "", refers)
    if channel.present():
        await session.hooks.deliver_event(
            RoomMessage(
                session.user_jid,
                room,
                channel.present(),
                nick,
                shown,
                stanza_id,
                xmpp_id,
                origin_id,
                timestamp=sent_at if replay and sent_at is not None else replayed(sent_at),
                notice=notice,
                refers=refers,
            )
        )


def _corrected(
    channel: Channel, nick: str, body: str, line_id: str, refers: Refers | None
) -> tuple[str, Refers | None]:
    """A member's ``s/old/new/`` right after their line corrects it (XEP-0308): the body
    shown and what it does; any other line is kept as the one a later fix applies to.

    The correction names the first line's id, as XEP-0308 asks, however often it is fixed.
    """
    key = channel.fold(nick)
    fix = substitution(body) if refers is None else None
    earlier = channel.last_lines.get(key)
    fixed = fix.applied(earlier[1]) if fix is not None and earlier is not None else None
    if earlier is None or fixed is None:
        remember(channel.last_lines, key, (line_id, body), MAX_REMEMBERED_IDS)
        return body, refers
    remember(channel.last_lines, key, (earlier[0], fixed), MAX_REMEMBERED_IDS)
    return fixed, Refers("correction", earlier[0])


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
