"""IRC traffic across an outage of the XMPP server (Prosody SIGKILLed, then started again).

What the IRC side says while Prosody is away waits in the durable inbound queue: room lines,
a topic change, an arrival (a room presence, which carries a nested occupant) and a private
message. After the restart the gateway attaches again by itself and drains the queue.

The queued room events are addressed to the resource alice had when Prosody died; that
session is gone with the server, so the room lines reach her as room history when she comes
back and joins again (the room archive keeps every line), and the topic and the occupants as
the room's state on join. The private message went to her bare JID, so the server keeps it
offline and hands it over at her login. Each exactly once.

Once attached again, the gateway asks each resource it counts in a room for its disco#info;
the server answers for the dead one, which leaves the room, as a MUC service would have it.

She comes back under the resource she had (as clients with a fixed resource do) or under a
new one. The gateway never heard that the old session ended (the server died with it), so
for the same resource her join presence meets a resource it still counts in the room; a
presence carrying the MUC join element is a join all the same (XEP-0045 §7.2; Prosody's own
MUC answers such a rejoin of a desynchronised client with occupants, history and subject).
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from typing import Any

import pytest
from slixmpp import Message
from support.gateway import GatewayProcess
from test_irc_reliability import _set_persistent
from test_irc_rooms import GW, ROOM, USERS, World, is_presence, is_subject, join
from test_irc_rooms import world as world  # the fixture, shared

pytestmark = pytest.mark.e2e

BOB = f"bob%irc.localhost@{GW}"
BEFORE = "said before the outage"
OUTAGE_LINES = [f"said during the outage {n}" for n in range(3)]
OUTAGE_TOPIC = "topic set during the outage"
PRIVATE = "psst alice, sent during the outage"
NS_DELAY = "{urn:xmpp:delay}delay"


def inbound_rows(gateway: GatewayProcess) -> list[tuple[int, str, dict[str, Any]]]:
    """(id, state, event) of every row of the gateway's inbound queue, read-only."""
    uri = f"file:{gateway.workdir / 'portway.db'}?mode=ro"
    with sqlite3.connect(uri, uri=True, timeout=5) as db:
        rows = db.execute("SELECT id, state, event FROM inbound ORDER BY id").fetchall()
    return [(int(id_), str(state), json.loads(event)) for id_, state, event in rows]


def undelivered(gateway: GatewayProcess) -> int:
    """Rows of the inbound queue not yet delivered and confirmed by the XMPP server."""
    uri = f"file:{gateway.workdir / 'portway.db'}?mode=ro"
    with sqlite3.connect(uri, uri=True, timeout=5) as db:
        return int(
            db.execute("SELECT COUNT(*) FROM inbound WHERE state != 'delivered'").fetchone()[0]
        )


