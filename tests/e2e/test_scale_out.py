"""Scaling out: two `portway run` processes, one component on ejabberd, one PostgreSQL database.

ejabberd accepts several connections for one component domain and spreads the stanzas
addressed to it between them (Prosody allows only one). Both processes then take users'
messages into the one shared outbox and both outbox workers claim from it (``FOR UPDATE SKIP
LOCKED``); both serve the hooks' inbound URLs and hand what arrives to XMPP through the one
shared inbound queue. These tests show that each message goes out once, also when one process
is SIGKILLed mid-stream, and that each post comes in once (xfail until the drain's confirming
ping no longer depends on which connection ejabberd hands the answer to).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import time
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from slixmpp import Message
from support.ejabberd import Ejabberd, binaries_present
from support.gateway import GatewayProcess
from support.hook_endpoint import ScriptedEndpoint
from support.xmpp_client import XmppClient

from mappings.store import Store

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

HOOKS = "hooks.example.org"
COMPONENT = {HOOKS: "hooks-component-s3cret"}
ALICE, ALICE_PASSWORD = "alice@example.org", "alice-pw"
#: the outbound hook's secret: it signs the POSTs to the endpoint
BOT_TOKEN = "whsec_c2NhbGUtb3V0LXNlY3JldC1mb3ItdGVzdHM="
BOT = f"bot@{HOOKS}"
#: the inbound hook's bearer token
ALERTS_TOKEN = "scale-out-alerts-token-0123"
ALERTS = f"alerts@{HOOKS}"
#: component/outbox_worker.py LEASE_SECONDS: how long a claimed row belongs to its worker
LEASE_SECONDS = 300.0


class SlowEndpoint(ScriptedEndpoint):
    """The scripted endpoint, answering each POST after ``delay`` seconds (work in flight)."""

    def __init__(self, secret: str, delay: float) -> None:
        super().__init__(secret)
        self.delay = delay

    async def _handle(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.delay)
        return await super()._handle(request)


@dataclass
class World:
    ejabberd: Ejabberd
    gateways: list[GatewayProcess]
    alice: XmppClient
    db: asyncpg.Connection
    database: str
    endpoint: SlowEndpoint


def settings(ejabberd: Ejabberd, database: str, url: str) -> dict[str, Any]:
    """The config both processes share (GatewayProcess adds each one's own `http`)."""
    return {
        "database": database,
        "xmpp": {"host": "127.0.0.1", "port": ejabberd.component_port, "reconnect_max_seconds": 2},
        "allowed_domains": ["example.org"],
        "log_level": "INFO",
        "transports": {
            "webhook": {
                "jid": HOOKS,
                "secret": COMPONENT[HOOKS],
                "request_timeout_seconds": 5,
                "rate_per_minute": 6000,
                "hooks": [
                    {"name": "bot", "owner": ALICE, "token": BOT_TOKEN, "url": url},
                    {"name": "alerts", "owner": ALICE, "token": ALERTS_TOKEN},
                ],
            }
        },
    }


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def ejabberd(tmp_path: Path) -> Iterator[Ejabberd]:
    if not binaries_present():
        pytest.fail(
            "ejabberd is not installed; .ci/run installs it: apt-get install ejabberd",
            pytrace=False,
        )
    server = Ejabberd(tmp_path / "ejabberd", components=COMPONENT)
    server.register("alice", ALICE_PASSWORD)
    server.start()
    print(f"ejabberd started in {server.startup_seconds:.2f}s")
    yield server
    server.stop()


@pytest.fixture
async def database(postgres_url: str) -> AsyncIterator[str]:
    """A database of this test's own on the session's PostgreSQL (the `portway` role may
    create databases), so the rows counted here are this test's only."""
    name = f"scale_out_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield postgres_url.rsplit("/", 1)[0] + "/" + name
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def world(tmp_path: Path, ejabberd: Ejabberd, database: str) -> AsyncIterator[World]:
    endpoint = SlowEndpoint(BOT_TOKEN, delay=0.02)
    await endpoint.up()
    config = settings(ejabberd, database, endpoint.url)
    gateways = [GatewayProcess(tmp_path / f"portway-{n}", config) for n in (1, 2)]
    alice = XmppClient(ALICE, ALICE_PASSWORD, "127.0.0.1", ejabberd.c2s_port)
    db = await asyncpg.connect(database)
    try:
        await asyncio.gather(*(gateway.astart() for gateway in gateways))
        await alice.connect()
        done = await alice.iq(
            f"<iq type='set' to='{HOOKS}'><query xmlns='jabber:iq:register'>"
            "<x xmlns='jabber:x:data' type='submit'/></query></iq>"
        )
        assert done["type"] == "result", done
        yield World(ejabberd, gateways, alice, db, database, endpoint)
    finally:
        await alice.disconnect()
        for gateway in gateways:
            gateway.kill()
        await db.close()
        await endpoint.down()


# -- helpers -----------------------------------------------------------------------------------


def send(client: XmppClient, msg_id: str, body: str) -> None:
    client.send_raw(f"<message to='{BOT}' id='{msg_id}' type='chat'><body>{body}</body></message>")


def metric(gateway: GatewayProcess, name: str, transport: str = "webhook") -> float:
    """One counter of the process's /metrics (0 when not yet incremented)."""
    with urllib.request.urlopen(gateway.base_url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    match = re.search(
        rf'^{re.escape(name)}\{{transport="{transport}"\}} ([0-9.e+]+)$', text, re.MULTILINE
    )
    return float(match.group(1)) if match else 0.0


async def delivered_by(gateways: list[GatewayProcess]) -> list[int]:
    return [
        int(await asyncio.to_thread(metric, gateway, "portway_outbox_delivered_total"))
        for gateway in gateways
    ]


@dataclass(frozen=True)
class Row:
    id: int
    xmpp_id: str
    post_id: str
    state: str
    attempts: int
    lease_until: float | None


async def outbox(db: asyncpg.Connection) -> list[Row]:
    rows = await db.fetch(
        "SELECT id, xmpp_id, payload, state, attempts, lease_until FROM outbox"
        " WHERE transport = 'webhook' ORDER BY id"
    )
    return [
        Row(
            row["id"],
            row["xmpp_id"],
            json.loads(row["payload"])["data"]["post_id"],
            row["state"],
            row["attempts"],
            row["lease_until"],
        )
        for row in rows
    ]


async def until(condition: Any, timeout: float, what: str) -> None:
    """Poll an async condition until it holds."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.1)


def healthy(gateway: GatewayProcess) -> bool:
    status, body = gateway.health()
    return status == 200 and body["components"] == {HOOKS: "connected"}


# -- tests -------------------------------------------------------------------------------------


async def test_both_attach_and_share_the_outbox(world: World) -> None:
    """a. both processes attach to the one component; b. N messages, each POSTed once."""
    gateways, endpoint, db = world.gateways, world.endpoint, world.db
    assert all(healthy(gateway) for gateway in gateways)

    async def two_connections() -> bool:  # ejabberd's log is written a moment later
        handshakes = world.ejabberd.log_text().count(
            f"Accepted external component handshake authentication for {HOOKS}"
        )
        return handshakes >= 2

    await until(two_connections, 10, "ejabberd logs two connections for the component")

    count = 40
    started = time.monotonic()
    for n in range(count):
        send(world.alice, f"out-{n}", f"out {n}")
    received = await endpoint.wait_for(count, timeout=30)
    elapsed = time.monotonic() - started
    await asyncio.sleep(1.0)  # anything sent twice would arrive now

    assert len(endpoint.received) == count
    assert all(request.signature_ok for request in received)
    ids = Counter(request.headers["webhook-id"] for request in endpoint.received)
    assert set(ids.values()) == {1}, f"POSTed more than once: {ids.most_common(3)}"
    bodies = [request.json["body"] for request in endpoint.received]
    assert sorted(bodies) == sorted(f"out {n}" for n in range(count))

    rows = await outbox(db)
    assert len(rows) == count
    assert {row.state for row in rows} == {"delivered"}
    # attempts counts claims: 1 everywhere means no row was ever claimed by both workers.
    assert {row.attempts for row in rows} == {1}
    assert {row.post_id for row in rows} == set(ids)

    per_process = await delivered_by(gateways)
    # Not asserted, but reported: one conversation's order is not kept across processes.
    stored_in_order = [row.xmpp_id for row in rows] == [f"out-{n}" for n in range(count)]
    posted_in_order = bodies == [f"out {n}" for n in range(count)]
    print(
        f"{count} messages POSTed in {elapsed:.2f}s; delivered per process: {per_process}; "
        f"stored in the order sent: {stored_in_order}; POSTed in that order: {posted_in_order}"
    )
    assert sum(per_process) == count
    assert all(share > 0 for share in per_process), (
        f"one process did all the outbox work ({per_process}): ejabberd did not spread the "
        "stanzas, or one worker never claimed"
    )


@pytest.mark.xfail(
    reason="product bug: Host._server_has_processed pings from the bare component domain, and "
    "ejabberd routes the pong to any connection of the component; the drain that sent it waits "
    "15 s, releases its batch, and the batch is delivered again",
    raises=AssertionError,
    strict=False,
)
async def test_posts_to_both_processes_reach_xmpp_once(world: World) -> None:
    """c. posts to /hooks/alerts on both HTTP ports: each reaches the user exactly once."""
    gateways, alice, db = world.gateways, world.alice, world.db
    count = 30
    headers = {"Authorization": f"Bearer {ALERTS_TOKEN}", "Content-Type": "text/plain"}

    async def post(http: aiohttp.ClientSession, gateway: GatewayProcess, n: int) -> int:
        url = f"{gateway.base_url}/hooks/alerts"
        async with http.post(url, data=f"alert {n}", headers=headers) as response:
            return response.status

    # In waves, alternating between the processes, as a busy sender's retries would come: each
    # wave is stored and drained while the one before may still be on its way.
    started = time.monotonic()
    statuses: list[int] = []
    async with aiohttp.ClientSession() as http:
        for wave in range(0, count, 6):
            numbers = range(wave, min(wave + 6, count))
            statuses += await asyncio.gather(*(post(http, gateways[n % 2], n) for n in numbers))
            await asyncio.sleep(0.2)
    assert statuses == [202] * count

    seen: Counter[str] = Counter()

    def from_alerts(stanza: Any) -> bool:
        return (
            isinstance(stanza, Message) and stanza["from"].bare == ALERTS and bool(stanza["body"])
        )

    while len(seen) < count:
        stanza = await alice.expect(from_alerts, timeout=30)
        seen[stanza["body"]] += 1
    elapsed = time.monotonic() - started

    async def undelivered() -> int:
        """Rows queued, or claimed by a drain and not yet confirmed."""
        return int(
            await db.fetchval(
                "SELECT COUNT(*) FROM inbound WHERE transport = 'webhook' AND state <> 'delivered'"
            )
        )

    async def drained() -> bool:
        return await undelivered() == 0

    # Delivered means marked delivered too: a row left queued is sent again at the next
    # drain or reconnect. A drain that sees no answer to its ping waits 15 s: give it 16.
    with contextlib.suppress(AssertionError):
        await until(drained, 16, "every inbound row marked delivered")
    left_queued = await undelivered()
    for stanza in alice.drain():
        if from_alerts(stanza):
            seen[stanza["body"]] += 1
    copies_before_restart = sum(seen.values()) - count
    # A restart reconnects, and the reconnect drains whatever is still queued: nothing may be.
    await gateways[0].astop()
    await gateways[0].astart()
    await asyncio.sleep(2.0)
    for stanza in alice.drain():
        if from_alerts(stanza):
            seen[stanza["body"]] += 1
    no_answer = [
        gateway.log().count("no answer from example.org; keeping the batch queued")
        for gateway in gateways
    ]
    twice = {body: copies for body, copies in sorted(seen.items()) if copies > 1}
    print(
        f"{count} posts reached the user in {elapsed:.2f}s; rows not delivered 16 s later: "
        f"{left_queued}; pings unanswered per process: {no_answer}; "
        f"extra copies before a restart: {copies_before_restart}, after it: "
        f"{sum(seen.values()) - count - copies_before_restart}"
    )
    assert set(seen) == {f"alert {n}" for n in range(count)}
    assert left_queued == 0 and not twice and elapsed < 10, (
        f"{count} posts took {elapsed:.1f}s to reach the user; {left_queued} rows not delivered "
        f"16 s later; pings unanswered per process: {no_answer}; delivered more than once: "
        f"{twice}"
    )


async def test_sigkill_one_process_mid_stream(world: World) -> None:
    """d. SIGKILL one process in the middle of a stream; the other goes on; none sent twice.

    A row the dead process had claimed stays leased to it for LEASE_SECONDS (300 s, fixed in
    component/outbox_worker.py) before any worker may take it again, longer than this test
    should run. So the test checks that exactly those rows are left, still leased, never
    POSTed twice, and that they are what the first claim after the lease takes.
    """
    gateways, alice, db, endpoint = world.gateways, world.alice, world.db, world.endpoint
    victim, survivor = gateways
    endpoint.delay = 0.05  # so the victim has claimed rows in flight when it dies
    sent: list[str] = []

    async def stream(first: int, last: int, interval: float) -> None:
        for n in range(first, last):
            sent.append(f"k{n}")
            send(alice, f"k{n}", f"kill {n}")
            await asyncio.sleep(interval)

    started = time.monotonic()
    sender = asyncio.create_task(stream(0, 40, 0.025))
    await endpoint.wait_for(6, timeout=15)
    before_kill = await delivered_by(gateways)
    victim.kill()
    killed_at = time.time()
    sent_before_kill = len(sent)
    assert healthy(survivor)
    await sender
    await asyncio.sleep(0.5)  # the last stanzas reach the survivor

    def leased_by_the_dead(row: Row) -> bool:
        """Claimed before the kill (a live worker's claim leases until later than this)."""
        return row.state == "sending" and (row.lease_until or 0) <= killed_at + LEASE_SECONDS

    async def settled() -> bool:
        """Every row delivered, but those still leased by the dead process."""
        return all(row.state == "delivered" or leased_by_the_dead(row) for row in await outbox(db))

    await until(settled, 30, "every row delivered or leased by the dead process")
    assert healthy(survivor)
    (survivor_delivered,) = await delivered_by([survivor])

    await victim.astart()
    assert all(healthy(gateway) for gateway in gateways)
    await stream(40, 50, 0.0)

    async def all_stored_and_settled() -> bool:
        stored = {row.xmpp_id for row in await outbox(db)}
        return stored >= set(sent[40:]) and await settled()

    await until(all_stored_and_settled, 30, "the messages sent after the restart delivered")
    await asyncio.sleep(1.0)  # anything POSTed twice would arrive now
    elapsed = time.monotonic() - started

    rows = await outbox(db)
    stored = {row.xmpp_id for row in rows}
    orphans = [row for row in rows if row.state == "sending"]
    ids = Counter(request.headers["webhook-id"] for request in endpoint.received)
    lost = [msg_id for msg_id in sent if msg_id not in stored]
    bounced = [
        stanza["id"]
        for stanza in alice.received
        if isinstance(stanza, Message) and stanza["type"] == "error"
    ]
    print(
        f"{len(sent)} sent in {elapsed:.2f}s, SIGKILL after {sent_before_kill}; delivered per "
        f"process before it: {before_kill}; survivor delivered {survivor_delivered} in all; "
        f"{len(stored)} stored; {len(orphans)} left leased by the dead process "
        f"({sum(1 for row in orphans if row.post_id in ids)} of them POSTed before it died); "
        f"lost in its socket: {lost}; bounced to the sender: {bounced}"
    )
    assert all(request.signature_ok for request in endpoint.received)
    assert set(ids.values()) <= {1}, f"POSTed more than once: {ids.most_common(3)}"
    assert len(rows) == len(stored), "a message was stored twice"
    for row in rows:
        if row.state == "delivered":
            assert ids[row.post_id] == 1, row
        else:  # claimed once, by the dead process, shortly before it died
            assert leased_by_the_dead(row) and row.attempts == 1, row
            assert row.lease_until is not None
            assert row.lease_until - LEASE_SECONDS > killed_at - 5, row
    # The survivor and the restarted process lost nothing. Only stanzas ejabberd had already
    # written to the victim's socket can die with it: XEP-0114 has no acknowledgements.
    assert not [msg_id for msg_id in lost if int(msg_id[1:]) >= sent_before_kill + 5], lost
    assert len(lost) <= 3, lost

    # When the lease runs out, the first claim takes exactly the dead process's rows.
    store = await Store.open(world.database)
    try:
        claimed = await store.outbox.claim(
            "webhook", lease_seconds=LEASE_SECONDS, now=killed_at + LEASE_SECONDS + 1
        )
    finally:
        await store.close()
    assert sorted(item.id for item in claimed) == [row.id for row in orphans]
