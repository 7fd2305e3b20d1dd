"""Scaling out: two `portway run` processes, one component on ejabberd, one PostgreSQL database.

ejabberd accepts several connections for one component domain and spreads the stanzas
addressed to it between them (Prosody allows only one). Both processes then take users'
messages into the one shared outbox and both outbox workers claim from it (``FOR UPDATE SKIP
LOCKED``), each claim taking only the oldest open message of each conversation, so that one
conversation's messages go out in order; both serve the hooks' inbound URLs and hand what
arrives to XMPP through the one shared inbound queue. These tests show that each message goes
out once and in its conversation's order, that each post comes in once, and that when one
process is SIGKILLed mid-stream the other delivers what the dead one had claimed as soon as
its lease runs out. That last delivery is at least once, not exactly once: a POST the dead
process made but could not record is made again, with the same webhook-id.

Each process's copy of the config points the hooks at a path of its own on the one endpoint
(``/p1/<hook>``, ``/p2/<hook>``): the gateway reads a config hook's url when it POSTs, so the
path tells which process sent each POST.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import secrets
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import yaml
from aiohttp import web
from slixmpp import Message
from support.ejabberd import Ejabberd, binaries_present
from support.gateway import GatewayProcess
from support.hook_endpoint import Received, ScriptedEndpoint, signature_valid
from support.xmpp_client import XmppClient

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

HOOKS = "hooks.example.org"
COMPONENT = {HOOKS: "hooks-component-s3cret"}
ALICE, ALICE_PASSWORD = "alice@example.org", "alice-pw"
#: the outbound hooks, each a conversation of its own with alice. A conversation has one
#: message in flight at a time, and one claim takes the oldest open message of at most 16
#: conversations (Outbox.claim's limit): with more, one worker cannot hold them all.
BOTS = tuple(f"bot{n}" for n in range(24))
#: the outbound hooks' secret: it signs the POSTs to the endpoint
BOT_TOKEN = "whsec_c2NhbGUtb3V0LXNlY3JldC1mb3ItdGVzdHM="
#: the inbound hook's bearer token
ALERTS_TOKEN = "scale-out-alerts-token-0123"
ALERTS = f"alerts@{HOOKS}"
#: part d: a row a dead process had claimed is claimable again 3 s after the claim; an
#: attempt of a live one ends (answered or timed out) within 2 s, before its lease does
SHORT_LEASE = {"outbox_lease_seconds": 3.0, "request_timeout_seconds": 2.0}


@dataclass(frozen=True)
class Post:
    """One POST as the endpoint saw it."""

    sender: str  # the first segment of the path: which process's config it came from
    hook: str
    webhook_id: str
    body: str  # the user's message
    at: float  # time.time() on arrival
    signature_ok: bool


class Endpoint(ScriptedEndpoint):
    """The hooks' endpoint: records each POST as it arrives, answers 204 after ``delay``.

    Recording before answering is what a receiver that acts on a message does: a sender that
    dies before the answer has delivered the message all the same. ``trap(sender)`` holds the
    answer to the next POST from ``sender`` until ``release()``, so that a test can kill that
    process while it waits for the answer.
    """

    def __init__(self, secret: str, delay: float) -> None:
        super().__init__(secret)
        self.delay = delay
        self.posts: list[Post] = []
        self.trapped: Post | None = None
        self._trap: tuple[str, asyncio.Event] | None = None
        self._released = asyncio.Event()

    def hooks_url(self, sender: str) -> str:
        return f"http://127.0.0.1:{self.port}/{sender}"

    def trap(self, sender: str) -> asyncio.Event:
        """Set when the next POST from ``sender`` has arrived; its answer waits."""
        caught = asyncio.Event()
        self._trap = (sender, caught)
        return caught

    def release(self) -> None:
        self._released.set()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {key.lower(): value for key, value in request.headers.items()}
        ok = signature_valid(self.secret, headers, body, time.time())
        _, sender, hook = request.path.split("/", 2)
        text = json.loads(body)["body"] if ok else ""
        post = Post(sender, hook, headers.get("webhook-id", ""), text, time.time(), ok)
        async with self._arrived:
            self.posts.append(post)
            self.received.append(Received(headers, body, ok, 204 if ok else 401))
            self._arrived.notify_all()
        if not ok:
            return web.Response(status=401, text="bad signature")
        if self._trap is not None and self._trap[0] == sender:
            self.trapped, (_, caught), self._trap = post, self._trap, None
            caught.set()
            await self._released.wait()
        await asyncio.sleep(self.delay)
        return web.Response(status=204)


@dataclass
class World:
    ejabberd: Ejabberd
    gateways: list[GatewayProcess]
    alice: XmppClient
    db: asyncpg.Connection
    database: str
    endpoint: Endpoint
    options: dict[str, Any]

    def point_hooks_at(self, gateway: GatewayProcess, sender: str) -> None:
        """Rewrite a (stopped) process's config so that its POSTs go to ``/<sender>/``."""
        gateway.config.update(
            settings(self.ejabberd, self.database, self.endpoint.hooks_url(sender), self.options)
        )
        gateway.config_path.write_text(yaml.safe_dump(gateway.config))


