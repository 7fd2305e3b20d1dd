"""The XMPP side of IRC rooms as clients and biboumi's suite expect it, against a real
Prosody, a real ngIRCd and `portway run`: history limits, self-ping, versions, disco,
invitations to a bare nick, stanza ids, and rooms closed with 332 on SIGTERM.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from slixmpp import Iq, Message, Presence
from slixmpp.xmlstream import StanzaBase
from support.xmpp_client import XmppClient
from test_irc_rooms import GW, ROOM, World, is_presence, is_subject, status_codes
from test_irc_rooms import world as world  # the fixture, shared

pytestmark = pytest.mark.e2e

STANZAS = "{urn:ietf:params:xml:ns:xmpp-stanzas}"
MUC_USER = "{http://jabber.org/protocol/muc#user}"
DISCO_INFO = "http://jabber.org/protocol/disco#info"


def join_with(client: XmppClient, nick: str, history: str = "") -> None:
    client.send_raw(
        f"<presence to='{ROOM}/{nick}'><x xmlns='http://jabber.org/protocol/muc'>{history}</x>"
        "</presence>"
    )


async def joined(client: XmppClient, nick: str, history: str = "") -> list[str]:
    """Join; the bodies of the history sent before the subject."""
    client.drain()  # what came before (an earlier join's history) is not this join's
    join_with(client, nick, history)
    await client.expect(is_presence(f"{ROOM}/{nick}", code="110"), timeout=15)
    bodies: list[str] = []

    def history_or_subject(stanza: StanzaBase) -> bool:
        delayed = stanza.xml.find("{urn:xmpp:delay}delay") is not None
        if isinstance(stanza, Message) and stanza["from"].bare == ROOM and delayed:
            bodies.append(stanza["body"])
        return is_subject(ROOM)(stanza)

    await client.expect(history_or_subject)
    return bodies


async def leave(client: XmppClient, nick: str) -> None:
    client.send_raw(f"<presence to='{ROOM}/{nick}' type='unavailable'/>")
    await client.expect(is_presence(f"{ROOM}/{nick}", "unavailable"))


def condition(reply: StanzaBase) -> str:
    error = reply.xml.find("{jabber:client}error")
    assert error is not None, str(reply)
    names = [c.tag for c in error if c.tag.startswith(STANZAS) and not c.tag.endswith("}text")]
    return names[0].rpartition("}")[2]


async def test_history_limits_on_join(world: World) -> None:
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#test")
    alice = world.alice
    await joined(alice, "alice")
    for n in (1, 2):
        await bob.privmsg("#test", f"old {n}")
        await alice.expect_message(from_=f"{ROOM}/bob", body=f"old {n}")
    await asyncio.sleep(2.2)
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for n in (3, 4):
        await bob.privmsg("#test", f"new {n}")
        await alice.expect_message(from_=f"{ROOM}/bob", body=f"new {n}")
    await leave(alice, "alice")

    assert await joined(alice, "alice", "<history maxchars='0'/>") == []
    await leave(alice, "alice")
    assert await joined(alice, "alice", "<history seconds='0'/>") == []
    await leave(alice, "alice")
    assert await joined(alice, "alice", "<history maxstanzas='3'/>") == ["old 2", "new 3", "new 4"]
    await leave(alice, "alice")
    assert await joined(alice, "alice", f"<history since='{since}'/>") == ["new 3", "new 4"]
    await leave(alice, "alice")
    assert await joined(alice, "alice", "<history seconds='2'/>") == ["new 3", "new 4"]
    await leave(alice, "alice")
    assert await joined(alice, "alice", "<history seconds='600'/>") == [
        "old 1",
        "old 2",
        "new 3",
        "new 4",
    ]


async def test_self_ping_tells_a_resource_that_dropped_out(world: World) -> None:
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#test")
    alice = world.alice
    ping = f"<iq type='get' to='{ROOM}/alice'><ping xmlns='urn:xmpp:ping'/></iq>"
    out = await alice.iq(ping)
    assert out["type"] == "error" and condition(out) == "not-acceptable"
    await joined(alice, "alice")
    assert (await alice.iq(ping))["type"] == "result"
    phone = await world.connect_xmpp("alice@example.org/phone", "alice-pw", world.prosody)
    assert condition(await phone.iq(ping)) == "not-acceptable"
    await leave(alice, "alice")
    assert condition(await alice.iq(ping)) == "not-acceptable"


async def test_versions_come_from_the_irc_user_and_portway_only_from_the_gateway(
    world: World,
) -> None:
    alice = world.alice
    query = "<query xmlns='jabber:iq:version'/>"
    own = await alice.iq(f"<iq type='get' to='{GW}'>{query}</iq>")
    assert own["type"] == "result" and own["software_version"]["name"] == "Portway"
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#test")
    await joined(alice, "alice")
    for to in (f"{ROOM}/bob", f"bob%irc.localhost@{GW}"):
        asking = asyncio.ensure_future(alice.iq(f"<iq type='get' to='{to}'>{query}</iq>"))
        await bob.expect(r"^:alice!\S+ PRIVMSG bob :\x01VERSION\x01$", timeout=15)
        await bob.send("NOTICE alice :\x01VERSION irssi v1.4.3 - running on Linux\x01")
        reply = await asking
        assert reply["type"] == "result", str(reply)
        # As biboumi: the whole CTCP reply is the name, not split.
        assert reply["software_version"]["name"] == "irssi v1.4.3 - running on Linux", to
        assert reply["software_version"]["version"] == "", to
    room = await alice.iq(f"<iq type='get' to='{ROOM}'>{query}</iq>")
    assert room["type"] == "error" and "Portway" not in str(room)


async def test_disco_says_conference_and_rooms_list_ping_version_commands(world: World) -> None:
    alice = world.alice
    info = await alice.iq(f"<iq type='get' to='{GW}'><query xmlns='{DISCO_INFO}'/></iq>")
    identities = {(i[0], i[1]) for i in info["disco_info"]["identities"]}
    assert {("gateway", "irc"), ("conference", "irc")} <= identities
    room = await alice.iq(f"<iq type='get' to='{ROOM}'><query xmlns='{DISCO_INFO}'/></iq>")
    features = set(room["disco_info"]["features"])
    assert {"urn:xmpp:ping", "jabber:iq:version", "http://jabber.org/protocol/commands"} <= features
    traffic = await alice.iq(
        f"<iq type='get' to='{ROOM}'><query xmlns='{DISCO_INFO}'"
        " node='http://jabber.org/protocol/muc#traffic'/></iq>"
    )
    assert traffic["type"] == "result"
    assert traffic["disco_info"]["node"] == "http://jabber.org/protocol/muc#traffic"
    assert not traffic["disco_info"]["features"]


async def test_an_invitation_to_a_bare_nick(world: World) -> None:
    bob = await world.connect_irc(world.ngircd, "bob")
    alice = world.alice
    await joined(alice, "alice")
    alice.send_raw(
        f"<message to='{ROOM}' id='inv1'><x xmlns='http://jabber.org/protocol/muc#user'>"
        "<invite to='bob'/></x></message>"
    )
    await bob.expect(r"^:alice!\S+ INVITE bob :?#test$", timeout=15)


async def test_the_echo_keeps_a_stanza_id_of_another_entity(world: World) -> None:
    alice = world.alice
    await joined(alice, "alice")
    alice.send_raw(
        f"<message to='{ROOM}' type='groupchat' id='m1'><body>coucou</body>"
        "<origin-id xmlns='urn:xmpp:sid:0' id='client-origin-id'/>"
        f"<stanza-id xmlns='urn:xmpp:sid:0' id='forged' by='{ROOM}'/>"
        "<stanza-id xmlns='urn:xmpp:sid:0' id='kept' by='someother@example.org'/>"
        "</message>"
    )
    echo = await alice.expect_message(from_=f"{ROOM}/alice", body="coucou")
    ids = {(s.get("id"), s.get("by")) for s in echo.xml.iter("{urn:xmpp:sid:0}stanza-id")}
    assert ("kept", "someother@example.org") in ids
    assert not any(stanza_id == "forged" for stanza_id, _ in ids)
    assert any(by == ROOM for _, by in ids)  # the room's own archive id


async def test_sigterm_closes_each_joined_room_with_332(world: World) -> None:
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#test")
    alice = world.alice
    alice.send_raw(f"<presence to='{GW}'/>")  # online to the gateway: told when it goes
    await alice.expect(lambda s: isinstance(s, Presence) and str(s["from"]) == GW)
    await joined(alice, "alice")
    await asyncio.sleep(0.3)
    alice.drain()  # the join's own stanzas
    await world.gateway.astop()
    closed = await alice.expect(is_presence(f"{ROOM}/alice", "unavailable", "332"), timeout=15)
    assert {"110", "332"} <= status_codes(closed)
    await alice.expect(
        lambda s: isinstance(s, Presence) and str(s["from"]) == GW and s["type"] == "unavailable"
    )
    # After the 332, nothing more from the room about its occupants (IRC's quit, say).
    await asyncio.sleep(0.5)
    later = [
        s
        for s in alice.drain()
        if isinstance(s, Presence) and s["from"].bare == ROOM and s is not closed
    ]
    assert later == [], [str(s) for s in later]
    assert not any(isinstance(s, Iq) for s in later)


def admin_set(item: str) -> str:
    return (
        f"<iq type='set' to='{ROOM}'><query xmlns='http://jabber.org/protocol/muc#admin'>"
        f"{item}</query></iq>"
    )


async def test_moderation_from_the_room_becomes_kick_and_modes(world: World) -> None:
    alice = world.alice
    await joined(alice, "alice")  # first in: a channel operator
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#test")
    await alice.expect(is_presence(f"{ROOM}/bob"))
    voiced = await alice.iq(admin_set("<item nick='bob' role='moderator'/>"))
    assert voiced["type"] == "result", str(voiced)
    await bob.expect(r"^:alice!\S+ MODE #test \+o bob", timeout=15)
    kicked = await alice.iq(
        admin_set("<item nick='bob' role='none'><reason>behave</reason></item>")
    )
    assert kicked["type"] == "result", str(kicked)
    await bob.expect(r"^:alice!\S+ KICK #test bob :behave$", timeout=15)
    bad = await alice.iq(admin_set("<item nick='bob' role='king'/>"))
    assert bad["type"] == "error" and condition(bad) == "bad-request"


async def test_moderation_refused_by_irc_is_the_iq_error(world: World) -> None:
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#test")  # bob is the operator; alice is not
    alice = world.alice
    await joined(alice, "alice")
    refused = await alice.iq(admin_set("<item nick='bob' role='none'/>"), timeout=20)
    assert refused["type"] == "error", str(refused)
    assert condition(refused) in ("not-allowed", "forbidden")  # the issue allows either


async def test_the_channel_list_is_paged(world: World) -> None:
    bob = await world.connect_irc(world.ngircd, "bob")
    for channel in ("#one", "#two", "#three"):
        await bob.join(channel)
    alice = world.alice
    await joined(alice, "alice")
    server = f"irc.localhost@{GW}"
    rsm = "http://jabber.org/protocol/rsm"
    items_ns = "{http://jabber.org/protocol/disco#items}"
    seen: list[tuple[str, str]] = []
    after = ""
    counts: set[str] = set()
    for _page in range(10):
        place = f"<after>{after}</after>" if after else ""
        reply = await alice.iq(
            f"<iq type='get' to='{server}'><query xmlns='http://jabber.org/protocol/disco#items'>"
            f"<set xmlns='{rsm}'><max>2</max>{place}</set></query></iq>",
            timeout=20,
        )
        assert reply["type"] == "result", str(reply)
        items = reply.xml.findall(f".//{items_ns}item")
        assert len(items) <= 2
        counts.add(reply.xml.findtext(f".//{{{rsm}}}count") or "")
        if not items:
            break
        seen += [(item.get("jid", ""), item.get("name", "")) for item in items]
        after = reply.xml.findtext(f".//{{{rsm}}}last") or ""
    jids = [jid for jid, _ in seen]
    assert len(jids) == len(set(jids))  # no page repeats another
    assert counts == {str(len(jids))}  # one list for the whole session
    wanted = {f"{name}%irc.localhost@{GW}" for name in ("#one", "#two", "#three", "#test")}
    assert wanted <= set(jids)
    assert any(name.startswith("#test (") for _, name in seen), seen


async def test_real_jids_nick_assigned_and_kicks_with_actor_and_reason(world: World) -> None:
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#test")
    alice = world.alice
    join_with(alice, "bob")  # taken: IRC gives another nick
    own = await alice.expect(
        lambda s: isinstance(s, Presence) and s["from"].bare == ROOM and "110" in status_codes(s),
        timeout=15,
    )
    assert {"100", "110", "210"} <= status_codes(own)
    nick = own["from"].resource
    assert nick != "bob"
    # The room is non-anonymous (100): every occupant has a real JID, the nick's contact.
    real = await alice.expect(is_presence(f"{ROOM}/bob"))
    jid = real.xml.find(f"{MUC_USER}x/{MUC_USER}item").get("jid", "")  # type: ignore[union-attr]
    assert jid.startswith(f"bob%irc.localhost@{GW}"), str(real)
    await alice.expect(is_subject(ROOM))

    await bob.send(f"KICK #test {nick} :behave")
    kicked = await alice.expect(is_presence(f"{ROOM}/{nick}", "unavailable", "307"))
    item = kicked.xml.find(f"{MUC_USER}x/{MUC_USER}item")
    assert item is not None
    actor = item.find(f"{MUC_USER}actor")
    assert actor is not None and actor.get("nick") == "bob"
    assert item.findtext(f"{MUC_USER}reason") == "behave"
