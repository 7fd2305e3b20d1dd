"""multi-prefix and userhost-in-names entries: the highest prefix gives the role."""

from __future__ import annotations

import pytest

from transports.irc.modes import PrefixModes, role_and_affiliation


@pytest.mark.parametrize(
    ("entry", "nick", "role"),
    [
        ("@+bob", "bob", ("moderator", "admin")),
        ("+@bob", "bob", ("moderator", "admin")),  # order does not matter
        ("%+bob", "bob", ("moderator", "member")),
        ("+bob", "bob", ("participant", "member")),
        ("~@%+bob", "bob", ("moderator", "owner")),
        ("bob", "bob", ("participant", "none")),
    ],
)
def test_multi_prefix_entries_take_the_highest_prefix(
    entry: str, nick: str, role: tuple[str, str]
) -> None:
    prefix = PrefixModes.parse("(qaohv)~&@%+")
    found, modes = prefix.split_name(entry)
    assert found == nick
    assert role_and_affiliation(modes) == role
