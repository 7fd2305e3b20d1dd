"""What the gateway knows of one channel for one user: members, modes, topic, resources.

Pure state, updated from IRC lines by the session; it answers questions such as "who is
here, with which role" and "which of the user's resources are in the room".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transports.irc.modes import NO_MODES, ModeChange, PrefixModes, role_and_affiliation
from transports.rooms import Occupant

#: Members known per channel: a server that claims more is not believed past this.
MAX_MEMBERS = 50000


def fold(name: str) -> str:
    """RFC 1459 case folding, the default CASEMAPPING of IRC servers."""
    return name.lower().replace("[", "{").replace("]", "}").replace("\\", "|").replace("~", "^")


@dataclass(slots=True)
class Member:
    """One nick in a channel (slots: a gateway keeps one per member per channel per user)."""

    nick: str
    modes: frozenset[str] = NO_MODES

    def occupant(self) -> Occupant:
        role, affiliation = role_and_affiliation(self.modes)
        return Occupant(self.nick, role, affiliation)


@dataclass
class Channel:
    name: str
    #: resource → the nick it asked for (status 210 when the nick it got differs)
    resources: dict[str, str] = field(default_factory=dict)
    #: resources waiting for the join to complete, with their history limit
    awaiting: dict[str, int | None] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)
    topic: str = ""
    topic_by: str = ""
    #: on IRC: JOIN seen and NAMES complete
    joined: bool = False
    #: NAMES being received (353…366)
    names: dict[str, Member] | None = None
    persistent: bool = False
    #: the xmpp id of the last message sent here, for 404 (cannot send) errors
    last_xmpp_id: str | None = None

    @property
    def key(self) -> str:
        return fold(self.name)

    @property
    def wanted(self) -> bool:
        """Whether to stay joined on IRC: someone is in the room, or it is persistent."""
        return bool(self.resources) or bool(self.awaiting) or self.persistent

    def present(self) -> tuple[str, ...]:
        """The resources that see this room's traffic (joined, not still joining)."""
        return tuple(sorted(r for r in self.resources if r not in self.awaiting))

    def member(self, nick: str) -> Member | None:
        return self.members.get(fold(nick))

    def add(self, nick: str, modes: frozenset[str] = NO_MODES) -> Member:
        member = Member(nick, modes)
        if len(self.members) < MAX_MEMBERS or fold(nick) in self.members:
            self.members[fold(nick)] = member
        return member

    def remove(self, nick: str) -> Member | None:
        return self.members.pop(fold(nick), None)

    def rename(self, old: str, new: str) -> Member | None:
        member = self.members.pop(fold(old), None)
        if member is not None:
            member.nick = new
            self.members[fold(new)] = member
        return member

    def start_names(self) -> None:
        self.names = {}

    def add_names(self, entries: list[str], prefix: PrefixModes) -> None:
        if self.names is None:
            self.names = {}
        for entry in entries:
            nick, modes = prefix.split_name(entry)
            if nick and len(self.names) < MAX_MEMBERS:
                self.names[fold(nick)] = Member(nick, modes)

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
        """Apply status-mode changes; return the members whose role or affiliation changed."""
        touched: list[Member] = []
        for change in changes:
            if change.mode not in prefix.modes or change.argument is None:
                continue
            member = self.member(change.argument)
            if member is None:
                continue
            before = role_and_affiliation(member.modes)
            modes = set(member.modes)
            if change.adding:
                modes.add(change.mode)
            else:
                modes.discard(change.mode)
            member.modes = frozenset(modes) if modes else NO_MODES
            if role_and_affiliation(member.modes) != before and member not in touched:
                touched.append(member)
        return touched
