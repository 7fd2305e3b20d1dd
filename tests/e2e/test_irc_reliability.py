"""IRC transport reliability: server outages, history, MAM, and bouncer mode across restarts."""

from __future__ import annotations

import asyncio
import re
import signal
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from slixmpp import Message
from slixmpp.xmlstream import StanzaBase
from support.fixture_types import ConnectIrc, ConnectXmpp, MakeNgircd, MakeProsody
from support.gateway import GatewayProcess
from test_irc_rooms import GW, ROOM, SECRET, USERS, World, gateway_settings, is_presence, join
from test_irc_rooms import world as world  # the fixture, shared

pytestmark = pytest.mark.e2e

NS_MAM = "urn:xmpp:mam:2"


def is_room_text(contains: str) -> object:
    def match(stanza: StanzaBase) -> bool:
        return (
            isinstance(stanza, Message)
            and stanza["from"].bare == ROOM
            and not stanza["from"].resource
            and contains in stanza["body"]
        )

    return match


async def test_irc_server_restart_rejoins_and_loses_nothing(world: World) -> None:
    alice = world.alice
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#test")
    await join(alice, ROOM, "alice")

    world.ngircd.kill()
    await alice.expect(is_room_text("reconnecting"))
    alice.send_message(ROOM, "sent while the server was down", mtype="groupchat")
    await asyncio.sleep(0.3)
    # bob must be back in #test before the gateway rejoins, or he could not witness the
    # queued line: hold the gateway still (its retry timer would race bob's join) meanwhile.
    assert world.gateway.process is not None
    world.gateway.process.send_signal(signal.SIGSTOP)
    try:
        world.ngircd.start()
        bob2 = await world.connect_irc(world.ngircd, "bob")
        await bob2.join("#test")
    finally:
        world.gateway.process.send_signal(signal.SIGCONT)
    await alice.expect(is_room_text("Reconnected"), timeout=20)
    await bob2.expect(r"^:alice!\S+ JOIN :?#test")
    await bob2.expect(r"^:alice!\S+ PRIVMSG #test :sent while the server was down$")
    echo = await alice.expect_message(from_=f"{ROOM}/alice", body="sent while the server was down")
    assert echo["type"] == "groupchat"
    await bob2.privmsg("#test", "welcome back")
    await alice.expect_message(from_=f"{ROOM}/bob", body="welcome back")


async def test_history_on_join_and_mam(world: World) -> None:
    alice = world.alice
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#test")
    await join(alice, ROOM, "alice")
    for index in range(3):
        await bob.privmsg("#test", f"line {index}")
        await alice.expect_message(from_=f"{ROOM}/bob", body=f"line {index}")
    alice.send_raw(f"<presence to='{ROOM}/alice' type='unavailable'/>")
    await alice.expect(is_presence(f"{ROOM}/alice", "unavailable", "110"))
    alice.drain()

    # History on join, with delay stamps, limited by maxstanzas.
    await join(alice, ROOM, "alice", history=2)
    history = [s for s in alice.drain() if isinstance(s, Message) and s["body"]]
    assert [m["body"] for m in history] == ["line 1", "line 2"]
    for message in history:
        assert message.xml.find("{urn:xmpp:delay}delay") is not None

    # MAM on the room JID: everything, paged by RSM.
    reply = await alice.iq(
        f"<iq type='set' to='{ROOM}'><query xmlns='{NS_MAM}' queryid='q1'>"
        "<set xmlns='http://jabber.org/protocol/rsm'><max>2</max></set></query></iq>"
    )
    assert reply["type"] == "result", reply
    fin = reply.xml.find(f"{{{NS_MAM}}}fin")
    assert fin is not None and fin.get("complete") != "true"
    results = [s for s in alice.drain() if s.xml.find(f"{{{NS_MAM}}}result") is not None]
    bodies = [
        r.xml.findtext(
            f"{{{NS_MAM}}}result/{{urn:xmpp:forward:0}}forwarded/{{jabber:client}}message/"
            "{jabber:client}body"
        )
        for r in results
    ]
    assert bodies == ["line 0", "line 1"]
    last = fin.findtext("{http://jabber.org/protocol/rsm}set/{http://jabber.org/protocol/rsm}last")
    reply = await alice.iq(
        f"<iq type='set' to='{ROOM}'><query xmlns='{NS_MAM}' queryid='q2'>"
        f"<set xmlns='http://jabber.org/protocol/rsm'><max>10</max><after>{last}</after></set>"
        "</query></iq>"
    )
    assert reply.xml.find(f"{{{NS_MAM}}}fin").get("complete") == "true"
    results = [s for s in alice.drain() if s.xml.find(f"{{{NS_MAM}}}result") is not None]
    assert len(results) == 1

    # Disco on the room says what it is.
    info = await alice.iq(
        f"<iq type='get' to='{ROOM}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
    )
    identities = {(i[0], i[1]) for i in info["disco_info"]["identities"]}
    assert ("conference", "irc") in identities
    assert NS_MAM in info["disco_info"]["features"]