async def poll(what: str, check: Any, timeout: float = 10.0) -> Any:
    """Call ``check`` (in a thread) until it returns something truthy; fail at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await asyncio.to_thread(check)
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout}s (last: {last!r})")


def summary(event: dict[str, Any]) -> tuple[Any, ...]:
    """What a queued event says, in a few words (its kind, and what the test checks)."""
    kind, fields = event["kind"], event["fields"]
    if kind == "room-message":
        return (kind, fields["room"], fields["nick"], fields["body"])
    if kind == "room-subject":
        return (kind, fields["room"], fields["nick"], fields["subject"])
    if kind == "room-presence":
        return (kind, fields["room"], fields["occupant"]["nick"], fields["available"])
    if kind == "message":
        return (kind, fields["contact"], fields["body"])
    return (kind,)


def bodies_from(stanzas: list[Any], sender: str) -> list[str]:
    return [
        s["body"]
        for s in stanzas
        if isinstance(s, Message) and s["body"] and str(s["from"]) == sender
    ]


# alice is "laptop" before the outage; she comes back as "laptop" again, or as "phone".
@pytest.mark.parametrize("comeback", ["laptop", "phone"], ids=["same-resource", "new-resource"])
async def test_irc_traffic_survives_an_xmpp_server_outage(world: World, comeback: str) -> None:
    prosody, gateway = world.prosody, world.gateway
    alice = await world.connect_xmpp("alice@example.org/laptop", USERS["alice"], prosody)
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#test")
    await join(alice, ROOM, "alice")
    await bob.expect(r"^:alice!\S+ JOIN :?#test")
    # Bouncer mode: the channel stays joined on IRC whatever becomes of alice's clients.
    await _set_persistent(alice, "#test")
    await bob.privmsg("#test", BEFORE)
    await alice.expect_message(from_=f"{ROOM}/bob", body=BEFORE)
    # Everything sent so far confirmed by the server: what follows is the outage's alone.
    await poll(
        "delivered before the outage",
        lambda: undelivered(gateway) == 0,
    )
    last_before = max((id_ for id_, _, _ in inbound_rows(gateway)), default=0)

    await prosody.akill()
    await alice.wait_disconnected()
    await poll(
        "the gateway sees the outage",
        lambda: gateway.health()[1]["components"][GW] != "connected",
    )

    for line in OUTAGE_LINES:
        await bob.privmsg("#test", line)
    await bob.send(f"TOPIC #test :{OUTAGE_TOPIC}")
    await bob.expect(rf"^:bob!\S+ TOPIC #test :{OUTAGE_TOPIC}$")
    carol = await world.connect_irc(world.ngircd, "carol")
    await carol.join("#test")
    await bob.expect(r"^:carol!\S+ JOIN :?#test")
    await bob.privmsg("alice", PRIVATE)

    def queued() -> list[tuple[str, tuple[Any, ...]]] | None:
        rows = [
            (state, summary(event))
            for id_, state, event in inbound_rows(gateway)
            if id_ > last_before
        ]
        return rows if any(said[-1] == PRIVATE for _, said in rows) else None

    rows = await poll("the outage's events queued", queued)
    room = "#test%irc.localhost"
    assert rows == [
        *[("queued", ("room-message", room, "bob", line)) for line in OUTAGE_LINES],
        ("queued", ("room-subject", room, "bob", OUTAGE_TOPIC)),
        ("queued", ("room-presence", room, "carol", True)),
        ("queued", ("message", "bob%irc.localhost", PRIVATE)),
    ], "what the IRC side said during the outage, queued once each, in order"

    prosody_log_before = prosody.log_path.stat().st_size
    await prosody.astart()
    await gateway.wait_health(attached=True, timeout=20)
    await poll(
        "the inbound queue delivered and confirmed",
        lambda: undelivered(gateway) == 0,
        timeout=15,
    )
    log = gateway.log()
    assert "attached again" in log
    assert "Traceback" not in log
    assert "delivering the inbound queue failed" not in log
    assert "dropping inbound event" not in log
    # The drained stanzas reached the restarted server, the arrival among them.
    with prosody.log_path.open(errors="replace") as handle:
        handle.seek(prosody_log_before)
        prosody_log = handle.read()
    assert f"{ROOM}/carol" in prosody_log, "the queued arrival was not sent to the server"
    # The resource that died with the server is found out and leaves the room (the
    # persistent channel stays joined on IRC).
    await poll(
        "the vanished resource leaves the room",
        lambda: "alice@example.org/laptop is gone from #test%irc.localhost" in gateway.log(),
    )
    assert not [line for line in bob.lines if re.match(r"^:alice!\S+ (PART|QUIT)", line)]

    # alice comes back: the private message waited for her, offline, on her server.
    alice = await world.connect_xmpp(f"alice@example.org/{comeback}", USERS["alice"], prosody)
    await alice.expect_message(from_=BOB, body=PRIVATE)

    # She joins again: the occupants (carol, who came meanwhile), the lines said while she
    # was away as history, and the topic set meanwhile.
    await join(alice, ROOM, "alice")
    await alice.expect(is_presence(f"{ROOM}/carol", "available"))
    await alice.expect(is_presence(f"{ROOM}/bob", "available"))
    subject = [s for s in alice.received if is_subject(ROOM)(s)]
    assert [(s["subject"], str(s["from"])) for s in subject] == [(OUTAGE_TOPIC, f"{ROOM}/bob")]
    history = [
        s for s in alice.received if isinstance(s, Message) and s["body"] and s["from"].bare == ROOM
    ]
    assert [m["body"] for m in history] == [BEFORE, *OUTAGE_LINES], (
        "the room's lines, those said during the outage among them, as history on joining again"
    )
    assert all(m.xml.find(NS_DELAY) is not None for m in history), "history carries its delay"

    # Live, both ways.
    alice.send_message(ROOM, "back on xmpp", mtype="groupchat")
    await bob.expect(r"^:alice!\S+ PRIVMSG #test :back on xmpp$")
    await alice.expect_message(from_=f"{ROOM}/alice", body="back on xmpp")
    await bob.privmsg("#test", "live again")
    live = await alice.expect_message(from_=f"{ROOM}/bob", body="live again")
    assert live.xml.find(NS_DELAY) is None
    await bob.privmsg("alice", "and privately")
    await alice.expect_message(from_=BOB, body="and privately")

    # Anything queued for alice would have come before these last live ones: nothing twice.
    room_bodies = bodies_from(alice.received, f"{ROOM}/bob")
    assert room_bodies == [BEFORE, *OUTAGE_LINES, "live again"]
    assert bodies_from(alice.received, BOB) == [PRIVATE, "and privately"]
    await poll(
        "the inbound queue ends empty",
        lambda: undelivered(gateway) == 0,
    )
    log = gateway.log()
    assert "Traceback" not in log
    assert "delivering the inbound queue failed" not in log
