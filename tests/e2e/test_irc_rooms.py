"""IRC channels as MUC rooms, against a real Prosody, a real ngIRCd and `portway run`.

Each scenario is short: one side sends, the other expects. The IRC side is a raw client, so
what the gateway puts on the wire is checked byte for byte.
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
USERS = {"alice": "alice-pw", "bob": "bob-pw"}
MUC_USER = "{http://jabber.org/protocol/muc#user}"
ROOM = f"#test%irc.localhost@{GW}"


def gateway_settings(prosody: Prosody, ngircd: Ngircd, **irc: Any) -> dict[str, Any]:
    section: dict[str, Any] = {
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
        "reconnect_delay": 0.3,
        "reconnect_max_delay": 1.0,
    }
    section.update(irc)
    return {
        "xmpp": {"host": "127.0.0.1", "port": prosody.component_port, "reconnect_max_seconds": 1},
        "allowed_domains": ["example.org"],
        "transports": {"irc": section},
    }


@dataclass
class World:
    prosody: Prosody
    ngircd: Ngircd
    gateway: GatewayProcess
    alice: XmppClient
    connect_xmpp: ConnectXmpp
    connect_irc: ConnectIrc


@pytest.fixture
async def world(
    tmp_path: Path,
    make_prosody: MakeProsody,
    make_ngircd: MakeNgircd,
    xmpp_client: ConnectXmpp,
    irc_client: ConnectIrc,
) -> AsyncIterator[World]:
    prosody = make_prosody(components={GW: SECRET}, users=USERS)
    ngircd = make_ngircd()
    gateway = GatewayProcess(tmp_path / "gateway", gateway_settings(prosody, ngircd))
    await gateway.astart()
    alice = await xmpp_client("alice@example.org", USERS["alice"], prosody)
    try:
        yield World(prosody, ngircd, gateway, alice, xmpp_client, irc_client)
    finally:
        gateway.stop()


def status_codes(stanza: StanzaBase) -> set[str]:
    return {s.get("code", "") for s in stanza.xml.iter(f"{MUC_USER}status")}


def muc_item(stanza: StanzaBase) -> dict[str, str]:
    item = stanza.xml.find(f"{MUC_USER}x/{MUC_USER}item")
    return dict(item.attrib) if item is not None else {}


def is_presence(from_: str, type_: str | None = None, code: str | None = None) -> Any:
    def match(stanza: StanzaBase) -> bool:
        return (
            isinstance(stanza, Presence)
            and str(stanza["from"]) == from_
            and (type_ is None or stanza["type"] == type_)
            and (code is None or code in status_codes(stanza))
        )

    return match


def is_subject(room: str) -> Any:
    def match(stanza: StanzaBase) -> bool:
        return (
            isinstance(stanza, Message)
            and stanza["from"].bare == room
            and stanza.xml.find("{jabber:client}subject") is not None
        )

    return match


async def join(client: XmppClient, room: str, nick: str, history: int | None = None) -> Presence:
    """Join as a client does; return the self-presence (110), after the subject arrived."""
    limit = "" if history is None else f"<history maxstanzas='{history}'/>"
    client.send_raw(
        f"<presence to='{room}/{nick}'><x xmlns='http://jabber.org/protocol/muc'>{limit}</x>"
        "</presence>"
    )
    own = await client.expect(is_presence(f"{room}/{nick}", code="110"), timeout=15)
    await client.expect(is_subject(room))
    assert isinstance(own, Presence)
    return own


async def test_join_and_messages_both_ways(world: World) -> None:
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#test")
    alice = world.alice

    own = await join(alice, ROOM, "alice")
    assert {"110", "100"} <= status_codes(own)
    assert muc_item(own)["role"] in ("participant", "moderator")
    # bob was already there; he came before alice's self-presence.
    assert any(isinstance(s, Presence) and str(s["from"]) == f"{ROOM}/bob" for s in alice.received)
    await bob.expect(r"^:alice!\S+ JOIN :?#test")

    sent = alice.send_message(ROOM, "hello from xmpp", mtype="groupchat")
    await bob.expect(r"^:alice!\S+ PRIVMSG #test :hello from xmpp$")
    echo = await alice.expect_message(from_=f"{ROOM}/alice", body="hello from xmpp")
    assert echo["id"] == sent["id"]
    assert echo.xml.find("{urn:xmpp:sid:0}stanza-id") is not None

    await bob.privmsg("#test", "hello from irc")
    got = await alice.expect_message(from_=f"{ROOM}/bob", body="hello from irc")
    assert got["type"] == "groupchat"

    await bob.privmsg("#test", "\x01ACTION waves\x01")
    await alice.expect_message(from_=f"{ROOM}/bob", body="/me waves")
    alice.send_message(ROOM, "/me nods", mtype="groupchat")
    await bob.expect(r"^:alice!\S+ PRIVMSG #test :\x01ACTION nods\x01$")

    await bob.send("NOTICE #test :heads up")
    await alice.expect_message(from_=f"{ROOM}/bob", body="[notice] heads up")


async def test_message_right_after_the_join_presence_waits_for_the_join(world: World) -> None:
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#test")
    world.alice.send_raw(
        f"<presence to='{ROOM}/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
    )
    world.alice.send_message(ROOM, "right away", mtype="groupchat")
    await bob.expect(r"^:alice!\S+ PRIVMSG #test :right away$", timeout=15)


async def test_private_messages_both_ways(world: World) -> None:
    bob = await world.connect_irc(world.ngircd, "bob")
    alice = world.alice
    alice.send_message(f"bob%irc.localhost@{GW}", "psst bob")
    await bob.expect(r"^:\S+ PRIVMSG bob :psst bob$", timeout=15)
    await bob.privmsg(_nick_of(bob.lines, "psst bob"), "psst alice")
    await alice.expect_message(from_=f"bob%irc.localhost@{GW}", body="psst alice")

    # From inside a room, to an occupant JID.
    await bob.join("#test")
    await join(alice, ROOM, "alice")
    alice.send_message(f"{ROOM}/bob", "in private")
    await bob.expect(r"^:alice!\S+ PRIVMSG bob :in private$")

    # CTCP VERSION is answered by the gateway, not shown to the user.
    await bob.privmsg("alice", "\x01VERSION\x01")
    await bob.expect(r"^:alice!\S+ NOTICE bob :\x01VERSION Portway")


def _nick_of(lines: list[str], text: str) -> str:
    for line in lines:
        match = re.match(r"^:([^!]+)!\S+ PRIVMSG \S+ :" + re.escape(text), line)
        if match:
            return match.group(1)
    raise AssertionError(f"no PRIVMSG {text!r} in {lines}")


async def test_bad_room_and_nick_give_errors(world: World) -> None:
    alice = world.alice
    alice.send_raw(
        f"<presence to='#bad,chan%irc.localhost@{GW}/alice'>"
        "<x xmlns='http://jabber.org/protocol/muc'/></presence>"
    )
    error = await alice.expect(lambda s: isinstance(s, Presence) and s["type"] == "error")
    assert error["error"]["condition"] in ("jid-malformed", "item-not-found")
    alice.send_raw(
        f"<presence to='{ROOM}/bad nick'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
    )
    error = await alice.expect(lambda s: isinstance(s, Presence) and s["type"] == "error")
    assert error["error"]["condition"] == "jid-malformed"
    alice.send_message(f"nobody%unknown.example@{GW}", "hi")
    error = await alice.expect(lambda s: isinstance(s, Message) and s["type"] == "error")
    assert error["error"]["condition"] == "item-not-found"


async def test_nick_change_topic_modes_kick_part_and_quit(world: World) -> None:
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#test")  # first in: bob is a channel operator
    alice = world.alice
    await join(alice, ROOM, "alice")
    bob_presence = await alice.expect(is_presence(f"{ROOM}/bob"))
    # A real JID, as a non-anonymous room must give: bob's contact JID, user@host as resource.
    assert muc_item(bob_presence) == {
        "affiliation": "admin",
        "role": "moderator",
        "jid": f"bob%irc.localhost@{GW}/~bob@127.0.0.1",
    }

    # An XMPP nick change becomes /nick; the room sees 303 then the new nick.
    alice.send_raw(f"<presence to='{ROOM}/alice2'/>")
    await bob.expect(r"^:alice!\S+ NICK :?alice2$")
    gone = await alice.expect(is_presence(f"{ROOM}/alice", "unavailable", "303"))
    assert {"110", "303"} <= status_codes(gone) and muc_item(gone)["nick"] == "alice2"
    await alice.expect(is_presence(f"{ROOM}/alice2", code="110"))

    # Modes become roles: +o makes alice a moderator.
    await bob.send("MODE #test +o alice2")
    opped = await alice.expect(
        lambda s: is_presence(f"{ROOM}/alice2")(s) and muc_item(s).get("role") == "moderator"
    )
    assert "110" in status_codes(opped)

    # Topic ↔ subject, both ways.
    await bob.send("TOPIC #test :the new topic")
    subject = await alice.expect(is_subject(ROOM))
    assert subject["subject"] == "the new topic" and str(subject["from"]) == f"{ROOM}/bob"
    alice.send_raw(f"<message to='{ROOM}' type='groupchat'><subject>from xmpp</subject></message>")
    await bob.expect(r"^:alice2!\S+ TOPIC #test :from xmpp$")

    # Joins, parts and quits of others.
    carol = await world.connect_irc(world.ngircd, "carol")
    await carol.join("#test")
    await alice.expect(is_presence(f"{ROOM}/carol", "available"))
    await carol.send("PART #test :later")
    await alice.expect(is_presence(f"{ROOM}/carol", "unavailable"))
    await carol.join("#test")
    await alice.expect(is_presence(f"{ROOM}/carol", "available"))
    await carol.close("gone fishing")
    left = await alice.expect(is_presence(f"{ROOM}/carol", "unavailable"))
    assert "gone fishing" in left["status"]

    # A kick: 307, and alice is out of the room.
    await bob.send("KICK #test alice2 :behave")
    kicked = await alice.expect(is_presence(f"{ROOM}/alice2", "unavailable", "307"))
    assert "110" in status_codes(kicked)
    alice.send_message(ROOM, "still here?", mtype="groupchat")
    error = await alice.expect(lambda s: isinstance(s, Message) and s["type"] == "error")
    assert error["error"]["condition"] == "not-acceptable"


async def test_two_resources_share_one_connection(world: World) -> None:
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#test")
    phone = await world.connect_xmpp("alice@example.org/phone", USERS["alice"], world.prosody)
    await join(world.alice, ROOM, "alice")
    await bob.expect(r"^:alice!\S+ JOIN")
    await join(phone, ROOM, "alice")

    await bob.privmsg("#test", "to both")
    await world.alice.expect_message(from_=f"{ROOM}/bob", body="to both")
    await phone.expect_message(from_=f"{ROOM}/bob", body="to both")
    phone.send_message(ROOM, "from the phone", mtype="groupchat")
    await bob.expect(r"^:alice!\S+ PRIVMSG #test :from the phone$")
    await world.alice.expect_message(from_=f"{ROOM}/alice", body="from the phone")
    await phone.expect_message(from_=f"{ROOM}/alice", body="from the phone")

    # One resource leaves: the IRC user stays; the last one leaves: PART.
    phone.send_raw(f"<presence to='{ROOM}/alice' type='unavailable'/>")
    await phone.expect(is_presence(f"{ROOM}/alice", "unavailable", "110"))
    await bob.privmsg("#test", "still there?")
    await world.alice.expect_message(from_=f"{ROOM}/bob", body="still there?")
    assert not [line for line in bob.lines if re.match(r"^:alice!\S+ (PART|QUIT)", line)]
    world.alice.send_raw(f"<presence to='{ROOM}/alice' type='unavailable'/>")
    await bob.expect(r"^:alice!\S+ (PART #test|QUIT)")
    assert sum(1 for line in bob.lines if re.match(r"^:alice!\S+ JOIN", line)) == 1


async def test_away_follows_xmpp_presence(world: World) -> None:
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#test")
    await join(world.alice, ROOM, "alice")
    world.alice.send_raw(
        f"<presence to='{ROOM}/alice'><show>away</show><status>lunch</status></presence>"
    )
    await asyncio.sleep(0.5)
    await bob.send("WHOIS alice")
    await bob.expect(r"^:\S+ 301 bob alice :lunch$")
    await bob.expect(r" 318 bob alice ")
    world.alice.send_raw(f"<presence to='{ROOM}/alice'/>")
    await asyncio.sleep(0.5)
    bob.lines.clear()
    await bob.send("WHOIS alice")
    await bob.expect(r" 318 bob alice ")
    assert not [line for line in bob.lines if " 301 " in line]


async def test_cr_lf_cannot_inject_commands(world: World) -> None:
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#test")
    alice = world.alice
    await join(alice, ROOM, "alice")
    alice.send_message(ROOM, "one\r\nQUIT :pwned\rJOIN #evil\n\nthree", mtype="groupchat")
    await bob.expect(r"^:alice!\S+ PRIVMSG #test :one$")
    await bob.expect(r"^:alice!\S+ PRIVMSG #test :QUIT :pwned$")
    await bob.expect(r"^:alice!\S+ PRIVMSG #test :JOIN #evil$")
    await bob.expect(r"^:alice!\S+ PRIVMSG #test :three$")
    alice.send_message(ROOM, "still connected", mtype="groupchat")
    await bob.expect(r"^:alice!\S+ PRIVMSG #test :still connected$")
    assert not [line for line in bob.lines if re.match(r"^:alice!\S+ (QUIT|JOIN #evil)", line)]
    await bob.send("PING :sync")
    await bob.expect("PONG")
    assert sum(1 for line in bob.lines if line.endswith(":still connected")) == 1

    # A raw command to the server JID is one line, or refused.
    alice.send_message(f"irc.localhost@{GW}", "PRIVMSG bob :raw\r\nQUIT :x")
    error = await alice.expect(lambda s: isinstance(s, Message) and s["type"] == "error")
    assert error["error"]["condition"] == "bad-request"
    alice.send_message(f"irc.localhost@{GW}", "PRIVMSG bob :raw hello")
    await bob.expect(r"^:alice!\S+ PRIVMSG bob :raw hello$")


async def test_control_characters_from_irc_cannot_break_the_xmpp_stream(world: World) -> None:
    """XML 1.0 cannot carry most C0 controls; one in a stanza would make the XMPP server drop
    the gateway's stream (and a queued event would do it again on every reconnect)."""
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#test")
    alice = world.alice
    await join(alice, ROOM, "alice")
    await bob.privmsg("#test", "bell\x07 escape\x1b[1m nul-free\x0bvt")
    await alice.expect_message(from_=f"{ROOM}/bob", body="bell escape[1m nul-freevt")
    await bob.send("TOPIC #test :topic\x07 with a bell")
    subject = await alice.expect(lambda s: isinstance(s, Message) and bool(s["subject"]))
    assert subject["subject"] == "topic with a bell"
    await bob.privmsg("alice", "private\x08 backspace")
    await alice.expect_message(from_=f"bob%irc.localhost@{GW}", body="private backspace")
    # The stream is still up: the next line arrives, once.
    await bob.privmsg("#test", "still here")
    await alice.expect_message(from_=f"{ROOM}/bob", body="still here")
    bodies = [s["body"] for s in alice.received if isinstance(s, Message)]
    assert bodies.count("still here") == 1


async def test_long_and_multibyte_lines_are_split_by_bytes(world: World) -> None:
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#test")
    alice = world.alice
    await join(alice, ROOM, "alice")
    body = "".join(f"mot{i}é€😀 " for i in range(200)).strip()
    alice.send_message(ROOM, body, mtype="groupchat")
    received: list[str] = []
    while " ".join(received) != body:
        line = await bob.expect(r"^:alice!\S+ PRIVMSG #test :")
        assert len(line.encode()) + 2 <= 512, line
        received.append(line.split(" :", 1)[1])
        assert len(" ".join(received)) <= len(body)
    assert len(received) > 2
