"""Corrections, retractions, reactions and replies where IRC carries client tags (#12),
against a real Prosody, InspIRCd 3 with message-tags, msgid and echo-message, and
`portway run` (the world of test_irc_v3.py, with the room archive on).

Replies and reactions name their target by msgid both ways (``+draft/reply``,
``+draft/react``/``+draft/unreact`` in TAGMSG); a room's stanza-id is the msgid, and a
private message's msgid is kept with its XMPP id, across a gateway restart too.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from slixmpp import Message
from support.irc_client import RawIrcClient
from support.xmpp_client import XmppClient
from test_irc_semantics import (
    NS_CORRECT,
    NS_REACTIONS,
    NS_REPLY,
    NS_RETRACT,
    child,
    correction,
    doing,
    emojis,
    meet,
    reactions,
    reply,
    retraction,
    stanza_id,
)
from test_irc_v3 import GW, ROOM, SERVER, World
from test_irc_v3 import archived_world as archived_world  # the fixture, shared

from transports.irc.protocol import IrcLine, parse_line

pytestmark = pytest.mark.e2e

BOB = f"bob%{SERVER}@{GW}"
CAPS = "echo-message message-tags"


async def line_of(client: RawIrcClient, command: str, target: str, **tags: str) -> IrcLine:
    """The next ``command`` to ``target`` from alice that carries these tags (``_`` → ``/``
    and ``+`` for the keys: ``draft_reply`` is ``+draft/reply``)."""
    wanted = {"+" + key.replace("_", "/"): value for key, value in tags.items()}

    def match(raw: str) -> bool:
        line = parse_line(raw)
        return (
            line.command == command
            and line.param(0) == target
            and line.nick == "alice"
            and all(line.tags.get(k) == v for k, v in wanted.items())
        )

    return parse_line(await client.expect(match))


def msgid_of(raw: str) -> str:
    found = re.search(r"^@(?:\S+;)?msgid=([^; ]+)", raw)
    assert found is not None, raw
    return found[1]


async def bob_in(world: World) -> tuple[RawIrcClient, XmppClient]:
    bob = await world.person("bob", CAPS)
    await meet(bob, world.alice, "#v3", ROOM)
    return bob, world.alice


async def test_room_replies_name_the_msgid_both_ways(archived_world: World) -> None:
    bob, alice = await bob_in(archived_world)
    await bob.privmsg("#v3", "the build is broken")
    target = msgid_of(await bob.expect(r"PRIVMSG #v3 :the build is broken$"))
    line = await alice.expect_message(from_=f"{ROOM}/bob", body="the build is broken")
    assert stanza_id(line) == target
    alice.send_raw(
        reply(ROOM, "r1", target, f"{ROOM}/bob", "the build is broken", "fixed it", "groupchat")
    )
    said = await line_of(bob, "PRIVMSG", "#v3", draft_reply=target)
    assert said.param(1) == "fixed it"  # linked by the tag: no "bob: " in the text
    echo = await alice.expect(doing(f"{ROOM}/alice", NS_REPLY, "reply", target))
    assert echo["id"] == "r1"
    mine = stanza_id(echo)

    # bob answers alice's line from his IRCv3 client: a reply to her message, quoted.
    await bob.send(f"@+draft/reply={mine} PRIVMSG #v3 :thanks")
    answer = await alice.expect(doing(f"{ROOM}/bob", NS_REPLY, "reply", mine))
    assert child(answer, NS_REPLY, "reply") == {"to": f"{ROOM}/alice", "id": mine}
    assert answer["body"] == "> fixed it\nthanks"  # the quote, as an XEP-0428 fallback
    assert child(answer, "urn:xmpp:fallback:0", "fallback") == {"for": NS_REPLY}


async def test_room_reactions_are_tagmsgs_both_ways(archived_world: World) -> None:
    bob, alice = await bob_in(archived_world)
    await bob.privmsg("#v3", "vote: friday?")
    target = msgid_of(await bob.expect(r"PRIVMSG #v3 :vote: friday\?$"))
    await alice.expect_message(from_=f"{ROOM}/bob", body="vote: friday?")
    alice.send_raw(reactions(ROOM, "x1", target, ("👍",), "groupchat"))
    await line_of(bob, "TAGMSG", "#v3", draft_reply=target, draft_react="👍")
    echo = await alice.expect(doing(f"{ROOM}/alice", NS_REACTIONS, "reactions", target))
    assert emojis(echo) == ("👍",)
    alice.send_raw(reactions(ROOM, "x2", target, ("🎉",), "groupchat"))  # 👍 → 🎉
    await line_of(bob, "TAGMSG", "#v3", draft_reply=target, draft_react="🎉")
    await line_of(bob, "TAGMSG", "#v3", draft_reply=target, draft_unreact="👍")
    assert not any(" PRIVMSG #v3 " in raw and "alice" in raw for raw in bob.lines)

    # bob reacts to alice's message: her client gets bob's whole set each time.
    alice.send_message(ROOM, "pizza?", mtype="groupchat")
    mine = msgid_of(await bob.expect(r"PRIVMSG #v3 :pizza\?$"))
    await bob.send(f"@+draft/reply={mine};+draft/react=❤️ TAGMSG #v3")
    got = await alice.expect(doing(f"{ROOM}/bob", NS_REACTIONS, "reactions", mine))
    assert emojis(got) == ("❤️",) and not got["body"]
    await bob.send(f"@+draft/reply={mine};+draft/react=🍕 TAGMSG #v3")
    got = await alice.expect(doing(f"{ROOM}/bob", NS_REACTIONS, "reactions", mine))
    assert emojis(got) == ("❤️", "🍕")
    await bob.send(f"@+draft/reply={mine};+draft/unreact=❤️ TAGMSG #v3")
    got = await alice.expect(doing(f"{ROOM}/bob", NS_REACTIONS, "reactions", mine))
    assert emojis(got) == ("🍕",)
    # A reaction to a line this room never had is not kept, nor shown.
    await bob.send("@+draft/reply=no-such-line;+draft/react=💥 TAGMSG #v3")
    await bob.send(f"@+draft/reply={mine};+draft/react=✅ TAGMSG #v3")
    got = await alice.expect(doing(f"{ROOM}/bob", NS_REACTIONS, "reactions", mine))
    assert emojis(got) == ("🍕", "✅")
    made_up = doing(f"{ROOM}/bob", NS_REACTIONS, "reactions", "no-such-line")
    assert not any(made_up(s) for s in alice.received)


async def test_room_correction_and_retraction_with_echo_message(archived_world: World) -> None:
    bob, alice = await bob_in(archived_world)
    alice.send_raw(
        f"<message type='groupchat' to='{ROOM}' id='c1'><body>see you at 5pm</body></message>"
    )
    await bob.expect(r":alice!\S+ PRIVMSG #v3 :see you at 5pm$")
    first = await alice.expect_message(from_=f"{ROOM}/alice", body="see you at 5pm")
    alice.send_raw(correction(ROOM, "c2", "c1", "see you at 6pm", "groupchat"))
    await bob.expect(r":alice!\S+ PRIVMSG #v3 :see you at 6pm \(edited\)$")
    # The server's echo is what alice's client shows: the correction, with <replace>.
    echo = await alice.expect(doing(f"{ROOM}/alice", NS_CORRECT, "replace", "c1"))
    assert echo["body"] == "see you at 6pm" and echo["id"] == "c2"

    target = stanza_id(first)
    alice.send_raw(retraction(ROOM, "d1", target, "groupchat"))
    said = await line_of(bob, "PRIVMSG", "#v3", draft_reply=target)
    assert said.param(1) == "\x01ACTION retracted their last message\x01"
    await alice.expect(doing(f"{ROOM}/alice", NS_RETRACT, "retract", target))


async def private_start(world: World) -> tuple[RawIrcClient, XmppClient]:
    bob = await world.person("bob", CAPS)
    alice = world.alice
    alice.send_message(BOB, "hello bob")  # opens alice's connection
    await bob.expect(r":alice!\S+ PRIVMSG bob :hello bob$")
    return bob, alice


async def test_private_replies_and_reactions_both_ways(archived_world: World) -> None:
    bob, alice = await private_start(archived_world)
    await bob.privmsg("alice", "are you coming?")
    theirs = msgid_of(await bob.expect(r"PRIVMSG alice :are you coming\?$"))
    got = await alice.expect_message(from_=BOB, body="are you coming?")
    alice.send_raw(reply(BOB, "p1", got["id"], BOB, "are you coming?", "yes", "chat"))
    said = await line_of(bob, "PRIVMSG", "bob", draft_reply=theirs)
    assert said.param(1) == "yes"
    alice.send_raw(reactions(BOB, "p2", got["id"], ("👍",), "chat"))
    await line_of(bob, "TAGMSG", "bob", draft_reply=theirs, draft_react="👍")

    # bob replies to and reacts on alice's "yes", by the msgid its echo gave it.
    mine = msgid_of(next(raw for raw in bob.lines if raw.endswith("PRIVMSG bob :yes")))
    await bob.send(f"@+draft/reply={mine} PRIVMSG alice :great")
    answer = await alice.expect(doing(BOB, NS_REPLY, "reply", "p1"))
    assert answer["body"] == "> yes\ngreat"
    await bob.send(f"@+draft/reply={mine};+draft/react=🎉 TAGMSG alice")
    reacted = await alice.expect(doing(BOB, NS_REACTIONS, "reactions", "p1"))
    assert emojis(reacted) == ("🎉",)

    # A correction, then a retraction of alice's last message, linked to its msgid.
    alice.send_raw(correction(BOB, "p3", "p1", "yes, at 8", "chat"))
    await bob.expect(r":alice!\S+ PRIVMSG bob :yes, at 8 \(edited\)$")
    alice.send_raw(retraction(BOB, "p4", "p1", "chat"))
    said = await line_of(bob, "PRIVMSG", "bob", draft_reply=mine)
    assert said.param(1) == "\x01ACTION retracted their last message\x01"


async def test_a_private_message_is_found_by_its_msgid_after_a_restart(
    archived_world: World,
) -> None:
    bob, alice = await private_start(archived_world)
    await bob.privmsg("alice", "before the restart")
    theirs = msgid_of(await bob.expect(r"PRIVMSG alice :before the restart$"))
    got = await alice.expect_message(from_=BOB, body="before the restart")
    await archived_world.gateway.arestart()
    alice.send_message(BOB, "back again")  # the gateway's new connection
    await bob.expect(r":alice!\S+ PRIVMSG bob :back again$", timeout=30)
    alice.send_raw(reactions(BOB, "z1", got["id"], ("👍",), "chat"))
    await line_of(bob, "TAGMSG", "bob", draft_reply=theirs, draft_react="👍")
    await bob.send(f"@+draft/reply={theirs} PRIVMSG alice :and after it")
    answer = await alice.expect(doing(BOB, NS_REPLY, "reply", got["id"]), timeout=15)
    assert answer["body"] == "> before the restart\nand after it"


async def test_xmpp_typing_to_a_nick_is_a_typing_tagmsg(archived_world: World) -> None:
    """Typing in rooms and from IRC: test_irc_v3.py and test_irc_v3_more.py."""
    bob, alice = await private_start(archived_world)
    alice.send_raw(
        f"<message type='chat' to='{BOB}'>"
        "<composing xmlns='http://jabber.org/protocol/chatstates'/></message>"
    )
    await line_of(bob, "TAGMSG", "bob", typing="active")
    await asyncio.sleep(0.2)
    assert not any(isinstance(s, Message) and s["type"] == "error" for s in alice.received)
