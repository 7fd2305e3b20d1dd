"""Ad-hoc command sessions stay bounded: done ones and abandoned ones are dropped.

slixmpp keeps a session until its last step; a command that completes in its first step
(a status, a list) or that a client abandons never has one.
"""

from __future__ import annotations

from typing import Any

from component.commands import DONE, MAX_SESSIONS, SESSION_SECONDS, STARTED, forget_stale


def test_done_and_abandoned_sessions_go_and_others_stay() -> None:
    sessions: dict[str, dict[str, Any]] = {
        "done": {STARTED: 100.0, DONE: True},
        "abandoned": {STARTED: 100.0 - SESSION_SECONDS - 1},
        "filling-in": {STARTED: 90.0},
        "client:x": {"id": "x"},  # not this runner's: slixmpp's client side
    }
    forget_stale(sessions, now=100.0)
    assert sorted(sessions) == ["client:x", "filling-in"]


def test_at_most_max_sessions_wait_and_the_oldest_go_first() -> None:
    sessions: dict[str, dict[str, Any]] = {
        f"s{n}": {STARTED: 1000.0 + n / MAX_SESSIONS} for n in range(MAX_SESSIONS + 5)
    }
    forget_stale(sessions, now=1002.0)
    # Room for the one being started now.
    assert len(sessions) == MAX_SESSIONS - 1
    assert "s5" not in sessions and f"s{MAX_SESSIONS + 4}" in sessions
