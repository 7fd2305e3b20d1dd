"""What the user asks of the server directly: raw commands, the nick, away.

A raw command sent to the server JID usually opens the connection: it waits for the
registration, as a private message does, instead of being refused. A connection opened by
a raw command or a private message took a default nick; the first join then chooses the
nick (as biboumi), and only the first one, so later joins do not each rename the user.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import TYPE_CHECKING

from transports.irc import pending, private_messages
from transports.irc.limits import one_line
from transports.irc.pending import PendingLine
from transports.irc.protocol import UnsafeLine, parse_line, parse_raw_command

if TYPE_CHECKING:
    from transports.irc.session import ServerSession


def raw(
    session: ServerSession, command: str, xmpp_id: str | None = None, full_jid: str = ""
) -> None:
    """A raw command the user sent to the server JID (already checked, one line)."""
    if session.conn is None or not session.connected:
        item = PendingLine("", command, xmpp_id, None, full_jid, False, raw=True)
        pending.wait_for_connection(session, item)
        return
    session.last_raw_id = (xmpp_id, full_jid) if xmpp_id else None
    session.conn.send(*split_raw(command))


def choose_nick(session: ServerSession, nick: str) -> None:
    """A join's nick: the first join decides the nick of a connection opened without one.

    The first join asks for its own nick (NICK), and the join's answer says what it got.
    """
    if session.nick_chosen:
        return
    session.nick_chosen = True
    if session.fold(nick) == session.fold(session.nick):
        return
    session.options = dataclasses.replace(session.options, nick=nick)  # for later connections
    if session.conn is not None and session.connected:
        session.conn.send("NICK", nick)
    else:
        session.wanted_nick = nick  # the connection under way registers with the old one


def set_away(session: ServerSession, message: str | None) -> None:
    """AWAY on IRC; one line, so that it can be sent again at every reconnect."""
    message = one_line(message) if message else None
    if message == session.away:
        return
    session.away = message
    if session.conn is not None and session.connected:
        session.conn.send("AWAY", *((message,) if message else ()))


def after_registration(session: ServerSession) -> None:
    """Registered: the configured commands, the chosen nick, away, the rejoins, and then
    the private messages and raw commands that waited for the connection, in order."""
    conn = session.conn
    assert conn is not None
    for command in session.after_connect:
        with contextlib.suppress(UnsafeLine):
            conn.send(*split_raw(parse_raw_command(command)))
    wanted, session.wanted_nick = session.wanted_nick, None
    if wanted is not None and session.fold(wanted) != session.fold(session.nick):
        conn.send("NICK", wanted)  # before the JOINs: they take this nick
    if session.away:
        with contextlib.suppress(UnsafeLine):  # one line already: a reconnect never fails
            conn.send("AWAY", session.away)
    for channel in session.channels.values():
        if channel.wanted:
            conn.send("JOIN", channel.name)
    for item in [p for p in session.pending if not p.in_room]:
        session.pending.remove(item)
        if item.raw:
            session.last_raw_id = (item.xmpp_id, item.full_jid) if item.xmpp_id else None
            conn.send(*split_raw(item.body))
        else:
            private_messages.send(
                session,
                item.target,
                item.body,
                item.xmpp_id,
                item.full_jid,
                item.referring,
                item.taken_at,
            )


def split_raw(line: str) -> tuple[str, ...]:
    """A checked raw line back into command and parameters for ``IrcConnection.send``."""
    parsed = parse_line(line)
    return (parsed.command, *parsed.params)
