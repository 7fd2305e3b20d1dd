"""Who each user sees in each room, as the occupant presences sent to them said.

Only for the room's disco#info once the user is in it (``muc#roominfo_occupants``, as
biboumi gives it): the transport keeps the real member lists; this is the count the user's
clients were shown. A room's list is forgotten when the user's last resource leaves it.
"""

from __future__ import annotations

from transports.rooms import OccupantPresence


class RoomMembers:
    def __init__(self) -> None:
        #: (user bare JID, room) → nicks shown available there
        self._nicks: dict[tuple[str, str], set[str]] = {}

    def note(self, event: OccupantPresence) -> None:
        key = (event.user_jid, event.room)
        nicks = self._nicks.setdefault(key, set())
        if event.available:
            nicks.add(event.occupant.nick)
            return
        nicks.discard(event.occupant.nick)
        if event.new_nick:
            nicks.add(event.new_nick)

    def count(self, user_jid: str, room: str) -> int | None:
        """How many occupants the user was shown in the room; None if not in it."""
        nicks = self._nicks.get((user_jid, room))
        return len(nicks) if nicks else None

    def forget(self, user_jid: str, room: str) -> None:
        self._nicks.pop((user_jid, room), None)

    def clear(self) -> None:
        self._nicks.clear()