def settings(
    ejabberd: Ejabberd, database: str, hooks_url: str, options: dict[str, Any]
) -> dict[str, Any]:
    """A process's config (GatewayProcess adds its own `http`); only `hooks_url` differs."""
    bots = [
        {"name": bot, "owner": ALICE, "token": BOT_TOKEN, "url": f"{hooks_url}/{bot}"}
        for bot in BOTS
    ]
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
                "allow_networks": ["127.0.0.0/8"],
                **options,
                "hooks": [*bots, {"name": "alerts", "owner": ALICE, "token": ALERTS_TOKEN}],
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
def webhook_options() -> dict[str, Any]:
    """Settings of the webhook section over `settings`'s; a test parametrizes its own."""
    return {}


@pytest.fixture
async def world(
    tmp_path: Path, ejabberd: Ejabberd, database: str, webhook_options: dict[str, Any]
) -> AsyncIterator[World]:
    endpoint = Endpoint(BOT_TOKEN, delay=0.02)
    await endpoint.up()
    gateways = [
        GatewayProcess(
            tmp_path / f"portway-{n}",
            settings(ejabberd, database, endpoint.hooks_url(f"p{n}"), webhook_options),
        )
        for n in (1, 2)
    ]
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
        yield World(ejabberd, gateways, alice, db, database, endpoint, webhook_options)
    finally:
        endpoint.release()
        await alice.disconnect()
        for gateway in gateways:
            gateway.kill()
        await db.close()
        await endpoint.down()


# -- helpers -----------------------------------------------------------------------------------


def send(client: XmppClient, bot: str, msg_id: str, body: str) -> None:
    client.send_raw(
        f"<message to='{bot}@{HOOKS}' id='{msg_id}' type='chat'><body>{body}</body></message>"
    )


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
    contact: str
    body: str
    post_id: str
    state: str
    attempts: int
    lease_until: float | None
    created_at: float


async def outbox(db: asyncpg.Connection) -> list[Row]:
    """The webhook rows of the outbox, in id order: the order they were stored in."""
    rows = await db.fetch(
        "SELECT id, xmpp_id, contact, payload, state, attempts, lease_until, created_at"
        " FROM outbox"
        " WHERE transport = 'webhook' ORDER BY id"
    )
    result = []
    for row in rows:
        payload = json.loads(row["payload"])
        result.append(
            Row(
                row["id"],
                row["xmpp_id"],
                row["contact"],
                payload["message"]["body"],
                payload["data"]["post_id"],
                row["state"],
                row["attempts"],
                row["lease_until"],
                row["created_at"],
            )
        )
    return result


def stored_per_conversation(rows: list[Row]) -> dict[str, list[Row]]:
    """Per hook, its rows in outbox id order: the order they were stored in."""
    order: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        order[row.contact].append(row)
    return dict(order)


