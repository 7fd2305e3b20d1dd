"""IRCv3 against InspIRCd 3 with its IRCv3 modules, and names and case against ngIRCd.

InspIRCd (tests/support/inspircd.py) offers server-time, message-tags, msgid,
echo-message, multi-prefix, away-notify, extended-join, account-notify, chghost,
invite-notify, batch, cap-notify and userhost-in-names; the gateway asks for them. People
on IRC are raw clients that opt in to the capabilities a scenario needs, so their view of
the gateway's lines, tags included, is exact. ngIRCd offers almost none of these: the
gateway keeps working there (tests/e2e/test_irc_rooms.py), and the names test runs on it.
"""

from __future__ import annotations

import asyncio
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from slixmpp import Message, Presence
from slixmpp.xmlstream import StanzaBase
from support.fixture_types import ConnectIrc, ConnectXmpp, MakeNgircd, MakeProsody
from support.gateway import GatewayProcess
from support.inspircd import IrcNetwork, MakeIrcNetwork
from support.irc_client import RawIrcClient
from support.prosody import Prosody
from support.xmpp_client import XmppClient

from transports.irc.webirc import identity

pytestmark = pytest.mark.e2e

GW = "irc.example.org"
SECRET = "irc-v3-component-s3cret"
USERS = {"alice": "alice-pw"}
SERVER = "v3.localhost"
ROOM = f"#v3%{SERVER}@{GW}"
SID = "{urn:xmpp:sid:0}stanza-id"
CHATSTATES = "{http://jabber.org/protocol/chatstates}"
DELAY = "{urn:xmpp:delay}delay"
MAM = "urn:xmpp:mam:2"


def settings(
    prosody: Prosody, host: str, port: int, archive: bool = False, **server: Any
) -> dict[str, Any]:
    return {
        "xmpp": {"host": "127.0.0.1", "port": prosody.component_port, "reconnect_max_seconds": 1},
        "allowed_domains": ["example.org"],
        "transports": {
            "irc": {
                "jid": GW,
                "secret": SECRET,
                "servers": {
                    SERVER: {"host": host, "port": port, "tls": False, "throttle": None, **server}
                },
                # Off unless asked: the stanza-id is then the server's msgid all the same.
                "archive_rooms": archive,
                "reconnect_delay": 0.2,
                "reconnect_max_delay": 0.4,
            }
        },
    }


@dataclass
class World:
    network: IrcNetwork
    gateway: GatewayProcess
    alice: XmppClient
    people: list[RawIrcClient] = field(default_factory=list)

    async def person(self, nick: str, caps: str = "") -> RawIrcClient:
        """Someone on IRC, with these IRCv3 capabilities (asked after registering)."""
        client = RawIrcClient(self.network.host, self.network.port, nick)
        self.people.append(client)
        await client.connect()
        if caps:
            await client.send(f"CAP REQ :{caps}")
            await client.expect(r" CAP \S+ ACK ")
        return client


async def make_world(
    tmp_path: Path,
    make_prosody: MakeProsody,
    make_irc_network: MakeIrcNetwork,
    xmpp_client: ConnectXmpp,
    archive: bool = False,
    **server: Any,
) -> AsyncIterator[World]:
    prosody = make_prosody(components={GW: SECRET}, users=USERS)
    network = make_irc_network()
    config = settings(prosody, network.host, network.port, archive, **server)
    gateway = GatewayProcess(tmp_path / "gateway", config)
    await gateway.astart()
    alice = await xmpp_client("alice@example.org", USERS["alice"], prosody)
    world = World(network, gateway, alice)
    try:
        yield world
    finally:
        for person in world.people:
            await person.close()
        gateway.stop()


@pytest.fixture
async def world(
    tmp_path: Path,
    make_prosody: MakeProsody,
    make_irc_network: MakeIrcNetwork,
    xmpp_client: ConnectXmpp,
) -> AsyncIterator[World]:
    async for made in make_world(tmp_path, make_prosody, make_irc_network, xmpp_client):
        yield made


def is_presence(from_: str, pred: Callable[[Presence], bool] = lambda _p: True) -> Any:
    def match(stanza: StanzaBase) -> bool:
        return isinstance(stanza, Presence) and str(stanza["from"]) == from_ and pred(stanza)

    return match


async def join(client: XmppClient, room: str, nick: str) -> None:
    client.send_raw(
        f"<presence to='{room}/{nick}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
    )
    await client.expect(
        lambda s: (
            isinstance(s, Message)
            and s["from"].bare == room
            and s.xml.find("{jabber:client}subject") is not None
        ),
        timeout=15,
    )


def messages(client: XmppClient, from_: str, body: str) -> list[StanzaBase]:
    return [
        s
        for s in client.received
        if isinstance(s, Message) and str(s["from"]) == from_ and s["body"] == body
    ]


