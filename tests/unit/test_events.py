"""Every event kind survives the inbound queue: to JSON and back, nested dataclasses included.

The drainer rebuilds events stored while XMPP was away; an event that comes back with a dict
where a dataclass was (an occupant in a room presence) cannot be rendered.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

import pytest

import transports.rooms
from mappings.codec import dumps, loads
from transports.events import _EVENT_KINDS, event_from_dict, event_to_dict


def sample(hint: Any, n: int) -> Any:
    """A value of the hinted type, different from any default (so every field is checked)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return sample(next(arg for arg in args if arg is not type(None)), n)
    if origin is tuple:
        return (sample(args[0], n), sample(args[0], n + 1))
    if dataclasses.is_dataclass(hint):
        return build(hint, n)
    if origin is typing.Literal:
        return args[-1]
    return {str: f"value-{n}", bool: True, int: n + 7, float: n + 0.5}[hint]


def build(cls: Any, n: int = 0) -> Any:
    hints = typing.get_type_hints(cls)
    return cls(
        **{f.name: sample(hints[f.name], n + i) for i, f in enumerate(dataclasses.fields(cls))}
    )


@pytest.mark.parametrize("kind", sorted(_EVENT_KINDS))
def test_event_round_trips_through_the_queue(kind: str) -> None:
    event = build(_EVENT_KINDS[kind])
    stored = loads(dumps(event_to_dict(event)))
    assert stored["kind"] == kind
    assert event_from_dict(stored) == event


def test_occupant_comes_back_as_an_occupant() -> None:
    presence = transports.rooms.OccupantPresence(
        "a@example.org", "#r%irc.example", ("phone",), transports.rooms.Occupant("bob", "moderator")
    )
    back = event_from_dict(loads(dumps(event_to_dict(presence))))
    assert back.occupant.role == "moderator"


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(KeyError):
        event_from_dict({"kind": "no-such-kind", "fields": {}})
