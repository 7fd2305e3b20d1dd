"""The session table finds a user's sessions by JID, and keeps that index exact."""

from __future__ import annotations

from typing import Any, cast

from transports.irc.session_table import SessionTable


class Session:
    def __init__(self, server: str) -> None:
        self.server = server


def session(server: str) -> Any:
    return cast(Any, Session(server))


def test_a_users_sessions_are_found_by_jid_in_opening_order() -> None:
    table = SessionTable()
    libera, oftc, other = session("libera"), session("oftc"), session("libera")
    table[("a@x", "libera")] = libera
    table[("b@x", "libera")] = other
    table[("a@x", "oftc")] = oftc
    assert table.of_user("a@x") == (libera, oftc)
    assert table.of_user("b@x") == (other,)
    assert table.of_user("c@x") == ()
    assert len(table) == 3 and set(table) == {("a@x", "libera"), ("b@x", "libera"), ("a@x", "oftc")}


def test_removing_and_replacing_keep_the_index_exact() -> None:
    table = SessionTable()
    first, second, again = session("libera"), session("oftc"), session("libera")
    table[("a@x", "libera")] = first
    table[("a@x", "oftc")] = second
    assert table.pop(("a@x", "libera")) is first
    assert table.of_user("a@x") == (second,)
    table[("a@x", "oftc")] = again  # a new session for the same server replaces the old
    assert table.of_user("a@x") == (again,)
    del table[("a@x", "oftc")]
    assert table.of_user("a@x") == () and not table
    assert table.get(("a@x", "oftc")) is None and ("a@x", "oftc") not in table


def test_clear_empties_both() -> None:
    table = SessionTable()
    table[("a@x", "libera")] = session("libera")
    table[("b@x", "oftc")] = session("oftc")
    table.clear()
    assert not table and table.of_user("a@x") == () and table.of_user("b@x") == ()
