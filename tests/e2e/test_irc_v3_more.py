"""More IRCv3 against InspIRCd 3 (+ Atheme): what test_irc_v3.py does not cover yet.

extended-join and account-notify (the occupant's services account), chghost (the
occupant's real JID follows its host), multi-prefix (the role comes from the highest
prefix, and a lower one is kept for when the higher goes), outbound ``+typing`` (an XMPP
user's chat states reach IRC as TAGMSG) and batch (chanhistory's BATCH-wrapped replay at
join). The world is test_irc_v3.py's: one XMPP user, alice, and raw IRC people.
"""

from __future__ import annotations

import asyncio
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from slixmpp import Presence
from slixmpp.xmlstream import StanzaBase
from support.fixture_types import ConnectXmpp, MakeProsody
from support.inspircd import MakeIrcNetwork
from test_irc_v3 import DELAY, GW, ROOM, SERVER, World, is_presence, join, make_world, messages

pytestmark = pytest.mark.e2e

MUC_USER = "{http://jabber.org/protocol/muc#user}"
CHATSTATES = "http://jabber.org/protocol/chatstates"


@pytest.fixture
async def world(
    tmp_path: Path,
    make_prosody: MakeProsody,
    make_irc_network: MakeIrcNetwork,
    xmpp_client: ConnectXmpp,
) -> AsyncIterator[World]:
    async for made in make_world(tmp_path, make_prosody, make_irc_network, xmpp_client):
        yield made


def item(presence: StanzaBase) -> ET.Element:
    found = presence.xml.find(f"{MUC_USER}x/{MUC_USER}item")
    assert found is not None, ET.tostring(presence.xml, encoding="unicode")
    return found


def text(stanza: StanzaBase) -> str:
    return ET.tostring(stanza.xml, encoding="unicode")


def available(nick: str) -> Callable[[StanzaBase], bool]:
    return is_presence(f"{ROOM}/{nick}", lambda p: p["type"] != "unavailable")


async def logged_in(world: World, nick: str, account: str, password: str) -> None:
    """``nick`` (already on IRC) identifies to NickServ as ``account``."""
    person = next(p for p in world.people if p.nick == nick)
    await person.privmsg("NickServ", f"IDENTIFY {account} {password}")
    await person.expect(rf" 900 {nick} \S+ {account} :", timeout=10)


async def test_extended_join_shows_the_occupants_account(world: World) -> None:
    """bob, logged in to the account ``robert``, joins while alice is in the room: the
    JOIN carries the account (extended-join), and alice's view of bob should say it."""
    await world.network.register_account("robert", "robert-pw")
    await world.person("bob")
    await logged_in(world, "bob", "robert", "robert-pw")
    watcher = await world.person("watcher", "extended-join")
    await watcher.join("#v3")
    alice = world.alice
    await join(alice, ROOM, "alice")
    bob = next(p for p in world.people if p.nick == "bob")
    await bob.join("#v3")
    # The server did send the account: a raw client with extended-join sees it.
    await watcher.expect(r"^:bob!\S+ JOIN #v3 robert :")
    seen = await alice.expect(available("bob"), timeout=10)
    await asyncio.sleep(1.0)  # any later presence of bob (a WHO, an update) counts too
    shown = [text(s) for s in alice.received if available("bob")(s)]
    assert any("robert" in xml for xml in shown), (
        f"bob's account 'robert' appears nowhere in his occupant presence:\n{text(seen)}"
    )


async def test_account_notify_updates_the_occupants_account(world: World) -> None:
    """carol is in the room, then logs in as ``caroline``: ACCOUNT (account-notify) reaches
    the gateway, which re-sends carol's presence; that presence should say the account."""
    await world.network.register_account("caroline", "caroline-pw")
    carol = await world.person("carol")
    await carol.join("#v3")
    watcher = await world.person("watcher", "account-notify")
    await watcher.join("#v3")
    alice = world.alice
    await join(alice, ROOM, "alice")
    before = await alice.expect(available("carol"))
    assert "caroline" not in text(before)
    alice.received.clear()
    await logged_in(world, "carol", "caroline", "caroline-pw")
    await watcher.expect(r"^:carol!\S+ ACCOUNT :?caroline$")
    after = await alice.expect(available("carol"), timeout=10)
    assert "caroline" in text(after), (
        f"carol's new account 'caroline' appears nowhere in her re-sent presence:\n{text(after)}"
    )


async def test_chghost_changes_the_occupants_real_jid(world: World) -> None:
    """An operator changes bob's host (CHGHOST): bob's real JID resource (``user@host``)
    follows, in a new presence to alice; his nick, role and room stay."""
    bob = await world.person("bob")
    await bob.join("#v3")
    alice = world.alice
    await join(alice, ROOM, "alice")
    first = item(await alice.expect(available("bob")))
    contact = f"bob%{SERVER}@{GW}"
    old_jid = first.get("jid") or ""
    assert old_jid.startswith(f"{contact}/") and old_jid.endswith("@127.0.0.1"), old_jid
    user = old_jid.removeprefix(f"{contact}/").partition("@")[0]

    oper = await world.person("oper")
    await oper.send(f"OPER tests {world.network.ircd.oper_password}")
    await oper.expect(r" 381 oper ")
    alice.received.clear()
    await oper.send("CHGHOST bob moved.host.example")
    changed = await alice.expect(
        is_presence(f"{ROOM}/bob", lambda p: "moved.host.example" in text(p)), timeout=10
    )
    assert changed["type"] != "unavailable"
    assert item(changed).get("jid") == f"{contact}/{user}@moved.host.example"
    assert item(changed).get("role") == first.get("role")
    # Not shown as leaving and coming back: no unavailable presence for bob.
    assert not any(
        isinstance(s, Presence) and str(s["from"]) == f"{ROOM}/bob" and s["type"] == "unavailable"
        for s in alice.received
    )


