"""Once means once, for the client too: a storm of webhook posts through crashes.

2,000 signed posts go to one hook from 8 concurrent senders, at a steady pace, while the
gateway is SIGKILLed at about a quarter and three quarters of them and Prosody at half. The
senders behave as Standard Webhooks senders do: a post whose answer was lost is posted again
with the same webhook-id until the gateway answers 202, or 409 (it held the post already).

Then every message the user can get is collected: live, from offline storage after the
client logs in again, and from the archive (MAM), which is where messages in flight when
Prosody died are. The test holds the README's two promises: nothing accepted is lost, and a
message sent again after a crash or a reconnect carries the same ``id``, origin-id and
stanza-id as the first time, so that clients and archives can drop the copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from support.fixture_types import ConnectXmpp, MakeProsody
from support.gateway import GatewayProcess
from support.mam import ArchiveReader
from support.prosody import Prosody
from support.received_copies import Ledger, copy_of
from support.webhook_sender import WebhookSender
from support.xmpp_client import XmppClient

pytestmark = pytest.mark.e2e

POSTS = 2000
POSTERS = 8
#: posts per second: the storm lasts about 20 s, so each fault lands in the middle of it
RATE = 100.0
COMPONENT = {"hooks.example.org": "hooks-component-s3cret"}
USER, PASSWORD = "alice@example.org", "alice-pw"
HOOK = "storm"
SENDER = f"{HOOK}@hooks.example.org"
TOKEN = "storm-token-0123456789"
#: seconds Prosody is paused before each crash of the gateway
SERVER_PAUSE = 0.5
#: how long, after the last post, everything accepted may take to reach the user
DELIVERY_TIMEOUT = 90.0
#: no new copy for this long after all arrived: the gateway has nothing more to send
QUIET_SECONDS = 3.0


def settings(prosody: Prosody) -> dict[str, Any]:
    return {
        "xmpp": {"host": "127.0.0.1", "port": prosody.component_port, "reconnect_max_seconds": 2},
        "allowed_domains": ["example.org"],
        "transports": {
            "webhook": {
                "jid": "hooks.example.org",
                "secret": COMPONENT["hooks.example.org"],
                "hooks": [
                    {"name": HOOK, "owner": USER, "token": TOKEN, "rate_per_minute": 1_000_000}
                ],
            }
        },
    }


def body_of(n: int) -> str:
    return f"storm post {n:04d}"


def post_id_of(n: int) -> str:
    return f"msg_storm_{n:04d}"


class User:
    """Alice across her logins: one client per login, every stanza any of them received."""

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect
        self.clients: list[XmppClient] = []
        self.archive = ArchiveReader()

    async def log_in(self) -> None:
        self.clients.append(await self._connect())

    async def drop(self) -> None:
        """The server died under the client: close it, so it does not log in on its own."""
        await self.clients[-1].disconnect()

    def ledger(self) -> Ledger:
        ledger = Ledger()
        for client in self.clients:
            ledger.add(
                copy
                for stanza in list(client.received)
                if stanza.name == "message"
                and (copy := copy_of(stanza.xml, sender=SENDER, user=USER)) is not None
            )
        return ledger

    async def catch_up(self) -> None:
        await self.archive.catch_up(self.clients[-1])


async def until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {timeout}s")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def paused(prosody: Prosody) -> AsyncIterator[None]:
    """Prosody stops reading for SERVER_PAUSE, as a busy server does: what the gateway sends
    meanwhile stays unconfirmed, so a crash inside this block lands on sends in flight."""
    pid = prosody.pid
    assert pid is not None, "Prosody is not running"
    os.kill(pid, signal.SIGSTOP)
    try:
        await asyncio.sleep(SERVER_PAUSE)
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


async def faults(
    gateway: GatewayProcess, prosody: Prosody, user: User, accepted: Callable[[], int]
) -> list[str]:
    """Crash the gateway, then Prosody, then the gateway again, as the posts go past the
    quarter marks; each comes back on the same database, data and ports.

    Each crash lands while Prosody holds unconfirmed sends. A crashed gateway's sends are
    then read by Prosody from the dead stream and reach the user, and the restarted gateway
    sends them again: copies, whose ids this test checks. A crashed Prosody never read its
    share: only the gateway's sending again keeps them from being lost.
    """
    timeline = []

    async def crash_gateway() -> None:
        async with paused(prosody):
            await asyncio.to_thread(gateway.kill)
        timeline.append(f"gateway SIGKILLed at {accepted()} accepted")
        await gateway.astart(timeout=30)

    await until(lambda: accepted() >= POSTS // 4)
    await crash_gateway()
    await until(lambda: accepted() >= POSTS // 2)
    async with paused(prosody):
        await prosody.akill()
    timeline.append(f"Prosody SIGKILLed at {accepted()} accepted")
    await user.drop()
    await prosody.astart()
    await gateway.wait_health(attached=True, timeout=30)
    await user.log_in()
    await until(lambda: accepted() >= 3 * POSTS // 4)
    await crash_gateway()
    return timeline


async def storm(sender: WebhookSender, deadline: float) -> None:
    """POSTERS senders share the posts; post n is due at start + n / RATE."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    numbers = iter(range(POSTS))

    async def poster() -> None:
        for n in numbers:
            await asyncio.sleep(max(0.0, start + n / RATE - loop.time()))
            await sender.send(post_id_of(n), body_of(n), deadline)

    await asyncio.gather(*(poster() for _ in range(POSTERS)))


