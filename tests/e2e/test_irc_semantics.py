"""Corrections, retractions, reactions and replies on an IRC server without message-tags
(#12), against a real Prosody, a real ngIRCd and `portway run`.

alice's client sends the stanzas modern clients send (XEP-0308, 0424, 0444, 0461 with its
XEP-0428 fallback); bob is a raw IRC client, so each text form is checked as IRC shows it.
The other way, bob's ``s/old/new/`` after his line becomes an XEP-0308 correction.
The same on InspIRCd, with client tags: test_irc_semantics_v3.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from slixmpp import Message
from slixmpp.xmlstream import StanzaBase
from support.fixture_types import ConnectIrc, ConnectXmpp, MakeNgircd, MakeProsody
from support.gateway import GatewayProcess
from support.irc_client import RawIrcClient
from support.xmpp_client import XmppClient
from test_irc_rooms import GW, ROOM, SECRET, USERS, World, gateway_settings, join
from test_irc_rooms import world as world  # the fixture, shared

pytestmark = pytest.mark.e2e

SERVER = "irc.localhost"
BOB = f"bob%{SERVER}@{GW}"
SID = "{urn:xmpp:sid:0}stanza-id"
NS_CORRECT = "urn:xmpp:message-correct:0"
NS_RETRACT = "urn:xmpp:message-retract:1"
NS_REACTIONS = "urn:xmpp:reactions:0"
NS_REPLY = "urn:xmpp:reply:0"
NS_FALLBACK = "urn:xmpp:fallback:0"
ACTION = "\x01ACTION "


# -- the stanzas clients send (Conversations, Gajim, Dino) ---------------------------------


def reply(to: str, mid: str, target: str, author: str, quote: str, body: str, kind: str) -> str:
    fallback = f"> {quote}\n"
    return (
        f"<message type='{kind}' to='{to}' id='{mid}'><body>{escape(fallback + body)}</body>"
        f"<reply xmlns='{NS_REPLY}' to='{author}' id='{target}'/>"
        f"<fallback xmlns='{NS_FALLBACK}' for='{NS_REPLY}'>"
        f"<body start='0' end='{len(fallback)}'/></fallback></message>"
    )


def reactions(to: str, mid: str, target: str, emojis: tuple[str, ...], kind: str) -> str:
    inner = "".join(f"<reaction>{e}</reaction>" for e in emojis)
    return (
        f"<message type='{kind}' to='{to}' id='{mid}'>"
        f"<reactions xmlns='{NS_REACTIONS}' id='{target}'>{inner}</reactions>"
        "<store xmlns='urn:xmpp:hints'/></message>"
    )


def correction(to: str, mid: str, target: str, body: str, kind: str) -> str:
    return (
        f"<message type='{kind}' to='{to}' id='{mid}'><body>{escape(body)}</body>"
        f"<replace xmlns='{NS_CORRECT}' id='{target}'/></message>"
    )


def retraction(to: str, mid: str, target: str, kind: str) -> str:
    """As Conversations sends it: with a fallback body for clients that know none."""
    return (
        f"<message type='{kind}' to='{to}' id='{mid}'>"
        f"<retract xmlns='{NS_RETRACT}' id='{target}'/>"
        f"<fallback xmlns='{NS_FALLBACK}' for='{NS_RETRACT}'/>"
        "<body>This person attempted to retract a previous message, but it's unsupported by"
        " your client.</body><store xmlns='urn:xmpp:hints'/></message>"
    )


# -- what the user's client receives --------------------------------------------------------


def child(stanza: StanzaBase, ns: str, name: str) -> dict[str, str] | None:
    found = stanza.xml.find(f"{{{ns}}}{name}")
    return dict(found.attrib) if found is not None else None


def emojis(stanza: StanzaBase) -> tuple[str, ...]:
    found = stanza.xml.find(f"{{{NS_REACTIONS}}}reactions")
    assert found is not None, stanza
    return tuple(r.text or "" for r in found.findall(f"{{{NS_REACTIONS}}}reaction"))


def doing(from_: str, ns: str, name: str, target: str) -> Callable[[StanzaBase], bool]:
    """A message from ``from_`` carrying ``<name xmlns=ns id=target/>``."""

    def match(stanza: StanzaBase) -> bool:
        found = child(stanza, ns, name) if isinstance(stanza, Message) else None
        return str(stanza["from"]) == from_ and found is not None and found.get("id") == target

    return match


def stanza_id(stanza: StanzaBase) -> str:
    found = stanza.xml.find(SID)
    assert found is not None and found.get("id"), stanza
    return str(found.get("id"))


def from_room(client: XmppClient, nick: str, body: str) -> list[StanzaBase]:
    return [
        s
        for s in client.received
        if isinstance(s, Message) and str(s["from"]) == f"{ROOM}/{nick}" and s["body"] == body
    ]


async def meet(bob: RawIrcClient, alice: XmppClient, channel: str, room: str) -> None:
    """bob joins ``channel``, then alice its room, and bob has seen her come."""
    await bob.join(channel)
    await join(alice, room, "alice")
    await bob.expect(rf":alice!\S+ JOIN :?{channel}")


async def bob_in(world: World) -> tuple[RawIrcClient, XmppClient]:
    bob = await world.connect_irc(world.ngircd, "bob")
    await meet(bob, world.alice, "#test", ROOM)
    return bob, world.alice


# -- rooms ------------------------------------------------------------------------------------


async def test_a_reply_in_a_room_addresses_the_nick(world: World) -> None:
    bob, alice = await bob_in(world)
    await bob.privmsg("#test", "the build is broken")
    line = await alice.expect_message(from_=f"{ROOM}/bob", body="the build is broken")
    target = stanza_id(line)
    alice.send_raw(
        reply(ROOM, "r1", target, f"{ROOM}/bob", "the build is broken", "fixed it", "groupchat")
    )
    await bob.expect(r"^:alice!\S+ PRIVMSG #test :bob: fixed it$")
    echo = await alice.expect_message(from_=f"{ROOM}/alice", contains="fixed it")
    assert echo["id"] == "r1"
    assert child(echo, NS_REPLY, "reply") == {"to": f"{ROOM}/bob", "id": target}


async def test_a_reaction_in_a_room_is_a_line_quoting_the_message(world: World) -> None:
    bob, alice = await bob_in(world)
    await bob.privmsg("#test", "the build is broken again on the main branch since today")
    line = await alice.expect_message(from_=f"{ROOM}/bob", contains="the build")
    target = stanza_id(line)
    alice.send_raw(reactions(ROOM, "x1", target, ("👍",), "groupchat"))
    said = await bob.expect(r" PRIVMSG #test :\x01ACTION ")
    assert said.endswith(
        f':{ACTION}reacted 👍 to bob: "the build is broken again on the main…"\x01'
    ), said
    echo = await alice.expect(doing(f"{ROOM}/alice", NS_REACTIONS, "reactions", target))
    assert emojis(echo) == ("👍",) and not echo["body"]
    # The whole set again, with one more: only the new one is said.
    alice.send_raw(reactions(ROOM, "x2", target, ("👍", "🎉"), "groupchat"))
    said = await bob.expect(r" PRIVMSG #test :\x01ACTION ")
    assert "reacted 🎉 to bob:" in said and "👍" not in said, said
    # One taken back: IRC cannot take a line back, and is told nothing.
    alice.send_raw(reactions(ROOM, "x3", target, ("🎉",), "groupchat"))
    echo = await alice.expect(doing(f"{ROOM}/alice", NS_REACTIONS, "reactions", target))
    while emojis(echo) != ("🎉",):
        echo = await alice.expect(doing(f"{ROOM}/alice", NS_REACTIONS, "reactions", target))
    alice.send_message(ROOM, "after the reactions", mtype="groupchat")
    nxt = await bob.expect(r" PRIVMSG #test :")
    assert nxt.endswith(":after the reactions"), nxt


async def test_a_correction_is_marked_and_the_echo_replaces_the_message(world: World) -> None:
    bob, alice = await bob_in(world)
    alice.send_raw(
        f"<message type='groupchat' to='{ROOM}' id='c1'><body>see you at 5pm</body></message>"
    )
    await bob.expect(r"^:alice!\S+ PRIVMSG #test :see you at 5pm$")
    await alice.expect_message(from_=f"{ROOM}/alice", body="see you at 5pm")
    alice.send_raw(correction(ROOM, "c2", "c1", "see you at 6pm", "groupchat"))
    await bob.expect(r"^:alice!\S+ PRIVMSG #test :see you at 6pm \(edited\)$")
    echo = await alice.expect(doing(f"{ROOM}/alice", NS_CORRECT, "replace", "c1"))
    assert echo["body"] == "see you at 6pm" and echo["id"] == "c2"
    await asyncio.sleep(0.5)
    # One corrected message: the mark is for IRC readers, not shown as a second message.
    assert from_room(alice, "alice", "see you at 6pm (edited)") == []


async def test_a_retraction_is_a_notice_and_the_echo_retracts(world: World) -> None:
    bob, alice = await bob_in(world)
    alice.send_message(ROOM, "my password is hunter2", mtype="groupchat")
    await bob.expect(r"PRIVMSG #test :my password is hunter2$")
    mine = await alice.expect_message(from_=f"{ROOM}/alice", body="my password is hunter2")
    target = stanza_id(mine)
    alice.send_raw(retraction(ROOM, "d1", target, "groupchat"))
    said = await bob.expect(r" PRIVMSG #test :\x01ACTION ")
    assert said.endswith(f":{ACTION}retracted their last message\x01"), said
    assert "hunter2" not in said  # what was retracted is never said again
    await alice.expect(doing(f"{ROOM}/alice", NS_RETRACT, "retract", target))
    # An older one is "a message".
    alice.send_message(ROOM, "a newer line", mtype="groupchat")
    await bob.expect(r"PRIVMSG #test :a newer line$")
    alice.send_raw(retraction(ROOM, "d2", target, "groupchat"))
    said = await bob.expect(r" PRIVMSG #test :\x01ACTION ")
    assert said.endswith(f":{ACTION}retracted a message\x01"), said


async def test_an_irc_substitution_corrects_the_line_before_it(world: World) -> None:
    bob, alice = await bob_in(world)
    await bob.privmsg("#test", "see you at 5pm")
    line = await alice.expect_message(from_=f"{ROOM}/bob", body="see you at 5pm")
    await bob.privmsg("#test", "s/5pm/6pm/")
    fixed = await alice.expect(doing(f"{ROOM}/bob", NS_CORRECT, "replace", line["id"]))
    assert fixed["body"] == "see you at 6pm"
    await bob.privmsg("#test", "s/nowhere/else/")  # not in the line: plain text
    await alice.expect_message(from_=f"{ROOM}/bob", body="s/nowhere/else/")


async def test_a_shared_file_is_its_link_once(world: World) -> None:
    """A file shared through the upload service (XEP-0363) arrives as its link with an OOB
    element whose URL is the body, as Conversations and Gajim send it: IRC gets the link as
    text, once. A client that sends only the OOB element, with no body, still gets it said."""
    bob, alice = await bob_in(world)
    url = "https://upload.example.org/abc123/holiday%20photo.jpg"
    alice.send_raw(
        f"<message type='groupchat' to='{ROOM}' id='f1'><body>{url}</body>"
        f"<x xmlns='jabber:x:oob'><url>{url}</url></x></message>"
    )
    await bob.expect(rf"^:alice!\S+ PRIVMSG #test :{url}$")
    other = "https://upload.example.org/def456/notes.pdf"
    alice.send_raw(
        f"<message type='groupchat' to='{ROOM}' id='f2'>"
        f"<x xmlns='jabber:x:oob'><url>{other}</url></x></message>"
    )
    await bob.expect(rf"^:alice!\S+ PRIVMSG #test :{other}$")
    alice.send_message(ROOM, "after the files", mtype="groupchat")
    nxt = await bob.expect(r" PRIVMSG #test :")
    assert nxt.endswith(":after the files"), nxt  # each link said once, nothing more


# -- private messages ---------------------------------------------------------------------------


async def test_private_reply_reaction_correction_retraction_as_text(world: World) -> None:
    bob = await world.connect_irc(world.ngircd, "bob")
    alice = world.alice
    alice.send_message(BOB, "hello bob")  # opens alice's connection
    await bob.expect(r"^:alice!\S+ PRIVMSG bob :hello bob$")
    await bob.privmsg("alice", "are you coming tonight?")
    got = await alice.expect_message(from_=BOB, body="are you coming tonight?")
    target = got["id"]
    alice.send_raw(reply(BOB, "p1", target, BOB, "are you coming tonight?", "yes", "chat"))
    await bob.expect(r"^:alice!\S+ PRIVMSG bob :bob: yes$")
    alice.send_raw(reactions(BOB, "p2", target, ("👍",), "chat"))
    await bob.expect(
        r'^:alice!\S+ PRIVMSG bob :\x01ACTION reacted 👍 to "are you coming tonight\?"\x01$'
    )
    alice.send_raw(correction(BOB, "p3", "p1", "yes, at 8", "chat"))
    await bob.expect(r"^:alice!\S+ PRIVMSG bob :yes, at 8 \(edited\)$")
    alice.send_raw(retraction(BOB, "p4", "p1", "chat"))
    said = await bob.expect(r" PRIVMSG bob :\x01ACTION ")
    assert said.endswith(f":{ACTION}retracted their last message\x01"), said
    # bob fixes his own line: a correction of it, by its id.
    await bob.privmsg("alice", "s/tonight/tomorrow/")
    fixed = await alice.expect(doing(BOB, NS_CORRECT, "replace", target))
    assert fixed["body"] == "are you coming tomorrow?"


@pytest.fixture
async def quiet_world(
    tmp_path: Path,
    make_prosody: MakeProsody,
    make_ngircd: MakeNgircd,
    xmpp_client: ConnectXmpp,
    irc_client: ConnectIrc,
) -> AsyncIterator[World]:
    """The admin's default for reactions where IRC has no client tags: not sent."""
    prosody = make_prosody(components={GW: SECRET}, users=USERS)
    ngircd = make_ngircd()
    settings = gateway_settings(prosody, ngircd)
    settings["transports"]["irc"]["servers"][SERVER]["reactions_as_text"] = False
    gateway = GatewayProcess(tmp_path / "gateway", settings)
    await gateway.astart()
    alice = await xmpp_client("alice@example.org", USERS["alice"], prosody)
    try:
        yield World(prosody, ngircd, gateway, alice, xmpp_client, irc_client)
    finally:
        gateway.stop()


async def test_reactions_are_dropped_where_the_setting_says(quiet_world: World) -> None:
    bob, alice = await bob_in(quiet_world)
    await bob.privmsg("#test", "vote please")
    line = await alice.expect_message(from_=f"{ROOM}/bob", body="vote please")
    alice.send_raw(reactions(ROOM, "q1", stanza_id(line), ("👍",), "groupchat"))
    await alice.expect(doing(f"{ROOM}/alice", NS_REACTIONS, "reactions", stanza_id(line)))
    alice.send_message(ROOM, "next line", mtype="groupchat")
    nxt = await bob.expect(r" PRIVMSG #test :")
    assert nxt.endswith(":next line"), nxt  # nothing was said for the reaction
