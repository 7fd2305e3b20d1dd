"""The room's last lines, sent from the archive to resources that just joined.

They carry the stanza ids and times the archive kept: an IRC line's msgid and server-time
when the server gave them, so that a client matches them with what MAM says.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from transports.rooms import RoomMessage

if TYPE_CHECKING:
    from transports.irc.transport import IrcTransport


async def send_last_lines(
    transport: IrcTransport,
    user_jid: str,
    room: str,
    resources: tuple[str, ...],
    max_history: int | None,
) -> None:
    """At most ``history_lines`` lines, fewer when the join asked for fewer."""
    count = transport.settings.history_lines
    if max_history is not None:
        count = min(count, max_history)
    if transport.archive is None or count <= 0:
        return
    for item in await transport.archive.last(user_jid, room, count):
        await transport.host.deliver(
            RoomMessage(
                user_jid,
                room,
                resources,
                item.nick,
                item.body,
                item.stanza_id,
                timestamp=item.timestamp,
                notice=item.notice,
            )
        )
