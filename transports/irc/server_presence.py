"""The IRC server as the user sees it while its connection comes and goes.

The server's contact is online once the connection is registered ("connected as" the nick)
and offline, with the reason, when it is lost. A lost connection also leaves each channel
unjoined until the rejoin, says so in each room the user is in, and fails what waited for
the old connection's answers: they will not come.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from transports.events import ContactPresence
from transports.rooms import RoomStatus

if TYPE_CHECKING:
    from transports.irc.session import ServerSession


async def connected(session: ServerSession) -> None:
    """The connection is registered: the server's contact comes online."""
    await session.hooks.deliver_event(
        ContactPresence(session.user_jid, session.server, True, "", f"connected as {session.nick}")
    )


async def disconnected(session: ServerSession, reason: str) -> None:
    """The registered connection was lost (``reason``); the session will reconnect."""
    session.invites = None  # their answers will not come
    session.requests.fail_all(reason)
    await session.hooks.deliver_event(
        ContactPresence(session.user_jid, session.server, False, "", reason)
    )
    for channel in session.channels.values():
        channel.joined = False
        channel.names = None
        channel.who_pending = False
        if channel.present():
            await session.hooks.deliver_event(
                RoomStatus(
                    session.user_jid,
                    session.room(channel),
                    channel.present(),
                    f"Disconnected from {session.server} ({reason}); reconnecting…",
                )
            )
