"""Group chats across the transport line: room events out, room calls in.

A transport with ``supports_rooms`` hands these events to ``host.deliver`` like any other;
component/muc.py turns them into XEP-0045 stanzas. They are plain dataclasses with an
event kind, so the inbound queue can keep them while the XMPP server is away. ``resources``
names the user's resources that are in the room when the event happens: a room event goes
to each of them (one bare JID may sit in a room from several clients at once).

:class:`RoomService` is what the MUC router calls on such a transport: joins, leaves,
messages, nick changes, subjects, invitations, and the archive for history and MAM. The
archive's records (query, page, message) live in mappings/archive.py, below the transports.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from mappings.archive import ArchivePage, ArchiveQuery
from transports.base import GatewayError, UserPresence
from transports.events import Refers, event_kind


@dataclass(frozen=True)
class Occupant:
    """One nick in a room, as XEP-0045 items show it.

    ``address`` is the occupant's own contact address on this transport (a JID local part's
    worth, e.g. ``bob%irc.example.net``) and ``identity`` the resource that tells its
    connections apart (``~bob@host.example``): together they are the real JID that rooms
    announcing themselves non-anonymous must give (clients such as profanity rely on it).
    ``account`` is the network account the occupant is logged in to, when known.
    """

    nick: str
    role: str = "participant"  # moderator, participant, visitor, none
    affiliation: str = "none"  # owner, admin, member, none, outcast
    address: str | None = None
    identity: str | None = None
    account: str | None = None


@event_kind("room-presence")
@dataclass(frozen=True)
class OccupantPresence:
    """Someone is in the room, or left it (``available=False``).

    ``is_self`` marks the user's own occupant (status 110). ``new_nick`` with
    ``available=False`` is a nick change (303); ``kicked`` a kick (307), by ``actor`` for
    ``reason``; ``banned`` a ban (301). ``nick_assigned`` says the network gave the user
    another nick than the one asked for (210), so the client learns its real nick.
    """

    user_jid: str
    room: str
    resources: tuple[str, ...]
    occupant: Occupant
    available: bool = True
    is_self: bool = False
    new_nick: str | None = None
    kicked: bool = False
    status: str = ""
    show: str = ""
    actor: str = ""
    reason: str = ""
    banned: bool = False
    nick_assigned: bool = False


@event_kind("room-message")
@dataclass(frozen=True)
class RoomMessage:
    """A groupchat message; ``timestamp`` set means history (XEP-0203 delay).

    ``xmpp_id``/``origin_id`` are the client's ids, echoed on the user's own messages so the
    client recognises them; ``stanza_id`` is the archive id (XEP-0359, MAM).
    """

    user_jid: str
    room: str
    resources: tuple[str, ...]
    nick: str
    body: str
    stanza_id: str | None = None
    xmpp_id: str | None = None
    origin_id: str | None = None
    timestamp: float | None = None
    notice: bool = False
    refers: Refers | None = None  # a correction, retraction, reaction or reply


@event_kind("room-chat-state")
@dataclass(frozen=True)
class RoomChatState:
    """An occupant is typing, paused or stopped (XEP-0085 in a room; IRCv3 ``+typing``)."""

    user_jid: str
    room: str
    resources: tuple[str, ...]
    nick: str
    state: str  # composing, paused, active


@dataclass(frozen=True)
class RoomListing:
    """One room of a network's directory (disco#items on the server's JID)."""

    room: str
    users: int | None = None
    topic: str = ""


@event_kind("room-subject")
@dataclass(frozen=True)
class RoomSubject:
    user_jid: str
    room: str
    resources: tuple[str, ...]
    subject: str
    nick: str = ""


@event_kind("room-status")
@dataclass(frozen=True)
class RoomStatus:
    """A word from the gateway about the room itself (connection lost, rejoined, …)."""

    user_jid: str
    room: str
    resources: tuple[str, ...]
    text: str


@event_kind("room-invite")
@dataclass(frozen=True)
class RoomInvite:
    """Someone on the foreign side invites the user to a room (XEP-0045 mediated)."""

    user_jid: str
    room: str
    inviter: str
    reason: str = ""


@event_kind("room-error")
@dataclass(frozen=True)
class RoomError:
    """A join, a message or a nick change failed.

    ``on`` is what failed: "join" (error presence), "message" (error message, echoing
    ``xmpp_id``) or "nick" (error presence on the nick change).
    """

    user_jid: str
    room: str
    resources: tuple[str, ...]
    on: str
    condition: str
    text: str
    xmpp_id: str | None = None
    nick: str = ""


class RoomService(ABC):
    """What component/muc.py calls on a transport with rooms; errors are GatewayErrors."""

    @abstractmethod
    def parse_room(self, localpart: str) -> str | None:
        """The room address a JID's local part names, or None if it is not a room.

        Raises AddressError for what is meant as a room but is not a valid one.
        """

    @abstractmethod
    def format_room(self, room: str) -> str:
        """A room address as a JID local part."""

    @abstractmethod
    async def join_room(
        self, full_jid: str, room: str, nick: str, max_history: int | None, show: str, status: str
    ) -> None:
        """Join (or re-enter from another resource); the transport answers with events."""

    @abstractmethod
    async def leave_room(self, full_jid: str, room: str, status: str = "") -> None: ...

    @abstractmethod
    async def send_room_message(
        self,
        full_jid: str,
        room: str,
        body: str,
        xmpp_id: str | None,
        origin_id: str | None,
        refers: Refers | None = None,
    ) -> None:
        """A groupchat message; ``refers`` its correction, retraction, reaction or reply
        (``refers.target`` is the client's id for corrections, else the room's stanza-id)."""

    @abstractmethod
    async def send_private(
        self,
        full_jid: str,
        room: str,
        nick: str,
        body: str,
        xmpp_id: str | None,
        refers: Refers | None = None,
    ) -> None:
        """A private message to an occupant."""

    @abstractmethod
    async def change_nick(self, full_jid: str, room: str, nick: str) -> None: ...

    @abstractmethod
    async def set_subject(self, full_jid: str, room: str, subject: str) -> None: ...

    @abstractmethod
    async def invite(self, full_jid: str, room: str, invitee: str, reason: str) -> None:
        """Invite ``invitee`` (a JID local part of this transport: a foreign user)."""

    @abstractmethod
    async def kick(self, full_jid: str, room: str, nick: str, reason: str) -> None: ...

    @abstractmethod
    async def room_archive(self, user_jid: str, room: str, query: ArchiveQuery) -> ArchivePage:
        """XEP-0313: the user's archive of this room."""

    # Optional: a transport that cannot do these leaves them, and the user is told so.

    async def moderate(
        self,
        full_jid: str,
        room: str,
        nick: str,
        *,
        role: str | None = None,
        affiliation: str | None = None,
        reason: str = "",
    ) -> None:
        """XEP-0045 muc#admin: set an occupant's role (kick: ``none``) or affiliation (ban:
        ``outcast``)."""
        raise GatewayError("this network has no moderation", "feature-not-implemented")

    async def room_chat_state(self, full_jid: str, room: str, state: str) -> None:
        """The user is typing (or stopped) in the room; dropped where the network cannot say."""

    async def user_presence(self, presence: UserPresence) -> None:
        """A joined resource's new show or status in a room (``contact`` is the room): only
        that (IRC: AWAY), never the join again; dropped where the network cannot say."""

    async def list_rooms(self, user_jid: str, server: str) -> list[RoomListing]:
        """The rooms a network lists (``server`` is the address of the server's JID)."""
        raise GatewayError("this network has no room list", "feature-not-implemented")

    async def occupant_version(self, full_jid: str, room: str | None, nick: str) -> str:
        """The software an occupant (or a contact, with ``room`` None) uses, in words."""
        raise GatewayError("this network cannot tell", "feature-not-implemented")
