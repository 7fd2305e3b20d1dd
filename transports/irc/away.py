"""AWAY from the user's XMPP presences: away on IRC only when no resource is plainly online.

One user's resources share each IRC connection, so no one resource's show decides: the user
is away when every available resource is (away, xa or dnd), with the first one's status as
the message, and "Offline" once none is left (bouncer rooms stay joined meanwhile).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from transports.irc import user_commands
from transports.irc.limits import one_line

if TYPE_CHECKING:
    from transports.irc.transport import IrcTransport

AWAY_SHOWS = ("away", "xa", "dnd")
#: (show, status) of most resources: one tuple for all of them
PLAINLY_ONLINE = ("", "")


def presence_changed(
    transport: IrcTransport, user_jid: str, resource: str, available: bool, show: str, status: str
) -> None:
    """Keep each resource's availability; AWAY on IRC when no resource is plainly online."""
    resources = transport.presences.setdefault(user_jid, {})
    if available:
        resources[resource] = (show, status) if show or status else PLAINLY_ONLINE
    else:
        resources.pop(resource, None)
    away: str | None = None
    if resources and all(show in AWAY_SHOWS for show, _ in resources.values()):
        show, status = next(iter(resources.values()))
        away = one_line(status) or {"away": "Away", "xa": "Extended away", "dnd": "Busy"}[show]
    if not resources:
        transport.presences.pop(user_jid, None)
        away = "Offline"
    for session in transport.sessions.of_user(user_jid):
        user_commands.set_away(session, away)
