"""Invitations both ways, against a real Prosody, a real ngIRCd and `portway run`.

XMPP → IRC: a mediated invitation (XEP-0045 §7.8.2, to the room) and a direct one (XEP-0249,
to the contact) both become ``INVITE nick #chan``. IRC → XMPP: an INVITE becomes a mediated
invitation from the room, whose ``<invite from>`` is ``room/inviter`` (biboumi's form). Bad
invitations get error stanzas, whether the gateway refuses them at once or the IRC server
later."""

from __future__ import annotations

import re

import pytest
from slixmpp import Message
from slixmpp.xmlstream import StanzaBase
from support.xmpp_client import XmppClient
from test_irc_rooms import GW, ROOM, World, join
from test_irc_rooms import world as world  # the fixture, shared

pytestmark = pytest.mark.e2e

MUC_USER = "http://jabber.org/protocol/muc#user"
CONFERENCE = "jabber:x:conference"
SERVER_JID = f"irc.localhost@{GW}"


def mediated(room: str, invitee: str, msg_id: str, body: str = "") -> str:
    text = f"<body>{body}</body>" if body else ""
    return (
        f"<message to='{room}' id='{msg_id}'>{text}<x xmlns='{MUC_USER}'>"
        f"<invite to='{invitee}'><reason>come along</reason></invite></x></message>"
    )


def direct(contact: str, room: str, msg_id: str) -> str:
    return (
        f"<message to='{contact}' id='{msg_id}'>"
        f"<x xmlns='{CONFERENCE}' jid='{room}' reason='come along'/></message>"
    )


async def error_for(client: XmppClient, msg_id: str) -> Message:
    """The error stanza answering the message sent with ``msg_id``."""

    def match(stanza: StanzaBase) -> bool:
        return isinstance(stanza, Message) and stanza["type"] == "error" and stanza["id"] == msg_id

    found = await client.expect(match)
    assert isinstance(found, Message)
    return found


async def test_xmpp_user_invites_irc_users(world: World) -> None:
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#test")
    carol = await world.connect_irc(world.ngircd, "carol")
    dave = await world.connect_irc(world.ngircd, "dave")
    alice = world.alice
    await join(alice, ROOM, "alice")

    # Mediated: to the room, naming the contact.
    alice.send_raw(mediated(ROOM, f"carol%irc.localhost@{GW}", "inv1"))
    await carol.expect(r"^:alice!\S+ INVITE carol :?#test$")
    # The server's 341 confirms it, in the room.
    await alice.expect_message(from_=ROOM, body="carol has been invited to #test")

    # Direct (XEP-0249): to the contact, naming the room.
    alice.send_raw(direct(f"dave%irc.localhost@{GW}", ROOM, "inv2"))
    await dave.expect(r"^:alice!\S+ INVITE dave :?#test$")
    await alice.expect_message(from_=ROOM, body="dave has been invited to #test")

    # A mediated invitation with a fallback body is one INVITE, and no message to the room.
    alice.send_raw(mediated(ROOM, f"carol%irc.localhost@{GW}", "inv3", body="join us"))
    await carol.expect(r"^:alice!\S+ INVITE carol :?#test$")
    await alice.expect_message(from_=ROOM, body="carol has been invited to #test")
    await bob.send("PING :sync")
    await bob.expect("PONG")
    assert sum(1 for line in carol.lines if " INVITE carol " in line) == 2
    assert not [line for line in bob.lines if "join us" in line]
    assert not [s for s in alice.received if isinstance(s, Message) and s["type"] == "error"]

    # The invitee takes it: carol joins, and alice sees her come in.
    await carol.join("#test")
    await alice.expect_presence(from_=f"{ROOM}/carol")


