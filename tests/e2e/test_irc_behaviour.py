"""What biboumi users rely on (issue 11), against a real Prosody, ngIRCd and `portway run`.

Each scenario drives both sides: an XMPP client (alice) and a raw IRC client (bob), so
what the gateway writes on IRC and what the XMPP client receives are both checked.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from slixmpp import Message, Presence
from slixmpp.xmlstream import StanzaBase
from support.fixture_types import ConnectIrc, ConnectXmpp, MakeNgircd, MakeProsody
from support.gateway import GatewayProcess
from support.ngircd import Ngircd
from support.prosody import Prosody
from support.xmpp_client import XmppClient

pytestmark = pytest.mark.e2e

GW = "irc.example.org"
SECRET = "irc-component-s3cret"
USERS = {"alice": "alice-pw"}
MUC = "http://jabber.org/protocol/muc"
MUC_USER = "{http://jabber.org/protocol/muc#user}"
SERVER = f"irc.localhost@{GW}"
ROOM = f"#test%irc.localhost@{GW}"


@dataclass
class World:
    ngircd: Ngircd
    alice: XmppClient
    connect_irc: ConnectIrc


@pytest.fixture
async def world(
    tmp_path: Path,
    make_prosody: MakeProsody,
    make_ngircd: MakeNgircd,
    xmpp_client: ConnectXmpp,
    irc_client: ConnectIrc,
) -> AsyncIterator[World]:
    prosody: Prosody = make_prosody(components={GW: SECRET}, users=USERS)
    ngircd = make_ngircd()
    settings: dict[str, Any] = {
        "xmpp": {"host": "127.0.0.1", "port": prosody.component_port, "reconnect_max_seconds": 1},
        "allowed_domains": ["example.org"],
        "transports": {
            "irc": {
                "jid": GW,
                "secret": SECRET,
                "servers": {
                    "irc.localhost": {
                        "host": "127.0.0.1",
                        "port": ngircd.port,
                        "tls": False,
                        "throttle": None,
                    }
                },
            }
        },
    }
    gateway = GatewayProcess(tmp_path / "gateway", settings)
    await gateway.astart()
    alice = await xmpp_client("alice@example.org", USERS["alice"], prosody)
    try:
        yield World(ngircd, alice, irc_client)
    finally:
        gateway.stop()


def status_codes(stanza: StanzaBase) -> set[str]:
    return {s.get("code", "") for s in stanza.xml.iter(f"{MUC_USER}status")}


def self_presence(room: str) -> Any:
    def match(stanza: StanzaBase) -> bool:
        return (
            isinstance(stanza, Presence)
            and stanza["from"].bare == room
            and "110" in status_codes(stanza)
        )

    return match


def join_xml(room: str, nick: str) -> str:
    return f"<presence to='{room}/{nick}'><x xmlns='{MUC}'/></presence>"


async def join(alice: XmppClient, room: str, nick: str) -> Presence:
    alice.send_raw(join_xml(room, nick))
    own = await alice.expect(self_presence(room), timeout=15)
    assert isinstance(own, Presence)
    return own


async def test_the_first_raw_command_is_sent_and_the_first_join_chooses_the_nick(
    world: World,
) -> None:
    bob = await world.connect_irc(world.ngircd, "bob")
    alice = world.alice
    alice.send_message(SERVER, "PRIVMSG bob :raw hello")
    await bob.expect(r"^:\S+ PRIVMSG bob :raw hello$", timeout=15)
    assert not any(isinstance(s, Message) and s["type"] == "error" for s in alice.received), (
        "the first raw command was refused"
    )

    await bob.join("#test")
    own = await join(alice, ROOM, "zed")
    assert own["from"].resource == "zed"
    assert "210" not in status_codes(own)
    await bob.expect(r"^:zed!\S+ JOIN :?#test")


async def test_a_private_reply_comes_back_to_the_room_window(world: World) -> None:
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#test")
    alice = world.alice
    await join(alice, ROOM, "alice")
    alice.send_message(f"{ROOM}/bob", "from the room")
    await bob.expect(r"^:alice!\S+ PRIVMSG bob :from the room$")
    await bob.privmsg("alice", "answer")
    reply = await alice.expect_message(body="answer")
    assert str(reply["from"]) == f"{ROOM}/bob"
    # XEP-0045 §7.5: a private message in a room carries an empty muc#user <x/>.
    assert reply.xml.find(f"{MUC_USER}x") is not None


async def test_a_room_private_message_to_a_missing_nick_errs_from_room_nick(world: World) -> None:
    alice = world.alice
    await join(alice, ROOM, "alice")
    sent = alice.send_message(f"{ROOM}/nobody", "anyone?", mtype="chat")

    def error(stanza: StanzaBase) -> bool:
        return (
            isinstance(stanza, Message) and stanza["type"] == "error" and stanza["id"] == sent["id"]
        )

    got = await alice.expect(error, timeout=15)
    assert str(got["from"]) == f"{ROOM}/nobody"
    assert got["error"]["condition"] == "item-not-found"


async def test_a_private_message_to_a_missing_nick_comes_back_as_an_error(world: World) -> None:
    alice = world.alice
    await world.connect_irc(world.ngircd, "bob")  # the server is up; nobody is not on it
    sent = alice.send_message(f"nobody%irc.localhost@{GW}", "anyone?")

    def error(stanza: StanzaBase) -> bool:
        return (
            isinstance(stanza, Message) and stanza["type"] == "error" and stanza["id"] == sent["id"]
        )

    got = await alice.expect(error, timeout=15)
    assert got["from"].bare == f"nobody%irc.localhost@{GW}"
    assert got["error"]["condition"] == "item-not-found"


async def test_mode_typed_in_the_room_is_sent_and_shown(world: World) -> None:
    alice = world.alice
    await join(alice, ROOM, "alice")  # first in: alice is the operator
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#test")
    alice.send_message(ROOM, "/mode +m", mtype="groupchat")
    await bob.expect(r"^:alice!\S+ MODE #test \+m")
    await alice.expect_message(from_=ROOM, contains="+m")
    alice.send_message(ROOM, "/unknown text", mtype="groupchat")
    await bob.expect(r"^:alice!\S+ PRIVMSG #test :/unknown text$")


async def test_a_multi_line_message_is_echoed_line_by_line(world: World) -> None:
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#test")
    alice = world.alice
    await join(alice, ROOM, "alice")
    sent = alice.send_message(ROOM, "first\nsecond", mtype="groupchat")
    await bob.expect(r"PRIVMSG #test :first$")
    await bob.expect(r"PRIVMSG #test :second$")
    one = await alice.expect_message(from_=f"{ROOM}/alice", body="first")
    two = await alice.expect_message(from_=f"{ROOM}/alice", body="second")
    assert one["id"] == sent["id"]
    assert two["id"] != sent["id"]


async def test_a_services_notice_about_a_channel_goes_to_the_room(world: World) -> None:
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#test")
    alice = world.alice
    await join(alice, ROOM, "alice")
    await bob.send("NOTICE alice :[#test] welcome to the channel")
    got = await alice.expect_message(contains="welcome to the channel")
    assert got["from"].bare == ROOM and got["type"] == "groupchat"


async def test_three_joins_at_once_answer_in_order_with_the_first_nick(world: World) -> None:
    alice = world.alice
    rooms = [f"#r{n}%irc.localhost@{GW}" for n in range(3)]
    alice.send_raw("".join(join_xml(room, nick) for room, nick in zip(rooms, "xyz", strict=True)))
    for room in rooms:
        await alice.expect(self_presence(room), timeout=15)
    own = [
        s
        for s in alice.received
        if isinstance(s, Presence) and "110" in status_codes(s) and s["from"].bare in rooms
    ]
    assert [s["from"].bare for s in own] == rooms
    assert [s["from"].resource for s in own] == ["x", "x", "x"]
    assert [("210" in status_codes(s)) for s in own] == [False, True, True]


async def test_a_kick_from_irc_carries_actor_and_reason(world: World) -> None:
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#test")  # first in: bob is the operator
    alice = world.alice
    await join(alice, ROOM, "alice")
    await bob.send("KICK #test alice :behave")

    def kicked(stanza: StanzaBase) -> bool:
        return isinstance(stanza, Presence) and "307" in status_codes(stanza)

    got = await alice.expect(kicked, timeout=15)
    item = got.xml.find(f"{MUC_USER}x/{MUC_USER}item")
    assert item is not None
    actor = item.find(f"{MUC_USER}actor")
    reason = item.find(f"{MUC_USER}reason")
    assert actor is not None and actor.get("nick") == "bob"
    assert reason is not None and reason.text == "behave"


async def test_moderation_from_the_room_kicks_on_irc(world: World) -> None:
    alice = world.alice
    await join(alice, ROOM, "alice")  # first in: alice is the operator
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#test")
    await alice.expect(lambda s: isinstance(s, Presence) and str(s["from"]) == f"{ROOM}/bob")
    alice.send_raw(
        f"<iq type='set' id='kick1' to='{ROOM}'><query xmlns='{MUC}#admin'>"
        "<item nick='bob' role='none'><reason>go</reason></item></query></iq>"
    )
    await bob.expect(r"^:alice!\S+ KICK #test bob :go$")
    answer = await alice.expect(lambda s: s["id"] == "kick1" and s.name == "iq", timeout=10)
    assert answer["type"] == "result"


async def test_moderation_without_op_is_refused(world: World) -> None:
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#test")  # first in: bob is the operator, alice is not
    alice = world.alice
    await join(alice, ROOM, "alice")
    alice.send_raw(
        f"<iq type='set' id='kick2' to='{ROOM}'><query xmlns='{MUC}#admin'>"
        "<item nick='bob' role='none'/></query></iq>"
    )
    answer = await alice.expect(lambda s: s["id"] == "kick2" and s.name == "iq", timeout=10)
    assert answer["type"] == "error"
    assert answer["error"]["condition"] in ("forbidden", "not-allowed")
    await asyncio.sleep(0.3)
    assert not any(re.search(r" KICK #test bob", line) for line in bob.lines)