async def test_echo_message_shows_what_the_server_carried_once_with_the_client_ids(
    world: World,
) -> None:
    bob = await world.person("bob")
    await bob.join("#v3")
    alice = world.alice
    await join(alice, ROOM, "alice")
    sent = alice.send_message(ROOM, "hello v3", mtype="groupchat")
    await bob.expect(r"^:alice!\S+ PRIVMSG #v3 :hello v3$")
    echo = await alice.expect_message(from_=f"{ROOM}/alice", body="hello v3")
    assert echo["id"] == sent["id"]
    # The server's echo, not a local copy: it carries the server's msgid as stanza-id.
    sid = echo.xml.find(SID)
    assert sid is not None and sid.get("id")
    await asyncio.sleep(1.0)
    assert len(messages(alice, f"{ROOM}/alice", "hello v3")) == 1  # no double echo

    # Two lines: two messages, as IRC carries them; the client's id on the first.
    sent = alice.send_message(ROOM, "line one\nline two", mtype="groupchat")
    first = await alice.expect_message(from_=f"{ROOM}/alice", body="line one")
    second = await alice.expect_message(from_=f"{ROOM}/alice", body="line two")
    assert first["id"] == sent["id"] and second["id"] != sent["id"]


async def test_msgid_is_the_stanza_id_of_room_and_private_messages(world: World) -> None:
    bob = await world.person("bob", "echo-message message-tags")
    await bob.join("#v3")
    alice = world.alice
    await join(alice, ROOM, "alice")
    await bob.privmsg("#v3", "tagged hello")
    own = await bob.expect(r"PRIVMSG #v3 :tagged hello$")
    msgid = re.search(r"[@;]msgid=([^; ]+)", own)
    assert msgid is not None, own
    got = await alice.expect_message(from_=f"{ROOM}/bob", body="tagged hello")
    sid = got.xml.find(SID)
    assert sid is not None and sid.get("id") == msgid[1]
    assert got.xml.find(DELAY) is None  # live: server-time does not make it history

    await bob.privmsg("alice", "private tagged")
    own = await bob.expect(r"PRIVMSG alice :private tagged$")
    msgid = re.search(r"[@;]msgid=([^; ]+)", own)
    assert msgid is not None
    got = await alice.expect_message(from_=f"bob%{SERVER}@{GW}", body="private tagged")
    sid = got.xml.find(SID)
    assert sid is not None and sid.get("id") == msgid[1]


async def test_away_notify_sets_and_clears_the_occupant_show(world: World) -> None:
    bob = await world.person("bob")
    await bob.join("#v3")
    alice = world.alice
    await join(alice, ROOM, "alice")
    await bob.send("AWAY :out for lunch")
    away = await alice.expect(is_presence(f"{ROOM}/bob", lambda p: p["show"] == "away"), timeout=10)
    assert away["status"] == "out for lunch"
    await bob.send("AWAY")
    await alice.expect(
        is_presence(f"{ROOM}/bob", lambda p: p["show"] == "" and p["type"] != "unavailable")
    )


async def test_typing_tags_become_chat_states_in_rooms_and_private(world: World) -> None:
    bob = await world.person("bob", "message-tags")
    await bob.join("#v3")
    alice = world.alice
    await join(alice, ROOM, "alice")
    for typing, state in (("active", "composing"), ("paused", "paused"), ("done", "active")):
        await bob.send(f"@+typing={typing} TAGMSG #v3")
        await alice.expect(
            lambda s, state=state: (
                isinstance(s, Message)
                and str(s["from"]) == f"{ROOM}/bob"
                and s.xml.find(f"{CHATSTATES}{state}") is not None
            )
        )
    await bob.send("@+typing=active TAGMSG alice")
    await alice.expect(
        lambda s: (
            isinstance(s, Message)
            and s["from"].bare == f"bob%{SERVER}@{GW}"
            and s.xml.find(f"{CHATSTATES}composing") is not None
        )
    )


async def test_invite_notify_for_someone_else_is_a_status_not_an_invitation(
    world: World,
) -> None:
    bob = await world.person("bob")
    await bob.join("#v3")  # first in: operator, may invite
    await world.person("carol")
    alice = world.alice
    await join(alice, ROOM, "alice")
    await bob.send("INVITE carol #v3")
    status = await alice.expect_message(from_=ROOM, contains="invited carol")
    assert status["body"] == "bob invited carol to #v3"
    invitation = "{http://jabber.org/protocol/muc#user}invite"
    assert not any(s.xml.find(f".//{invitation}") is not None for s in alice.received)


async def test_a_live_line_with_server_time_is_not_shown_as_history(world: World) -> None:
    """Only a replayed line (old server-time) gets a delay; the rule is unit-tested in
    test_irc_v3_tags.py, since a client cannot make InspIRCd send an old time."""
    bob = await world.person("bob")
    await bob.join("#v3")
    alice = world.alice
    await join(alice, ROOM, "alice")
    await bob.privmsg("#v3", "live line")
    got = await alice.expect_message(from_=f"{ROOM}/bob", body="live line")
    assert got.xml.find(DELAY) is None


@pytest.fixture
async def webirc_world(
    tmp_path: Path,
    make_prosody: MakeProsody,
    make_irc_network: MakeIrcNetwork,
    xmpp_client: ConnectXmpp,
) -> AsyncIterator[World]:
    async for made in make_world(
        tmp_path, make_prosody, make_irc_network, xmpp_client, webirc_password="webirc-s3cret"
    ):
        yield made