async def test_the_gateway_refuses_bad_invitations(world: World) -> None:
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#test")
    alice = world.alice
    await join(alice, ROOM, "alice")

    cases = {
        # (how it is sent, its id) → the error condition
        "xmpp-user": (mediated(ROOM, "juliet@example.org", "b1"), "feature-not-implemented"),
        "other-server": (
            mediated(ROOM, f"bob%irc.elsewhere.example@{GW}", "b2"),
            "not-acceptable",
        ),
        "bad-nick": (mediated(ROOM, f"-bob%irc.localhost@{GW}", "b3"), "jid-malformed"),
        "no-one": (mediated(ROOM, "", "b4"), "jid-malformed"),
        "a-channel": (mediated(ROOM, f"#other%irc.localhost@{GW}", "b5"), "not-acceptable"),
        "not-in-room": (
            mediated(f"#elsewhere%irc.localhost@{GW}", f"bob%irc.localhost@{GW}", "b6"),
            "not-acceptable",
        ),
        "direct-not-in-room": (
            direct(f"bob%irc.localhost@{GW}", f"#elsewhere%irc.localhost@{GW}", "b7"),
            "not-acceptable",
        ),
        "direct-foreign-room": (
            direct(f"bob%irc.localhost@{GW}", "room@conference.example.org", "b8"),
            "not-acceptable",
        ),
        "direct-bad-room": (
            direct(f"bob%irc.localhost@{GW}", f"#bad,room%irc.localhost@{GW}", "b9"),
            "jid-malformed",
        ),
        "direct-other-server": (
            direct(f"bob%irc.elsewhere.example@{GW}", ROOM, "b10"),
            "not-acceptable",
        ),
        "direct-to-server": (direct(SERVER_JID, ROOM, "b11"), "not-acceptable"),
    }
    for stanza, _ in cases.values():
        alice.send_raw(stanza)
    for name, (stanza, condition) in cases.items():
        msg_id = re.search(r" id='([^']+)'", stanza)
        assert msg_id is not None
        error = await error_for(alice, msg_id.group(1))
        assert error["error"]["condition"] == condition, (name, error)
        assert error["error"]["text"], name
    await bob.send("PING :sync")
    await bob.expect("PONG")
    assert not [line for line in bob.lines if " INVITE " in line]

    # The IRC server refuses too: no such nick (401), then an invite-only channel where
    # alice is no operator (482). Each error answers the invitation's id.
    alice.send_raw(mediated(ROOM, f"ghost%irc.localhost@{GW}", "late1"))
    error = await error_for(alice, "late1")
    assert error["error"]["condition"] == "item-not-found"
    assert "ghost" in error["error"]["text"]
    assert str(error["from"]) == ROOM
    await bob.send("MODE #test +i")
    await bob.expect(r"^:bob!\S+ MODE #test :?\+i")
    carol = await world.connect_irc(world.ngircd, "carol")
    alice.send_raw(direct(f"carol%irc.localhost@{GW}", ROOM, "late2"))
    error = await error_for(alice, "late2")
    assert error["error"]["condition"] == "forbidden"
    assert str(error["from"]) == f"carol%irc.localhost@{GW}"
    assert not [line for line in carol.lines if " INVITE " in line]


async def test_irc_user_invites_the_xmpp_user(world: World) -> None:
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#secret")
    await bob.send("MODE #secret +i")
    alice = world.alice
    # alice is on the server (in another room), so she can be invited.
    lobby = f"#lobby%irc.localhost@{GW}"
    await join(alice, lobby, "alice")

    await bob.send("INVITE alice #secret")
    room = f"#secret%irc.localhost@{GW}"

    def is_invitation(stanza: StanzaBase) -> bool:
        return (
            isinstance(stanza, Message)
            and str(stanza["from"]) == room
            and stanza.xml.find(f"{{{MUC_USER}}}x/{{{MUC_USER}}}invite") is not None
        )

    invitation = await alice.expect(is_invitation)
    invite = invitation.xml.find(f"{{{MUC_USER}}}x/{{{MUC_USER}}}invite")
    assert invite is not None
    assert invite.get("from") == f"{room}/bob"  # room/inviter, as biboumi writes it
    assert invitation["type"] in ("normal", "")
    assert "bob invites you to #secret" in invitation["body"]
    # Mediated only: no direct invitation besides.
    assert invitation.xml.find(f"{{{CONFERENCE}}}x") is None

    # Accepting it is joining the room: the invite-only channel lets alice in.
    await join(alice, room, "alice")
    await bob.expect(r"^:alice!\S+ JOIN :?#secret")


async def test_disco_advertises_direct_invitations(world: World) -> None:
    alice = world.alice

    async def features(jid: str) -> set[str]:
        query = "<query xmlns='http://jabber.org/protocol/disco#info'/>"
        reply = await alice.iq(f"<iq type='get' to='{jid}'>{query}</iq>")
        assert reply["type"] == "result", reply
        return set(reply["disco_info"]["features"])

    assert CONFERENCE in await features(GW)
    assert CONFERENCE in await features(f"bob%irc.localhost@{GW}")
    assert CONFERENCE not in await features(SERVER_JID)
    assert CONFERENCE not in await features(ROOM)
