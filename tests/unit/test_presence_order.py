"""A user's presences are taken in the order they came, in turn with their messages."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from slixmpp import Presence

from component import user_presence
from component.ordering import InArrivalOrder


def presence(to: str) -> Presence:
    pres = Presence()
    pres["from"] = "alice@example.org/phone"
    pres["to"] = to
    return pres


async def test_a_slow_join_is_not_overtaken_by_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    taken: list[str] = []

    async def on_presence(_component: Any, pres: Presence) -> None:
        room = pres["to"].user
        if room == "#foo%irc.localhost":
            await asyncio.sleep(0.05)  # the first join waits on the store the longest
        taken.append(room)

    monkeypatch.setattr(user_presence, "on_presence", on_presence)
    component: Any = SimpleNamespace(in_order=InArrivalOrder())
    rooms = ["#foo%irc.localhost", "#bar%irc.localhost", "#baz%irc.localhost"]
    await asyncio.gather(
        *(
            asyncio.create_task(
                user_presence.in_arrival_order(component, presence(f"{room}@irc.gw/Nick"))
            )
            for room in rooms
        )
    )
    assert taken == rooms
