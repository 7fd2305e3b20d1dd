"""What the server's ISUPPORT (005) changes: its PREFIX, CHANMODES and CASEMAPPING.

The connection keeps the values as they arrive; the session then folds its keys again by the
new CASEMAPPING (handlers.py calls :func:`adopt_casemapping` on the 005 line that names it).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from transports.irc.casemap import RFC1459, casemapping
from transports.irc.modes import DEFAULT_PREFIX, PrefixModes

if TYPE_CHECKING:
    from transports.irc.connection import IrcConnection
    from transports.irc.session import ServerSession

#: Until the server's ISUPPORT says otherwise (immutable: one for every connection).
DEFAULT_PREFIX_MODES = PrefixModes.parse(DEFAULT_PREFIX)


@functools.lru_cache(maxsize=64)
def _prefix_modes(isupport: str) -> PrefixModes:
    """One (immutable) PrefixModes for each PREFIX a server says, not one per connection."""
    return PrefixModes.parse(isupport)


def apply(conn: IrcConnection, tokens: tuple[str, ...]) -> None:
    """Keep the tokens of one 005 line that the connection's users read."""
    for token in tokens:
        key, _, value = token.partition("=")
        if key == "PREFIX":
            conn.prefix_modes = _prefix_modes(value)
        elif key == "CHANMODES" and value:
            conn.chanmodes = value
        elif key == "CASEMAPPING":
            conn.casemapping = casemapping(value)


def adopt_casemapping(session: ServerSession) -> None:
    """The server announced its CASEMAPPING (005): fold every key again by it.

    Only on 005, never at registration: a new connection says rfc1459 until its 005
    arrives, and folding back and forth could merge two channels of an ascii server.

    Room JIDs keep the names the user joined with; only lookup keys change, so that on
    an ``ascii`` server ``#a[b]`` and ``#a{b}`` are two channels, as the server sees them.
    """
    mapping = session.conn.casemapping if session.conn is not None else RFC1459
    if mapping == session.casemapping:
        return
    session.casemapping = mapping
    for channel in session.channels.values():
        channel.remap(mapping)
    keys = {key: channel.key for key, channel in session.channels.items()}
    session.channels = {channel.key: channel for channel in session.channels.values()}
    session.reply_from = {
        session.fold(nick): (keys.get(origin[0], origin[0]), origin[1]) if origin else None
        for nick, origin in session.reply_from.items()
    }
    session._pm_ids = {session.fold(nick): ids for nick, ids in session._pm_ids.items()}
    if session.nick_room is not None:
        session.nick_room = keys.get(session.nick_room, session.nick_room)
