"""What the gateway knows of one channel for one user: members, modes, topic, resources.

Pure state, updated from IRC lines by the session; it answers questions such as "who is
here, with which role" and "which of the user's resources are in the room".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transports.irc.casemap import RFC1459, fold
from transports.irc.modes import (
    NO_MODES,
    ModeChange,
    PrefixModes,
    role_and_affiliation,
    shared_modes,
)
from transports.rooms import Occupant

#: Members known per channel: a server that claims more is not believed past this.
MAX_MEMBERS = 50000


@dataclass(slots=True)
class Member:
    """One nick in a channel (slots: a gateway keeps one per member per channel per user)."""

    nick: str
    modes: frozenset[str] = NO_MODES
    #: ``user@host`` as IRC shows it (JOIN prefix, userhost-in-names, WHO, CHGHOST)
    identity: str | None = None
    #: the services account (extended-join, account-notify, account-tag), when known
    account: str | None = None
    #: away (away-notify): every presence of it says so, not only the AWAY line's
    away: bool = False

    def occupant(self, address: str | None = None) -> Occupant:
        """The member as an XEP-0045 item; ``address`` is its nick's contact address."""
        role, affiliation = role_and_affiliation(self.modes)
        return Occupant(self.nick, role, affiliation, address, self.identity, self.account)


def split_identity(name: str) -> tuple[str, str | None]:
    """``nick!user@host`` (a prefix, or a userhost-in-names entry) → nick and ``user@host``."""
    nick, sep, identity = name.partition("!")
    return nick, (identity if sep and "@" in identity else None)