async def _set_persistent(client: object, rooms: str) -> None:
    """Run the per-server ad-hoc command: pick the server, then list persistent channels."""
    from support.xmpp_client import XmppClient

    assert isinstance(client, XmppClient)
    node = "irc-server-settings"
    first = await client.iq(
        f"<iq type='set' to='{GW}'><command xmlns='http://jabber.org/protocol/commands' "
        f"node='{node}' action='execute'/></iq>"
    )
    assert first["type"] == "result", first
    session = first["command"]["sessionid"]
    second = await client.iq(
        f"<iq type='set' to='{GW}'><command xmlns='http://jabber.org/protocol/commands' "
        f"node='{node}' sessionid='{session}'><x xmlns='jabber:x:data' type='submit'>"
        "<field var='server'><value>irc.localhost</value></field></x></command></iq>"
    )
    assert second["type"] == "result", second
    session = second["command"]["sessionid"]
    done = await client.iq(
        f"<iq type='set' to='{GW}'><command xmlns='http://jabber.org/protocol/commands' "
        f"node='{node}' sessionid='{session}'><x xmlns='jabber:x:data' type='submit'>"
        "<field var='server'><value>irc.localhost</value></field>"
        f"<field var='persistent_rooms'><value>{rooms}</value></field></x></command></iq>"
    )
    assert done["type"] == "result", ET.tostring(done.xml)
    assert done["command"]["status"] == "completed"


async def test_gateway_restart_keeps_persistent_room(
    tmp_path: Path,
    make_prosody: MakeProsody,
    make_ngircd: MakeNgircd,
    xmpp_client: ConnectXmpp,
    irc_client: ConnectIrc,
) -> None:
    prosody = make_prosody(components={GW: SECRET}, users=USERS)
    ngircd = make_ngircd()
    gateway = GatewayProcess(tmp_path / "gateway", gateway_settings(prosody, ngircd))
    await gateway.astart()
    try:
        alice = await xmpp_client("alice@example.org", USERS["alice"], prosody)
        bob = await irc_client(ngircd, "bob")
        await bob.join("#test")
        await join(alice, ROOM, "alice")
        # Taken now, so that the JOIN awaited after the restart is the restart's own.
        await bob.expect(r"^:alice!\S+ JOIN :?#test")
        await _set_persistent(alice, "#test")

        # alice goes offline: the room stays joined on IRC (bouncer mode).
        await alice.disconnect()
        await asyncio.sleep(1.0)
        assert not [line for line in bob.lines if re.match(r"^:alice!\S+ (PART|QUIT)", line)]
        await bob.privmsg("#test", "while you were away")
        await asyncio.sleep(0.5)

        # A gateway restart rejoins the persistent room by itself.
        await gateway.astop()
        await bob.expect(r"^:alice!\S+ QUIT")
        await gateway.astart()
        await bob.expect(r"^:alice!\S+ JOIN :?#test", timeout=15)
        await bob.privmsg("#test", "after the restart")

        alice = await xmpp_client("alice@example.org", USERS["alice"], prosody)
        await join(alice, ROOM, "alice")
        away = await alice.expect_message(body="while you were away")
        assert away["delay"]["stamp"], "what the room heard while alice was away is history"
        assert sum(1 for line in bob.lines if re.match(r"^:alice!\S+ JOIN", line)) == 2
        # Heard right after the restart's rejoin: as history if the gateway read it before
        # alice came back, live otherwise; either way it must reach her, once.
        await alice.expect_message(body="after the restart")
        await asyncio.sleep(0.5)
        bodies = [s["body"] for s in alice.received if isinstance(s, Message) and s["body"]]
        assert bodies.count("while you were away") == 1
        assert bodies.count("after the restart") == 1
    finally:
        gateway.stop()
