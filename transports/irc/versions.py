"""jabber:iq:version on an occupant or a nick: CTCP VERSION, answered by the NOTICE reply.

Asking twice for the same nick waits for the same reply; the requests waiting are bounded
by the session's table (answers.py). An IRC user whose client does not answer gets the
user a remote-server-timeout error, not a made-up version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from transports.base import GatewayError
from transports.irc.text import ctcp, strip_formatting

if TYPE_CHECKING:
    from transports.irc.session import ServerSession

#: Seconds an IRC client has to answer CTCP VERSION.
VERSION_TIMEOUT = 10.0
#: A reply longer than this is cut (it is shown as the software's name).
MAX_VERSION_CHARS = 200


async def ask(session: ServerSession, nick: str) -> str:
    if session.conn is None or not session.connected:
        raise GatewayError(f"not connected to {session.server} yet", "service-unavailable", "wait")
    key = ("VERSION", session.fold(nick))
    if not session.requests.waiting(key):
        session.requests.open(key)
        session.conn.send("PRIVMSG", nick, ctcp("VERSION"))
    try:
        return str(await session.requests.wait(key, VERSION_TIMEOUT))
    except TimeoutError:
        raise GatewayError(
            f"{nick} did not say which software it uses", "remote-server-timeout", "wait"
        ) from None


def answered(session: ServerSession, nick: str, reply: str) -> None:
    """A CTCP VERSION reply (in a NOTICE) from ``nick``; ignored unless it was asked."""
    text = strip_formatting(reply).strip()[:MAX_VERSION_CHARS] or "unknown"
    session.requests.resolve(("VERSION", session.fold(nick)), text)