def out_of_order(rows: list[Row], posts: list[Post]) -> dict[str, str]:
    """Conversations whose messages did not reach the endpoint one after the other in the
    order they were stored: every POST of a message (a repeat too) before any of the next's."""
    arrived: dict[str, list[str]] = defaultdict(list)
    for post in posts:
        arrived[post.hook].append(post.webhook_id)
    names = {row.post_id: row.xmpp_id for row in rows}
    wrong = {}
    for hook, stored in stored_per_conversation(rows).items():
        runs = [webhook_id for webhook_id, _ in itertools.groupby(arrived[hook])]
        if runs != [row.post_id for row in stored]:
            first = stored[0].created_at
            when = [
                (row.id, row.xmpp_id, round((row.created_at - first) * 1000, 1)) for row in stored
            ]
            posted = [names.get(webhook_id, webhook_id) for webhook_id in arrived[hook]]
            wrong[hook] = f"stored (id, msg, ms after the first): {when}; POSTed: {posted}"
    return wrong


#: what `out_of_order` finds, rarely (a few runs in a hundred, more on a loaded machine), when
#: two messages of one conversation are stored at nearly the same time
async def until(condition: Any, timeout: float, what: str) -> None:
    """Poll an async condition until it holds."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.1)


def number(msg_id: str) -> int:
    """``out-12`` -> 12, ``k7`` -> 7: where a message came in the stream alice sent."""
    return int(re.sub(r"\D", "", msg_id))


def healthy(gateway: GatewayProcess) -> bool:
    status, body = gateway.health()
    return status == 200 and body["components"] == {HOOKS: "connected"}


# -- tests -------------------------------------------------------------------------------------


async def test_both_attach_and_share_the_outbox(world: World) -> None:
    """a. both processes attach to the one component; b. messages to several hooks, each
    POSTed once, both processes doing part of the work, each conversation in stored order."""
    gateways, endpoint, db = world.gateways, world.endpoint, world.db
    assert all(healthy(gateway) for gateway in gateways)

    async def two_connections() -> bool:  # ejabberd's log is written a moment later
        handshakes = world.ejabberd.log_text().count(
            f"Accepted external component handshake authentication for {HOOKS}"
        )
        return handshakes >= 2

    await until(two_connections, 10, "ejabberd logs two connections for the component")

    count = 3 * len(BOTS)
    started = time.monotonic()
    for n in range(count):
        send(world.alice, BOTS[n % len(BOTS)], f"out-{n}", f"out {n}")
    await endpoint.wait_for(count, timeout=30)
    elapsed = time.monotonic() - started
    await asyncio.sleep(1.0)  # anything sent twice would arrive now

    posts = endpoint.posts
    assert len(posts) == count
    assert all(post.signature_ok for post in posts)
    ids = Counter(post.webhook_id for post in posts)
    assert set(ids.values()) == {1}, f"POSTed more than once: {ids.most_common(3)}"
    assert sorted(post.body for post in posts) == sorted(f"out {n}" for n in range(count))

    rows = await outbox(db)
    assert len(rows) == count
    assert {row.state for row in rows} == {"delivered"}
    # attempts counts claims: 1 everywhere means no row was ever claimed by both workers.
    assert {row.attempts for row in rows} == {1}
    assert {row.post_id for row in rows} == set(ids)
    by_id = {row.post_id: row for row in rows}
    assert all(
        (post.hook, post.body) == (by_id[post.webhook_id].contact, by_id[post.webhook_id].body)
        for post in posts
    )
    assert sorted(stored_per_conversation(rows)) == sorted(BOTS)

    per_process = await delivered_by(gateways)
    by_path = Counter(post.sender for post in posts)
    # Not asserted, but reported: ejabberd hands each stanza to either connection, so the
    # stored order of one conversation can differ from the order alice sent it in.
    stored_as_sent = sum(
        [row.xmpp_id for row in stored] == sorted((row.xmpp_id for row in stored), key=number)
        for stored in stored_per_conversation(rows).values()
    )
    wrong_order = out_of_order(rows, posts)
    print(
        f"{count} messages to {len(BOTS)} hooks POSTed in {elapsed:.2f}s; delivered per "
        f"process: {per_process} (POSTs per path: {dict(sorted(by_path.items()))}); "
        f"conversations stored in the order sent: {stored_as_sent}/{len(BOTS)}; "
        f"POSTed out of the stored order: {len(wrong_order)} {wrong_order or ''}"
    )
    assert sum(per_process) == count
    assert [by_path["p1"], by_path["p2"]] == per_process
    assert all(share > 0 for share in per_process), (
        f"one process did all the outbox work ({per_process}): ejabberd did not spread the "
        "stanzas, or one worker never claimed"
    )
    # Within each conversation, the endpoint got the messages in the order they were stored.
    assert not wrong_order, wrong_order


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
        gateway.log().count("no answer from example.org; the batch will be sent again")
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


@pytest.mark.parametrize("webhook_options", [SHORT_LEASE], ids=["lease-3s"])
async def test_sigkill_one_process_mid_stream(world: World) -> None:
    """d. SIGKILL one process while it waits for a POST's answer, in the middle of a stream.

    What the dead process had claimed is leased to it for ``outbox_lease_seconds`` (3 s here);
    then the survivor takes it and POSTs it. The delivery is at least once: a row the dead
    process POSTed but could not mark delivered reaches the endpoint again, with the same
    webhook-id (on which receivers deduplicate). Everything else is POSTed exactly once.
    """
    gateways, alice, db, endpoint = world.gateways, world.alice, world.db, world.endpoint
    lease = SHORT_LEASE["outbox_lease_seconds"]
    victim, survivor = gateways  # their POSTs come to /p1/ and /p2/; the restarted one's to /p3/
    endpoint.delay = 0.05  # so the victim has claimed rows in flight when it dies
    sent: dict[str, float] = {}  # message id: when alice sent it

    async def stream(first: int, last: int, interval: float) -> None:
        for n in range(first, last):
            sent[f"k{n}"] = time.time()
            send(alice, BOTS[n % len(BOTS)], f"k{n}", f"kill {n}")
            await asyncio.sleep(interval)

    started = time.monotonic()
    sender = asyncio.create_task(stream(0, 48, 0.025))
    await endpoint.wait_for(6, timeout=15)
    caught = endpoint.trap("p1")
    await asyncio.wait_for(caught.wait(), 10)
    victim.kill()  # while the endpoint holds the answer to that POST
    killed_at = time.time()
    sent_before_kill = len(sent)
    # The dead process's rows stay as they are now until their lease runs out.
    at_kill = {row.id: row for row in await outbox(db) if row.state == "sending"}
    endpoint.release()
    assert healthy(survivor)
    await sender
    await asyncio.sleep(0.5)  # the last stanzas reach the survivor

    async def all_delivered() -> bool:
        return {row.state for row in await outbox(db)} == {"delivered"}

    await until(all_delivered, lease + 15, "every row delivered by the survivor")
    recovered_in = time.time() - killed_at
    assert healthy(survivor)
    (survivor_delivered,) = await delivered_by([survivor])

    world.point_hooks_at(victim, "p3")
    await victim.astart()
    assert all(healthy(gateway) for gateway in gateways)
    await stream(48, 60, 0.0)

    async def all_stored_and_delivered() -> bool:
        stored = {row.xmpp_id for row in await outbox(db)}
        return stored >= {f"k{n}" for n in range(48, 60)} and await all_delivered()

    await until(all_stored_and_delivered, 30, "the messages sent after the restart delivered")
    await asyncio.sleep(1.0)  # anything POSTed twice would arrive now
    elapsed = time.monotonic() - started

    rows = await outbox(db)
    posts = endpoint.posts
    posts_of: dict[str, list[Post]] = defaultdict(list)
    for post in posts:
        posts_of[post.webhook_id].append(post)

    def claimed_by_the_dead(row: Row) -> bool:
        """Leased at the kill, and POSTed by the victim or by no one while that lease ran (a
        live process's attempt ends within request_timeout_seconds, before its lease)."""
        before = at_kill.get(row.id)
        if before is None or before.lease_until is None:
            return False
        return any(post.sender == "p1" for post in posts_of[row.post_id]) or not any(
            post.at < before.lease_until for post in posts_of[row.post_id]
        )

    dead = [row for row in rows if claimed_by_the_dead(row)]
    dead_ids = {row.post_id for row in dead}
    held_behind = {
        row.id: [later for later in rows if later.contact == row.contact and later.id > row.id]
        for row in dead
    }
    twice = {
        row.xmpp_id: [post.sender for post in posts_of[row.post_id]]
        for row in rows
        if len(posts_of[row.post_id]) > 1
    }
    stored = {row.xmpp_id for row in rows}
    lost = [msg_id for msg_id in sent if msg_id not in stored]
    bounced = [
        stanza["id"]
        for stanza in alice.received
        if isinstance(stanza, Message) and stanza["type"] == "error"
    ]
    wrong_order = out_of_order(rows, posts)
    print(
        f"{len(sent)} sent in {elapsed:.2f}s, SIGKILL after {sent_before_kill}; "
        f"{len(dead)} rows leased to the dead process "
        f"({sum(1 for row in dead if any(p.sender == 'p1' for p in posts_of[row.post_id]))} of "
        f"them POSTed before it died; {sum(map(len, held_behind.values()))} messages queued "
        f"behind them), all delivered by the survivor {recovered_in:.2f}s after "
        f"the kill; POSTed twice: {twice}; survivor delivered {survivor_delivered} before the "
        f"restart; POSTs per process: {dict(sorted(Counter(p.sender for p in posts).items()))}; "
        f"lost in the dead one's socket: {lost}; bounced to the sender: {bounced}; "
        f"conversations POSTed out of the stored order: {len(wrong_order)} {wrong_order or ''}"
    )

    assert all(post.signature_ok for post in posts)
    assert len(rows) == len(stored), "a message was stored twice"
    assert {row.state for row in rows} == {"delivered"}, "a row was left behind"
    assert set(posts_of) == {row.post_id for row in rows}, "a POST of no stored message"
    for row in rows:
        # Every stored message reached the endpoint, and each time as the same message.
        assert posts_of[row.post_id], f"never POSTed: {row}"
        assert {(post.hook, post.body) for post in posts_of[row.post_id]} == {
            (row.contact, row.body)
        }, row

    # The dead process's claims: delivered by the survivor, after the lease ran out, by one
    # more claim; the one whose answer it never got was POSTed again, with the same id.
    assert endpoint.trapped is not None
    assert endpoint.trapped.webhook_id in dead_ids
    assert len(posts_of[endpoint.trapped.webhook_id]) == 2, endpoint.trapped
    for row in dead:
        before = at_kill[row.id]
        assert before.lease_until is not None
        again = [post for post in posts_of[row.post_id] if post.sender != "p1"]
        assert [post.sender for post in again] == ["p2"], (row, posts_of[row.post_id])
        assert again[0].at > before.lease_until, ("POSTed before the lease ran out", row)
        assert before.lease_until - lease < killed_at, row
        assert row.attempts == before.attempts + 1, row
        # Its conversation waited for it: nothing behind it went out before its repeat.
        for later in held_behind[row.id]:
            assert posts_of[later.post_id][0].at > again[0].at, (row, later)
    # Only those may have been POSTed twice: a row claimed by a live process went out once.
    assert set(twice) <= {row.xmpp_id for row in dead}, twice
    assert all(len(posts_of[row.post_id]) == 1 for row in rows if row.post_id not in dead_ids)

    # The survivor and the restarted process lost nothing. Only stanzas ejabberd had handed
    # to the victim's connection can die with it (XEP-0114 has no acknowledgements): sent
    # shortly before the kill, or in the moment ejabberd takes to drop the dead connection.
    assert not [msg_id for msg_id in lost if sent[msg_id] > killed_at + 0.1], lost
    assert not [msg_id for msg_id in lost if sent[msg_id] < killed_at - 1.0], lost

    # Each conversation went out in its stored order, a dead process's row and its repeat
    # before anything behind it.
    assert not wrong_order, wrong_order
