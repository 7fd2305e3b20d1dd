"""XEP-0085 chat states as IRCv3 ``+typing`` client tags (TAGMSG), where the server allows.

Only a server with ``message-tags`` enabled can carry a TAGMSG; elsewhere the state is
dropped, as an IRC client without the capability drops it. Only while connected: a typing
notification is worthless once late, so it never waits for the connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transports.irc.session import ServerSession

#: XEP-0085 state → IRCv3 ``+typing`` value (``inactive``/``gone``: the user stopped).
TYPING = {"composing": "active", "paused": "paused", "active": "done", "inactive": "done"}


def send_typing(session: ServerSession, target: str, state: str) -> bool:
    """TAGMSG ``target`` with ``+typing``; False when nothing was sent."""
    typing = TYPING.get(state)
    conn = session.conn
    if typing is None or conn is None or not session.connected:
        return False
    if not conn.has_cap("message-tags"):
        return False
    conn.send("TAGMSG", target, tags={"+typing": typing})
    return True