async def test_multi_prefix_role_from_the_highest_prefix_and_the_lower_kept(
    world: World,
) -> None:
    """bob is op and voiced (NAMES ``@+bob`` with multi-prefix): moderator and admin. When
    he loses op he keeps his voice, which only multi-prefix told: participant and member,
    not a member-less participant."""
    bob = await world.person("bob", "multi-prefix")
    await bob.join("#v3")  # first in: operator
    await bob.send("MODE #v3 +v bob")
    await bob.expect(r"^:bob!\S+ MODE #v3 \+v :?bob$")
    await bob.send("NAMES #v3")
    await bob.expect(r" 353 bob \S #v3 :.*@\+bob")  # the server does send both prefixes
    alice = world.alice
    await join(alice, ROOM, "alice")
    shown = item(await alice.expect(available("bob")))
    assert (shown.get("role"), shown.get("affiliation")) == ("moderator", "admin")
    alice.received.clear()
    await bob.send("MODE #v3 -o bob")
    after = item(await alice.expect(available("bob"), timeout=10))
    assert (after.get("role"), after.get("affiliation")) == ("participant", "member"), text(
        alice.received[-1]
    )


async def test_xmpp_chat_states_in_a_room_reach_irc_as_typing_tags(world: World) -> None:
    """alice's XEP-0085 states in the room become ``@+typing=… TAGMSG #v3`` for an IRC
    client that asked for message-tags; one without it sees no TAGMSG at all."""
    bob = await world.person("bob", "message-tags")
    await bob.join("#v3")
    plain = await world.person("plain")
    await plain.join("#v3")
    alice = world.alice
    await join(alice, ROOM, "alice")
    await bob.expect(r"^(@\S+ )?:alice!\S+ JOIN :?#v3")
    for state, typing in (("composing", "active"), ("paused", "paused"), ("active", "done")):
        alice.send_raw(
            f"<message type='groupchat' to='{ROOM}'><{state} xmlns='{CHATSTATES}'/></message>"
        )
        line = await bob.expect(r" TAGMSG :?#v3$", timeout=10)
        assert re.match(rf"^@(\S+;)?\+typing={typing}(;\S+)? :alice!\S+ TAGMSG :?#v3$", line), line
    await asyncio.sleep(0.5)
    assert not any("TAGMSG" in line for line in plain.lines)
    # And the state did not become a message anyone sees.
    assert not any(" PRIVMSG #v3 " in line for line in bob.lines)


async def test_a_batch_of_replayed_lines_at_join_keeps_the_room_working(world: World) -> None:
    """InspIRCd's chanhistory (+H) replays earlier lines to a joiner inside a BATCH. The
    gateway (which asks for batch) must still complete the join, show each replayed line
    once, and carry on: a live line after it arrives, and alice can speak."""
    bob = await world.person("bob")
    await bob.join("#v3")
    await bob.send("MODE #v3 +H 10:1h")
    await bob.expect(r"MODE #v3 \+H :?10:1h")
    await bob.privmsg("#v3", "said before alice")
    await bob.privmsg("#v3", "also before alice")
    # A raw client that asks for batch sees the replay wrapped in a BATCH.
    peek = await world.person("peek", "batch server-time message-tags")
    await peek.send("JOIN #v3")
    opened = await peek.expect(r"^(@\S+ )?:\S+ BATCH \+(\S+) ")
    ref = opened.split(" BATCH +", 1)[1].split(" ")[0]
    await peek.expect(rf"^@(\S+;)?batch={re.escape(ref)}[; ].* PRIVMSG #v3 :said before alice$")
    await peek.expect(rf" BATCH :?-{re.escape(ref)}$")

    alice = world.alice
    await join(alice, ROOM, "alice")
    await alice.expect_message(from_=f"{ROOM}/bob", body="also before alice", timeout=10)
    await bob.privmsg("#v3", "live after the batch")
    await alice.expect_message(from_=f"{ROOM}/bob", body="live after the batch")
    alice.send_message(ROOM, "alice speaks", mtype="groupchat")
    await bob.expect(r":alice!\S+ PRIVMSG #v3 :alice speaks$")
    await asyncio.sleep(0.5)
    for body in ("said before alice", "also before alice", "live after the batch"):
        assert len(messages(alice, f"{ROOM}/bob", body)) == 1, body
    # The occupant list is intact: bob and peek are still there.
    for nick in ("bob", "peek"):
        assert any(available(nick)(s) for s in alice.received), nick


async def test_a_batch_replay_at_join_is_shown_as_history(world: World) -> None:
    """Lines replayed in a chanhistory BATCH happened before alice joined: they are history,
    so they carry their server-time as a XEP-0203 delay, however recent they are."""
    bob = await world.person("bob")
    await bob.join("#v3")
    await bob.send("MODE #v3 +H 10:1h")
    await bob.expect(r"MODE #v3 \+H :?10:1h")
    await bob.privmsg("#v3", "history line")
    await asyncio.sleep(2.0)
    alice = world.alice
    await join(alice, ROOM, "alice")
    got = await alice.expect_message(from_=f"{ROOM}/bob", body="history line", timeout=10)
    assert got.xml.find(DELAY) is not None, text(got)