async def test_webirc_gives_each_user_a_host_of_their_own(webirc_world: World) -> None:
    bob = await webirc_world.person("bob")
    await bob.join("#v3")
    await join(webirc_world.alice, ROOM, "alice")
    joined = await bob.expect(r"^:alice!\S+ JOIN :?#v3")
    hostname, ip = identity("alice@example.org", "webirc-s3cret")
    # InspIRCd shows the address: it takes a WEBIRC hostname only if it resolves to it.
    assert joined.split(" ", 1)[0].endswith(f"@{ip}"), joined
    assert hostname.endswith(".example.org")


async def test_channel_names_keep_their_characters(
    tmp_path: Path,
    make_prosody: MakeProsody,
    make_ngircd: MakeNgircd,
    xmpp_client: ConnectXmpp,
    irc_client: ConnectIrc,
) -> None:
    """#foo[bar] stays #foo[bar] in the room JID (it was #foo{bar}), whatever case IRC
    writes it in."""
    prosody = make_prosody(components={GW: SECRET}, users=USERS)
    ngircd = make_ngircd()
    gateway = GatewayProcess(tmp_path / "gateway", settings(prosody, "127.0.0.1", ngircd.port))
    await gateway.astart()
    try:
        alice = await xmpp_client("alice@example.org", USERS["alice"], prosody)
        bob = await irc_client(ngircd, "bob")
        await bob.join("#FOO[BAR]")  # the same channel (ngIRCd: CASEMAPPING=ascii)
        room = f"#foo[bar]%{SERVER}@{GW}"
        await join(alice, room, "alice")
        await bob.privmsg("#Foo[Bar]", "same channel")
        got = await alice.expect_message(from_=f"{room}/bob", body="same channel")
        assert got["from"].bare == room
        folded = f"#foo{{bar}}%{SERVER}@{GW}"
        stanzas = [s for s in alice.received if isinstance(s, Message | Presence)]
        assert not any(s["from"].bare == folded for s in stanzas)
    finally:
        gateway.stop()


@pytest.fixture
async def archived_world(
    tmp_path: Path,
    make_prosody: MakeProsody,
    make_irc_network: MakeIrcNetwork,
    xmpp_client: ConnectXmpp,
) -> AsyncIterator[World]:
    async for made in make_world(
        tmp_path, make_prosody, make_irc_network, xmpp_client, archive=True
    ):
        yield made


async def test_history_and_mam_carry_the_servers_msgid_and_time(archived_world: World) -> None:
    """The archive keeps the server's msgid as stanza-id and its server-time: the live
    message, MAM and the history on a later join all say the same id and time."""
    bob = await archived_world.person("bob", "echo-message message-tags")
    await bob.join("#v3")
    await bob.send("CAP REQ :server-time")  # after the join, whose replies it would tag
    await bob.expect(r" CAP \S+ ACK ")
    alice = archived_world.alice
    await join(alice, ROOM, "alice")
    await bob.privmsg("#v3", "kept with its id")
    own = await bob.expect(r"PRIVMSG #v3 :kept with its id$")
    msgid, sent_at = re.search(r"[@;]msgid=([^; ]+)", own), re.search(r"[@;]time=([^; ]+)", own)
    assert msgid is not None and sent_at is not None, own
    server_time = datetime.fromisoformat(sent_at[1].replace("Z", "+00:00"))
    live = await alice.expect_message(from_=f"{ROOM}/bob", body="kept with its id")
    assert live.xml.find(SID).get("id") == msgid[1]

    alice.drain()
    reply = await alice.iq(f"<iq type='set' to='{ROOM}'><query xmlns='{MAM}' queryid='q1'/></iq>")
    assert reply["type"] == "result", reply
    found = [
        s.xml.find(f"{{{MAM}}}result")
        for s in alice.drain()
        if s.xml.find(f"{{{MAM}}}result") is not None
        and "kept with its id" in ET.tostring(s.xml, encoding="unicode")
    ]
    assert len(found) == 1 and found[0].get("id") == msgid[1]
    stamp = found[0].find(f"{{urn:xmpp:forward:0}}forwarded/{DELAY}")
    assert stamp is not None
    assert datetime.fromisoformat(stamp.get("stamp").replace("Z", "+00:00")) == server_time

    # Leave and join again: the history line carries the same id and time.
    alice.send_raw(f"<presence type='unavailable' to='{ROOM}/alice'/>")
    await alice.expect(is_presence(f"{ROOM}/alice", lambda p: p["type"] == "unavailable"))
    alice.received.clear()
    await join(alice, ROOM, "alice")
    old = [
        m
        for m in messages(alice, f"{ROOM}/bob", "kept with its id")
        if m.xml.find(DELAY) is not None
    ]
    assert len(old) == 1 and old[0].xml.find(SID).get("id") == msgid[1]
    stamp = old[0].xml.find(DELAY).get("stamp")
    assert datetime.fromisoformat(stamp.replace("Z", "+00:00")) == server_time
