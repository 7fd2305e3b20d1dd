"""Channel modes as MUC roles and affiliations.

IRC has per-channel status modes (``~&@%+`` shown in NAMES, ``qaohv`` in MODE); XEP-0045 has
a role and an affiliation per occupant. The mapping is biboumi's, so users moving from it see
the same thing: ``~`` owner, ``&`` and ``@`` admin, ``%`` member, all moderators; ``+`` a
member with voice; everyone else a participant with no affiliation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from transports.irc.limits import SharedSets

#: PREFIX when the server does not say (RFC 1459).
DEFAULT_PREFIX = "(ov)@+"
#: CHANMODES when the server does not say: list, always-arg, arg-when-set, no-arg.
DEFAULT_CHANMODES = "beI,k,l,imnpst"
#: The status modes of most members, shared (an empty frozenset is 200 bytes; a gateway
#: keeps one per member of each channel of each user).
NO_MODES: frozenset[str] = frozenset()
#: Each set of status modes once, shared by every member that has it (a user is an op in the
#: channel it opened, and each of those was a frozenset of its own).
shared_modes = SharedSets()
shared_modes(NO_MODES)

_ROLES: dict[str, tuple[str, str]] = {
    # mode: (role, affiliation)
    "q": ("moderator", "owner"),
    "a": ("moderator", "admin"),
    "o": ("moderator", "admin"),
    "h": ("moderator", "member"),
    "v": ("participant", "member"),
}
_RANK = "qaohv"


@dataclass(frozen=True)
class PrefixModes:
    """The server's status modes: ``(ov)@+`` → modes "ov", symbols "@+" (highest first)."""

    modes: str
    symbols: str

    @classmethod
    def parse(cls, isupport: str) -> PrefixModes:
        if not isupport.startswith("(") or ")" not in isupport:
            return cls.parse(DEFAULT_PREFIX)
        modes, _, symbols = isupport[1:].partition(")")
        if len(modes) != len(symbols):
            return cls.parse(DEFAULT_PREFIX)
        return cls(modes, symbols)

    def split_name(self, entry: str) -> tuple[str, frozenset[str]]:
        """A NAMES entry (``@+nick``, multi-prefix) → nick and its status modes."""
        modes: set[str] = set()
        index = 0
        while index < len(entry) and entry[index] in self.symbols:
            modes.add(self.modes[self.symbols.index(entry[index])])
            index += 1
        return entry[index:], shared_modes(modes)


def role_and_affiliation(modes: Iterable[str]) -> tuple[str, str]:
    """The MUC role and affiliation of an occupant with these status modes."""
    for mode in _RANK:
        if mode in modes:
            return _ROLES[mode]
    return ("participant", "none")


@dataclass(frozen=True)
class ModeChange:
    adding: bool
    mode: str
    argument: str | None


def parse_mode_changes(
    modestring: str,
    arguments: Iterable[str],
    prefix: PrefixModes,
    chanmodes: str = DEFAULT_CHANMODES,
) -> list[ModeChange]:
    """``+ov-b alice bob *!*@x`` → one change per mode letter, with its argument if any.

    Which modes take an argument comes from the server's PREFIX and CHANMODES, so that an
    unknown mode cannot shift the arguments of the ones after it.
    """
    groups = [*chanmodes.split(","), "", "", "", ""][:4]
    always = set(groups[0]) | set(groups[1]) | set(prefix.modes)
    when_set = set(groups[2])
    args = list(arguments)
    changes: list[ModeChange] = []
    adding = True
    for char in modestring:
        if char in "+-":
            adding = char == "+"
            continue
        takes = char in always or (adding and char in when_set)
        argument = args.pop(0) if takes and args else None
        changes.append(ModeChange(adding, char, argument))
    return changes