@dataclass(slots=True)  # one per channel per user
class Channel:
    name: str
    #: the user's resources in the room, joined or joining (a tuple: most users have one,
    #: and a dict of them was 184 bytes per channel of each user)
    resources: tuple[str, ...] = ()
    #: resource → (the nick it asked for, its history limit), while it waits for the join
    #: to complete (status 210 when the nick it gets differs); an emptied dict keeps its
    #: table, so there is none meanwhile
    awaiting: dict[str, tuple[str, int | None]] | None = None
    members: dict[str, Member] = field(default_factory=dict)
    topic: str = ""
    topic_by: str = ""
    #: on IRC: JOIN seen and NAMES complete
    joined: bool = False
    #: NAMES being received (353…366), then completed by WHO (352…315) while who_pending
    names: dict[str, Member] | None = None
    who_pending: bool = False
    persistent: bool = False
    #: the xmpp id of the last message sent here, for 404 (cannot send) errors
    last_xmpp_id: str | None = None
    #: the server's CASEMAPPING, which folds the channel's key and its members' keys
    casemapping: str = RFC1459
    #: the stanza id of the user's latest message here: a retraction of it says "last"
    last_own: str | None = None
    #: ``last_lines``, from the first line said here (an empty dict is 64 bytes)
    _last_lines: dict[str, tuple[str, str]] | None = field(default=None, repr=False)

    @property
    def last_lines(self) -> dict[str, tuple[str, str]]:
        """fold(nick) → (id, text) of each member's latest line, which ``s/old/new/``
        corrects (bounded: limits.MAX_REMEMBERED_IDS)."""
        if self._last_lines is None:
            self._last_lines = {}
        return self._last_lines

    @property
    def key(self) -> str:
        return fold(self.name, self.casemapping)

    def fold(self, nick: str) -> str:
        return fold(nick, self.casemapping)

    def remap(self, casemapping: str) -> None:
        """The server announced its CASEMAPPING (005): fold the keys again by it."""
        self.casemapping = casemapping
        self.members = {self.fold(m.nick): m for m in self.members.values()}
        if self._last_lines is not None:
            self._last_lines = {self.fold(nick): line for nick, line in self._last_lines.items()}
        if self.names is not None:
            self.names = {self.fold(m.nick): m for m in self.names.values()}

    @property
    def wanted(self) -> bool:
        """Whether to stay joined on IRC: someone is in the room, or it is persistent."""
        return bool(self.resources) or bool(self.awaiting) or self.persistent

    def present(self) -> tuple[str, ...]:
        """The resources that see this room's traffic (joined, not still joining)."""
        awaiting = self.awaiting or ()
        return tuple(sorted(r for r in self.resources if r not in awaiting))

    def add_resource(self, resource: str, nick: str, max_history: int | None) -> None:
        """``resource`` joins with ``nick``; it waits for the join to complete."""
        if resource not in self.resources:
            self.resources += (resource,)
        if self.awaiting is None:
            self.awaiting = {}
        self.awaiting[resource] = (nick, max_history)

    def remove_resource(self, resource: str) -> None:
        """``resource`` leaves the room, joined or still joining."""
        self.resources = tuple(r for r in self.resources if r != resource)
        self.welcomed(resource)

    def welcomed(self, resource: str) -> tuple[str | None, int | None]:
        """``resource`` waits no more: the nick it asked for and its history limit."""
        if self.awaiting is None:
            return None, None
        asked = self.awaiting.pop(resource, None)
        if not self.awaiting:
            self.awaiting = None
        return asked or (None, None)

    def member(self, nick: str) -> Member | None:
        return self.members.get(self.fold(nick))

    def add(
        self, nick: str, modes: frozenset[str] = NO_MODES, identity: str | None = None
    ) -> Member:
        member = Member(nick, modes, identity)
        if len(self.members) < MAX_MEMBERS or self.fold(nick) in self.members:
            self.members[self.fold(nick)] = member
        if self.names is not None and len(self.names) < MAX_MEMBERS:
            self.names[self.fold(nick)] = member  # joined while the list is read: keep it
        return member

    def remove(self, nick: str) -> Member | None:
        if self.names is not None:
            self.names.pop(self.fold(nick), None)
        return self.members.pop(self.fold(nick), None)

    def rename(self, old: str, new: str) -> Member | None:
        member = self.members.pop(self.fold(old), None)
        if member is not None:
            member.nick = new
            self.members[self.fold(new)] = member
        return member

    def start_names(self) -> None:
        self.names = {}

    def add_names(self, entries: list[str], prefix: PrefixModes) -> None:
        if self.names is None:
            self.names = {}
        for entry in entries:
            name, modes = prefix.split_name(entry)
            nick, identity = split_identity(name)
            if nick and len(self.names) < MAX_MEMBERS:
                known = self.members.get(self.fold(nick))
                if identity is None and known is not None:
                    identity = known.identity  # NAMES without userhost-in-names: keep it
                account = known.account if known is not None else None
                away = known.away if known is not None else False
                self.names[self.fold(nick)] = Member(nick, modes, identity, account, away)

    def end_names(self) -> tuple[list[Member], list[Member], list[Member]]:
        """Adopt the NAMES list; return (left, arrived, changed) against the previous one."""
        new = self.names or {}
        self.names = None
        left = [m for key, m in self.members.items() if key not in new]
        arrived = [m for key, m in new.items() if key not in self.members]
        changed = [
            m
            for key, m in new.items()
            if key in self.members and self.members[key].modes != m.modes
        ]
        self.members = new
        return left, arrived, changed

    def apply_modes(self, changes: list[ModeChange], prefix: PrefixModes) -> list[Member]:
        """Apply status-mode changes; return the members whose status modes changed.

        As biboumi, each is shown to the room again, even when its role stays (``-v`` on
        an op): clients see the change, and the MODE line is shown as well.
        """
        touched: list[Member] = []
        for change in changes:
            if change.mode not in prefix.modes or change.argument is None:
                continue
            member = self.member(change.argument)
            if member is None:
                continue
            before_modes = member.modes
            modes = set(member.modes)
            if change.adding:
                modes.add(change.mode)
            else:
                modes.discard(change.mode)
            member.modes = shared_modes(modes)
            if member.modes != frozenset(before_modes) and member not in touched:
                touched.append(member)
        return touched
