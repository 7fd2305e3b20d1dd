"""The refusal reasons of ``portway_inbound_rejected_total`` that tests/e2e/test_metrics.py
does not provoke: a hook post that cannot be read (400) or is of a type hooks do not take
(415), an SMTP client over the session cap (421), and an event of the inbound queue that
cannot be rendered.

Each is provoked as it happens in the field, against the real gateway, and read back from
/metrics. "unrenderable" has no outside cause: what the queue holds was built by the gateway
itself, so only a row it cannot read (left by another version of Portway sharing the
database, or a damaged file) or a bug makes one. It is provoked here with such a row.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from e2e.test_metrics import sample
from support.fixture_types import ConnectXmpp, MakeProsody
from support.gateway import GatewayProcess
from support.mail_world import (
    ALICE,
    JULIET_JID,
    MAIL,
    SECRET,
    email_gateway,
    plain_mail,
    send_mail,
)
from support.ports import free_port
from support.prosody import Prosody
from support.smtp_sink import SmtpSink
from support.xmpp_client import XmppClient

from transports.email.smtp_admission import SMTP_LIMITS

pytestmark = pytest.mark.e2e

HOOKS = "hooks.example.org"
HOOKS_SECRET = "hooks-component-s3cret"
TOKEN = "alerts-token-0123456789"


@dataclass
class World:
    prosody: Prosody
    gateway: GatewayProcess
    alice: XmppClient
    smtp_port: int

    def rejected(self, transport: str, reason: str) -> float | None:
        return sample(
            self.gateway, "portway_inbound_rejected_total", transport=transport, reason=reason
        )


@pytest.fixture
async def world(
    tmp_path: Path, make_prosody: MakeProsody, xmpp_client: ConnectXmpp
) -> AsyncIterator[World]:
    prosody = make_prosody(
        components={MAIL: SECRET, HOOKS: HOOKS_SECRET}, users={"alice": "alice-pw"}
    )
    smtp_port = free_port()
    async with SmtpSink() as sink:
        gateway = email_gateway(tmp_path / "gateway", prosody, smtp_port, sink.port)
        hook = {"name": "alerts", "owner": ALICE, "token": TOKEN, "deliver_to": [ALICE]}
        gateway.config["transports"]["webhook"] = {
            "jid": HOOKS,
            "secret": HOOKS_SECRET,
            "hooks": [hook],
        }
        gateway.config_path.write_text(yaml.safe_dump(gateway.config))
        bound = gateway.cli("mappings", "add", "email", ALICE, "alice")
        assert bound.returncode == 0, bound.stderr
        await gateway.astart()
        alice = await xmpp_client(ALICE, "alice-pw", prosody)
        try:
            yield World(prosody, gateway, alice, smtp_port)
        finally:
            gateway.stop()


def post(gateway: GatewayProcess, body: bytes, content_type: str, **headers: str) -> int:
    request = urllib.request.Request(
        f"{gateway.base_url}/hooks/alerts",
        data=body,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": content_type, **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


async def test_unreadable_and_unsupported_hook_posts_are_counted(world: World) -> None:
    gateway = world.gateway
    # 400: a JSON body that is no object, a form without text, an over-long webhook-id.
    assert post(gateway, b"[1, 2]", "application/json") == 400
    assert post(gateway, b"{not json", "application/json") == 400
    assert post(gateway, b"title=no+text", "application/x-www-form-urlencoded") == 400
    assert post(gateway, b"hi", "text/plain", **{"webhook-id": "x" * 201}) == 400
    # 415: a type hooks do not read.
    assert post(gateway, b"\x89PNG\r\n", "image/png") == 415
    assert post(gateway, b"<a>hi</a>", "application/xml") == 415
    assert world.rejected("webhook", "bad-request") == 4
    assert world.rejected("webhook", "unsupported-type") == 2
    # A good post is not counted, and arrives.
    assert post(gateway, b"all good", "text/plain") == 202
    await world.alice.expect_message(from_=f"alerts@{HOOKS}", body="all good")
    assert world.rejected("webhook", "bad-request") == 4


async def greeting(port: int) -> tuple[asyncio.StreamWriter, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    return writer, await asyncio.wait_for(reader.readline(), 10)


async def test_smtp_sessions_over_the_cap_are_counted(world: World) -> None:
    held = []
    for _ in range(SMTP_LIMITS.sessions_per_client):
        writer, line = await greeting(world.smtp_port)
        assert line.startswith(b"220 "), line
        held.append(writer)
    for _ in range(2):
        writer, line = await greeting(world.smtp_port)
        assert line.startswith(b"421 4.3.2 "), line
        writer.close()
    assert world.rejected("email", "too-many-sessions") == 2
    for writer in held:
        writer.close()
        await writer.wait_closed()
    # Once the sessions are gone, mail comes in again, uncounted.
    reply = await send_mail(world.smtp_port, plain_mail("Back.", "<back@capulet.lit>"))
    assert reply.startswith("2"), reply
    await world.alice.expect_message(from_=JULIET_JID, body="Back.")
    assert world.rejected("email", "too-many-sessions") == 2


async def test_a_queued_event_that_cannot_be_rendered_is_dropped_counted_and_passed(
    world: World,
) -> None:
    gateway = world.gateway
    gateway.stop()
    # Rows as a newer Portway sharing the database might leave them, waiting for delivery.
    now = time.time()
    with sqlite3.connect(gateway.workdir / "portway.db") as db:
        for event in ({"kind": "from-the-future", "fields": {}}, {"kind": "message"}):
            db.execute(
                "INSERT INTO inbound (transport, user_jid, event, state, created_at)"
                " VALUES ('email', ?, ?, 'queued', ?)",
                (ALICE, json.dumps(event), now),
            )
    await gateway.astart()
    # The queue is not stuck behind them: mail after them arrives.
    reply = await send_mail(world.smtp_port, plain_mail("After.", "<after@capulet.lit>"))
    assert reply.startswith("2"), reply
    await world.alice.expect_message(from_=JULIET_JID, body="After.", timeout=20)
    assert world.rejected("email", "unrenderable") == 2
    assert "dropping inbound event" in gateway.log()