async def collect(user: User, expected: set[str]) -> Ledger:
    """Wait until every expected body reached the user (live, offline or archive), then
    until no copy has come for QUIET_SECONDS, then read the archive a last time."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while expected - user.ledger().delivered(expected) and time.monotonic() < deadline:
        await asyncio.sleep(1)
        await user.catch_up()
    count, quiet_since = -1, time.monotonic()
    while time.monotonic() - quiet_since < QUIET_SECONDS and time.monotonic() < deadline:
        now = sum(len(copies) for copies in user.ledger().by_body.values())
        if now != count:
            count, quiet_since = now, time.monotonic()
        await asyncio.sleep(0.5)
        await user.catch_up()
    return user.ledger()


def queue_rows(gateway: GatewayProcess, post_ids: list[str]) -> str:
    """Where the gateway's queue says each missing post is, for a failure message."""
    try:
        with sqlite3.connect(gateway.workdir / "portway.db") as db:
            rows = db.execute(
                "SELECT dedup_key, state, confirm_id FROM inbound WHERE dedup_key LIKE ?",
                (f"{HOOK}|msg_storm_%",),
            ).fetchall()
    except sqlite3.Error as error:
        return f"(queue unreadable: {error})"
    wanted = {f"{HOOK}|{post_id}|{USER}" for post_id in post_ids}
    return "\n".join(str(row) for row in rows if row[0] in wanted) or "(not in the queue)"


async def test_webhook_storm_through_crashes_loses_nothing_and_keeps_ids(
    tmp_path: Path, make_prosody: MakeProsody, xmpp_client: ConnectXmpp
) -> None:
    prosody = make_prosody(
        components=COMPONENT,
        users={"alice": PASSWORD},
        # One archive page can then hold a whole phase of the storm.
        extra_config="max_archive_query_results = 500",
    )
    gateway = GatewayProcess(tmp_path / "gateway", settings(prosody))
    await gateway.astart()
    user = User(lambda: xmpp_client(USER, PASSWORD, prosody))
    await user.log_in()
    try:
        async with aiohttp.ClientSession() as http:
            sender = WebhookSender(http, f"{gateway.base_url}/hooks/{HOOK}", TOKEN)
            started = time.monotonic()
            crashes = asyncio.create_task(
                faults(gateway, prosody, user, lambda: len(sender.log.accepted))
            )
            try:
                await storm(sender, deadline=started + 90)
                timeline = await asyncio.wait_for(crashes, 60)
            finally:
                crashes.cancel()
        posted_in = time.monotonic() - started
        accepted = sender.log.accepted
        expected = {body_of(n) for n in range(POSTS) if post_id_of(n) in accepted}
        ledger = await collect(user, expected)
    finally:
        gateway.stop()

    delivered = ledger.delivered(expected)
    lost = sorted(expected - delivered)
    unexpected = sorted(set(ledger.by_body) - expected)
    figures = {
        "sent": POSTS,
        "accepted": len(accepted),
        "delivered": len(delivered),
        "copies": ledger.extra_copies(),
        "lost": len(lost),
    }
    print(f"\nwebhook storm: {figures}")
    print(f"  posted in {posted_in:.1f}s; {'; '.join(timeline)}")
    print(f"  answers over all attempts: {dict(sender.log.answers)}")
    print(f"  stanzas by source (repeats included): {ledger.seen}")
    quarters = [
        sum(max(0, len(ledger.copies_of(body_of(n))) - 1) for n in range(q, q + POSTS // 4))
        for q in range(0, POSTS, POSTS // 4)
    ]
    print(f"  copies by quarter of the posts: {quarters}")
    mismatched, missing = ledger.mismatched_ids(), ledger.missing_ids()
    print(f"  copies with other ids than the first: {len(mismatched)}")
    print(f"  posts without an id, origin-id or stanza-id: {len(missing)}")

    assert not sender.log.refused, f"valid posts refused for good: {sender.log.refused}"
    assert len(timeline) == 3, timeline
    assert not lost, (
        f"{len(lost)} accepted posts never reached the user (live, offline or archive): "
        f"{lost[:20]}\nthe gateway's queue:\n"
        f"{queue_rows(gateway, [post_id_of(int(b.split()[-1])) for b in lost[:20]])}"
    )
    assert not unexpected, f"received posts that were never accepted: {unexpected[:20]}"
    assert not mismatched, (
        f"{len(mismatched)} copies sent again with new ids, which a client shows twice:\n"
        + "\n".join(mismatched[:20])
    )
    assert not missing, (
        f"{len(missing)} posts lack an id a client or archive can drop a copy by:\n"
        + "\n".join(missing[:20])
    )
    # Without a copy the id checks above prove nothing: the pause before each crash of the
    # gateway is there to catch sends unconfirmed, and the restarted gateway sends them again.
    assert figures["copies"] > 0, "no send was caught unconfirmed by a crash; nothing shown"
