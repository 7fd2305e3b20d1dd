"""Silence on IRC connections: a PING after IDLE_PING_SECONDS, given up after more silence,
all connections watched by one sweep (idle.py) rather than a timer each."""

from __future__ import annotations

import asyncio

import pytest

from tests.unit.test_irc_connection import connection
from transports.irc import idle


async def test_silence_brings_a_ping_then_a_give_up_and_a_line_resets_it() -> None:
    conn, transport, _, reasons = connection(burst=None)
    start = asyncio.get_running_loop().time()
    conn.check_silence(start + idle.IDLE_PING_SECONDS - 1)
    assert transport.lines() == []
    conn.check_silence(start + idle.IDLE_PING_SECONDS)
    await asyncio.sleep(0)  # written at the end of the turn
    assert transport.lines() == ["PING portway"]
    conn.data_received(b":srv PONG srv :portway\r\n")  # heard: the silence starts again
    later = asyncio.get_running_loop().time()
    conn.check_silence(later + idle.IDLE_PING_SECONDS + idle.IDLE_GIVE_UP_SECONDS - 1)
    await asyncio.sleep(0)
    assert transport.lines() == ["PING portway", "PING portway"]
    assert not reasons and not conn.closed
    conn.check_silence(later + idle.IDLE_PING_SECONDS + idle.IDLE_GIVE_UP_SECONDS)
    assert reasons == ["the server stopped answering (ping timeout)"]
    assert conn.closed and transport.closed


async def test_one_sweep_watches_every_open_connection_and_stops_with_the_last(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(idle, "SWEEP_SECONDS", 0.01)
    monkeypatch.setattr(idle, "IDLE_PING_SECONDS", 0.0)
    loop = asyncio.get_running_loop()
    first, first_wire, _, _ = connection(burst=None)
    second, second_wire, _, _ = connection(burst=None)
    sweep = idle._sweeps[loop]
    assert sweep.connections == {first, second}
    await asyncio.sleep(0.05)
    assert first_wire.lines() == ["PING portway"] and second_wire.lines() == ["PING portway"]
    first.close("done")
    second.close("done")
    assert not sweep.connections
    await asyncio.sleep(0.05)
    assert loop not in idle._sweeps  # no timer left behind for no connection
