"""What one user's IRC session holds or sends when others push: bounded, and one line each.

A fake connection records what the session would write; no server is needed to show that a
CTCP flood gets a few replies, that a multi-line status becomes one AWAY line (sent again
at every reconnect), and that a kick reason with line breaks is one KICK line.
"""

from __future__ import annotations

import pytest
from support.irc_fakes import USER, session, transport_with

from transports.base import GatewayError
from transports.irc import user_commands
from transports.irc.limits import (
    CTCP_REPLY_BURST,
    MAX_PENDING,
    MAX_REMEMBERED_IDS,
    MAX_UNHANDLED_LINES,
)
from transports.irc.protocol import IrcLine


async def test_a_ctcp_flood_gets_a_few_replies() -> None:
    made, conn, _hooks = session()
    for _ in range(500):
        await made._handle(IrcLine("PRIVMSG", ("alice", "\x01VERSION\x01"), "mallory!m@h"))
        await made._handle(IrcLine("PRIVMSG", ("alice", "\x01PING 123\x01"), "mallory!m@h"))
    assert len(conn.sent) == CTCP_REPLY_BURST
    assert all(line.startswith("NOTICE mallory :\x01") for line in conn.sent)


async def test_a_multi_line_status_is_one_away_line_and_is_sent_again_on_reconnect() -> None:
    made, conn, _hooks = session()
    user_commands.set_away(made, "gone for lunch\nback at two\r\n\0or three")
    assert conn.sent == ["AWAY :gone for lunch back at two or three"]
    conn.sent.clear()
    await made._registered()  # what a reconnect does
    assert conn.sent == ["AWAY :gone for lunch back at two or three"]
    user_commands.set_away(made, None)
    assert conn.sent[-1] == "AWAY"


async def test_messages_waiting_for_the_connection_are_bounded() -> None:
    made, _conn, _hooks = session()
    made.connected = False
    for number in range(MAX_PENDING):
        await made.private("bob", f"message {number}", None, f"{USER}/phone")
    with pytest.raises(GatewayError) as refused:
        await made.private("bob", "one too many", None, f"{USER}/phone")
    assert refused.value.condition == "resource-constraint"
    assert len(made.pending) == MAX_PENDING


async def test_private_message_ids_are_remembered_for_a_bounded_number_of_nicks() -> None:
    made, _conn, _hooks = session()
    for number in range(MAX_REMEMBERED_IDS * 3):
        await made.private(f"nick{number}", "hi", f"id{number}", f"{USER}/phone")
    assert len(made._pm_ids) == MAX_REMEMBERED_IDS


async def test_reading_pauses_while_lines_wait_to_be_handled() -> None:
    made, conn, _hooks = session()
    for _ in range(MAX_UNHANDLED_LINES):
        made._on_line(IrcLine("NOTICE", ("alice", "x"), "irc.example"))
    assert not conn.reading
    assert made._worker is not None
    await made._worker
    assert conn.reading and made._lines is None


async def test_a_kick_reason_with_line_breaks_is_one_line() -> None:
    made, conn, _hooks = session()
    await transport_with(made).kick(
        f"{USER}/phone", "#chan%irc.example", "bob", "first line\nJOIN #evil"
    )
    assert conn.sent == ["KICK #chan bob :first line JOIN #evil"]
