"""Services posting into XMPP through hooks, against a real Prosody and the real gateway."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from support.fixture_types import ConnectXmpp, MakeProsody
from support.gateway import GatewayProcess
from support.hook_endpoint import alertmanager_payload, grafana_payload
from support.prosody import Prosody
from support.xmpp_client import XmppClient

from transports.webhook.signing import signature_headers

pytestmark = pytest.mark.e2e

COMPONENT = {"hooks.example.org": "hooks-component-s3cret"}
USERS = {"alice": "alice-pw", "bob": "bob-pw"}
TOKEN = "alerts-token-0123456789"
ROOM = "ops@conference.example.org"


def settings(prosody: Prosody, **webhook: Any) -> dict[str, Any]:
    section = {
        "jid": "hooks.example.org",
        "secret": COMPONENT["hooks.example.org"],
        "max_body_bytes": 2048,
        "hooks": [
            {"name": "alerts", "owner": "alice@example.org", "token": TOKEN},
            {
                "name": "opsroom",
                "owner": "alice@example.org",
                "token": TOKEN,
                "rooms": [ROOM],
                "nick": "Ops Bot",
            },
            {"name": "noisy", "owner": "alice@example.org", "token": TOKEN, "rate_per_minute": 2},
        ],
    }
    section.update(webhook)
    return {
        "xmpp": {"host": "127.0.0.1", "port": prosody.component_port, "reconnect_max_seconds": 2},
        "allowed_domains": ["example.org"],
        "transports": {"webhook": section},
    }


@pytest.fixture
async def world(tmp_path: Path, make_prosody: MakeProsody, xmpp_client: ConnectXmpp) -> Any:
    prosody = make_prosody(components=COMPONENT, users=USERS)
    gateway = GatewayProcess(tmp_path / "gateway", settings(prosody))
    await gateway.astart()
    alice = await xmpp_client("alice@example.org", "alice-pw", prosody)
    async with aiohttp.ClientSession(gateway.base_url) as http:
        yield prosody, gateway, alice, http
    gateway.stop()


async def post(
    http: aiohttp.ClientSession, hook: str, body: bytes | str, headers: dict[str, str]
) -> tuple[int, dict[str, Any], dict[str, str]]:
    data = body.encode() if isinstance(body, str) else body
    async with http.post(f"/hooks/{hook}", data=data, headers=headers) as response:
        return response.status, await response.json(), dict(response.headers)


def bearer(content_type: str = "text/plain", token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": content_type}


async def nothing_more_from(client: XmppClient, jid: str, seconds: float = 1.0) -> None:
    await asyncio.sleep(seconds)
    extra = [
        s for s in client.drain() if s.name == "message" and s["from"].bare == jid and s["body"]
    ]
    assert not extra, f"unexpected messages: {[s['body'] for s in extra]}"


async def test_bearer_signature_stale_replay_and_no_secret(world: Any) -> None:
    _prosody, _gateway, alice, http = world
    status, answer, _ = await post(http, "alerts", "deploy finished", bearer())
    assert status == 202 and answer["id"]
    await alice.expect_message(from_="alerts@hooks.example.org", body="deploy finished")

    body = json.dumps({"text": "signed hello"}).encode()
    signed = {
        **signature_headers(TOKEN, "msg_2Xy", int(time.time()), body),
        "Content-Type": "application/json",
    }
    status, answer, _ = await post(http, "alerts", body, signed)
    assert (status, answer["id"]) == (202, "msg_2Xy")
    await alice.expect_message(from_="alerts@hooks.example.org", body="signed hello")

    status, answer, _ = await post(http, "alerts", body, signed)  # replayed
    assert status == 409, answer
    stale = {
        **signature_headers(TOKEN, "msg_old", int(time.time()) - 6 * 60, body),
        "Content-Type": "application/json",
    }
    status, answer, _ = await post(http, "alerts", body, stale)
    assert status == 401 and "5 minutes" in answer["error"]
    for headers in ({"Content-Type": "text/plain"}, bearer(token="wrong-token")):
        status, _, response_headers = await post(http, "alerts", "let me in", headers)
        assert status == 401
        assert response_headers["WWW-Authenticate"].startswith("Bearer")
    await nothing_more_from(alice, "alerts@hooks.example.org")


async def test_slack_alertmanager_and_grafana_payloads(world: Any) -> None:
    _prosody, _gateway, alice, http = world
    slack = {"text": "CI <https://ci.local/7|build 7> passed &amp; deployed", "username": "ci"}
    alerts = alertmanager_payload(
        ("firing", "HighCPU", "CPU above 90%"), ("resolved", "DiskFull", "/var is 99% full")
    )
    grafana = grafana_payload("firing", "Latency", "B=2.3")
    for payload in (slack, alerts, grafana):
        status, _, _ = await post(http, "alerts", json.dumps(payload), bearer("application/json"))
        assert status == 202
    await alice.expect_message(
        from_="alerts@hooks.example.org",
        body="CI build 7 (https://ci.local/7) passed & deployed",
    )
    await alice.expect_message(
        from_="alerts@hooks.example.org",
        body="[FIRING] HighCPU on db1:9100: CPU above 90%\n"
        "[RESOLVED] DiskFull on db1:9100: /var is 99% full",
    )
    await alice.expect_message(from_="alerts@hooks.example.org", body="[FIRING] Latency: B=2.3")
    status, _, _ = await post(
        http, "alerts", "text=from+a+form", bearer("application/x-www-form-urlencoded")
    )
    assert status == 202
    await alice.expect_message(from_="alerts@hooks.example.org", body="from a form")
    status, answer, _ = await post(http, "alerts", "{broken", bearer("application/json"))
    assert status == 400 and "JSON" in answer["error"]


async def test_oversize_and_rate_limit(world: Any) -> None:
    _prosody, _gateway, alice, http = world
    status, answer, _ = await post(http, "alerts", "x" * 2049, bearer())
    assert status == 413, answer
    statuses = [(await post(http, "noisy", f"n{n}", bearer()))[0] for n in range(2)]
    assert statuses == [202, 202]
    status, answer, headers = await post(http, "noisy", "one too many", bearer())
    assert status == 429
    assert 1 <= int(headers["Retry-After"]) <= 30
    for n in range(2):
        await alice.expect_message(from_="noisy@hooks.example.org", body=f"n{n}")
    await nothing_more_from(alice, "noisy@hooks.example.org")
    await nothing_more_from(alice, "alerts@hooks.example.org", 0)


async def test_posts_into_a_muc_room(world: Any, xmpp_client: ConnectXmpp) -> None:
    prosody, _gateway, _alice, http = world
    bob = await xmpp_client("bob@example.org", "bob-pw", prosody)
    await bob.xmpp.plugin["xep_0045"].join_muc_wait(ROOM, "bob", maxchars=0, timeout=10)
    status, _, _ = await post(http, "opsroom", "backup done", bearer())
    assert status == 202
    message = await bob.expect_message(
        from_=f"{ROOM}/Ops Bot", body="backup done", type_="groupchat"
    )
    assert message["type"] == "groupchat"
    # The hook stays in the room: a second post needs no new join, and is not doubled.
    status, _, _ = await post(http, "opsroom", "second", bearer())
    await bob.expect_message(from_=f"{ROOM}/Ops Bot", body="second")
    await nothing_more_from(bob, ROOM)


async def command(client: XmppClient, node: str, fields: dict[str, str]) -> str:
    """Run an ad-hoc command on the gateway: execute, submit the form, return the note."""
    first = await client.iq(
        "<iq type='set' to='hooks.example.org'><command xmlns='http://jabber.org/protocol/commands'"
        f" node='{node}' action='execute'/></iq>"
    )
    assert first["type"] == "result", first
    if first["command"]["status"] == "completed":  # it only shows: no form to submit
        assert not fields, f"{node} asked for nothing, yet fields were given"
        return "\n".join(text for _kind, text in first["command"]["notes"])
    session = first["command"]["sessionid"]
    values = "".join(
        f"<field var='{var}'><value>{value}</value></field>" for var, value in fields.items()
    )
    done = await client.iq(
        "<iq type='set' to='hooks.example.org'><command xmlns='http://jabber.org/protocol/commands'"
        f" node='{node}' sessionid='{session}'><x xmlns='jabber:x:data' type='submit'>{values}"
        "</x></command></iq>"
    )
    assert done["type"] == "result", done
    return "\n".join(text for _kind, text in done["command"]["notes"])


async def test_adhoc_create_and_rotate(world: Any) -> None:
    _prosody, _gateway, alice, http = world
    registered = await alice.iq(
        "<iq type='set' to='hooks.example.org'><query xmlns='jabber:iq:register'>"
        "<x xmlns='jabber:x:data' type='submit'/></query></iq>"
    )
    assert registered["type"] == "result", registered
    note = await command(alice, "webhook-create", {"name": "deploys"})
    assert "/hooks/deploys" in note
    secret = note.split("Secret: ")[1].split()[0]
    status, _, _ = await post(http, "deploys", "v1.2 is out", bearer(token=secret))
    assert status == 202
    await alice.expect_message(from_="deploys@hooks.example.org", body="v1.2 is out")

    listing = await command(alice, "webhook-list", {})
    assert "deploys@hooks.example.org" in listing and secret not in listing
    note = await command(alice, "webhook-rotate", {"name": "deploys"})
    new_secret = note.split("deploys@hooks.example.org: ")[1].split()[0]
    assert new_secret != secret
    assert (await post(http, "deploys", "old secret", bearer(token=secret)))[0] == 401
    assert (await post(http, "deploys", "new secret", bearer(token=new_secret)))[0] == 202
    await alice.expect_message(from_="deploys@hooks.example.org", body="new secret")
    await nothing_more_from(alice, "deploys@hooks.example.org")
