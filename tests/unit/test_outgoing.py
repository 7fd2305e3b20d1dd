"""The outgoing stream: well-formed whatever the networks send, one write per loop turn."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from slixmpp.xmlstream.xmlstream import NotConnectedError

from component.outgoing import OutgoingStream, xml_safe


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closing


def stream() -> tuple[OutgoingStream, FakeTransport]:
    out = OutgoingStream()
    transport = FakeTransport()
    out.transport = transport  # type: ignore[assignment]
    return out, transport


def test_xml_safe_drops_what_xml_cannot_carry_and_keeps_the_rest() -> None:
    assert xml_safe("bell\x07 esc\x1b[1m nul\x00 vt\x0b ff\x0c") == "bell esc[1m nul vt ff"
    assert xml_safe("lone \ud800 surrogate, \ufffe \uffff") == "lone  surrogate,  "
    kept = "tab\t newline\n return\r émoji 🎉 \u2028 \ue000"
    assert xml_safe(kept) == kept


async def test_one_turn_is_one_write_in_order() -> None:
    out, transport = stream()
    out.send_raw("<a/>")
    out.send_raw("<b>\x07</b>")
    out.send_raw(b"<c/>")
    assert transport.writes == []  # not yet: at the end of this turn
    await asyncio.sleep(0)
    assert transport.writes == [b"<a/><b></b><c/>"]
    out.send_raw("<d/>")
    await asyncio.sleep(0)
    assert transport.writes[1:] == [b"<d/>"]


async def test_not_connected_is_said_at_once_and_a_closing_transport_gets_nothing() -> None:
    out, transport = stream()
    out.send_raw("<a/>")
    transport.closing = True
    await asyncio.sleep(0)
    assert transport.writes == []
    out.transport = None  # type: ignore[assignment]
    with pytest.raises(NotConnectedError):
        out.send_raw("<b/>")


def test_stanzas_with_bad_characters_serialise_clean() -> None:
    from slixmpp import Message

    msg: Any = Message()
    msg["to"] = "alice@example.org"
    msg["body"] = "x\x1by"
    out, transport = stream()

    async def send() -> None:
        out.send_raw(str(msg))
        await asyncio.sleep(0)

    asyncio.run(send())
    assert b"x\x1by" not in transport.writes[0] and b"<body>xy</body>" in transport.writes[0]
