"""Presence reaches the gateway without slixmpp filing it in its roster (user_presence.py):
a node per sender and per room JID, kept for good, was most of what a connected user cost."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from slixmpp import ComponentXMPP

from component import user_presence
from component.ordering import InArrivalOrder

USER = "alice@example.org/phone"
ROOM_OCCUPANT = "#room%irc.localhost@irc.example.org/alice"


async def test_an_available_presence_is_handled_and_no_roster_entry_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[str, str]] = []

    async def on_presence(_component: Any, pres: Any) -> None:
        seen.append((str(pres["from"]), pres["type"]))

    monkeypatch.setattr(user_presence, "on_presence", on_presence)
    component: Any = ComponentXMPP("irc.example.org", "secret")
    component.domain = "irc.example.org"
    component.in_order = InArrivalOrder()  # as GatewayComponent has
    user_presence.install(component)
    for ptype in (None, "unavailable"):
        pres = component.make_presence(pfrom=USER, pto=ROOM_OCCUPANT, ptype=ptype)
        user_presence._presence_events(component, pres)
    await asyncio.sleep(0.01)  # the coroutine handler runs as a task
    assert seen == [(USER, "available"), (USER, "unavailable")]
    kept = set(component.roster.keys())
    assert "alice@example.org" not in kept and "#room%irc.localhost@irc.example.org" not in kept
