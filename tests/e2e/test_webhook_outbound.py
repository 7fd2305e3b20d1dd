"""Users' messages to hooks as signed POSTs: replies, retries, errors, presence, restarts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from slixmpp import Message
from support.fixture_types import ConnectXmpp, MakeProsody
from support.gateway import GatewayProcess
from support.hook_endpoint import Reply, ScriptedEndpoint
from support.prosody import Prosody
from support.xmpp_client import XmppClient

pytestmark = pytest.mark.e2e

COMPONENT = {"hooks.example.org": "hooks-component-s3cret"}
USERS = {"alice": "alice-pw", "bob": "bob-pw", "eve": "eve-pw"}
TOKEN = "whsec_Ym90LXNlY3JldC1mb3ItdGVzdHMtMDE="
BOT = "bot@hooks.example.org"


def settings(prosody: Prosody, url: str) -> dict[str, Any]:
    return {
        "xmpp": {"host": "127.0.0.1", "port": prosody.component_port, "reconnect_max_seconds": 2},
        "allowed_domains": ["example.org"],
        "transports": {
            "webhook": {
                "jid": "hooks.example.org",
                "secret": COMPONENT["hooks.example.org"],
                "request_timeout_seconds": 3,
                "allow_networks": ["127.0.0.0/8"],  # the endpoint is on loopback
                "hooks": [
                    {
                        "name": "bot",
                        "owner": "alice@example.org",
                        "token": TOKEN,
                        "url": url,
                        "deliver_to": ["alice@example.org", "bob@example.org"],
                    },
                ],
            }
        },
    }


@pytest.fixture
async def endpoint() -> AsyncIterator[ScriptedEndpoint]:
    server = ScriptedEndpoint(TOKEN)
    await server.up()
    yield server
    await server.down()


@pytest.fixture
async def world(
    tmp_path: Path, make_prosody: MakeProsody, xmpp_client: ConnectXmpp, endpoint: ScriptedEndpoint
) -> AsyncIterator[tuple[Prosody, GatewayProcess, XmppClient]]:
    prosody = make_prosody(components=COMPONENT, users=USERS)
    gateway = GatewayProcess(tmp_path / "gateway", settings(prosody, endpoint.url))
    await gateway.astart()
    alice = await xmpp_client("alice@example.org", "alice-pw", prosody)
    await register(alice)
    yield prosody, gateway, alice
    gateway.kill()


async def register(client: XmppClient) -> None:
    done = await client.iq(
        "<iq type='set' to='hooks.example.org'><query xmlns='jabber:iq:register'>"
        "<x xmlns='jabber:x:data' type='submit'/></query></iq>"
    )
    assert done["type"] == "result", done


def send_with_receipt(client: XmppClient, body: str) -> str:
    msg_id = uuid.uuid4().hex
    client.send_raw(
        f"<message to='{BOT}' id='{msg_id}' type='chat'><body>{body}</body>"
        "<request xmlns='urn:xmpp:receipts'/></message>"
    )
    return msg_id


async def expect_receipt(client: XmppClient, msg_id: str, timeout: float = 10) -> None:
    def is_receipt(stanza: Any) -> bool:
        return isinstance(stanza, Message) and stanza["receipt"] == msg_id

    await client.expect(is_receipt, timeout)


async def expect_error(client: XmppClient, msg_id: str, timeout: float = 10) -> Message:
    def is_error(stanza: Any) -> bool:
        return isinstance(stanza, Message) and stanza["type"] == "error" and stanza["id"] == msg_id

    found = await client.expect(is_error, timeout)
    assert isinstance(found, Message)
    return found


async def test_signed_post_reply_and_receipt(world: Any, endpoint: ScriptedEndpoint) -> None:
    _prosody, _gateway, alice = world
    endpoint.then(Reply(200, "It is sunny.", "text/plain"))
    msg_id = send_with_receipt(alice, "weather?")
    (request,) = await endpoint.wait_for(1)
    assert request.signature_ok
    assert request.json["body"] == "weather?"
    assert request.json["to"] == BOT
    assert request.json["from"].startswith("alice@example.org/")
    await expect_receipt(alice, msg_id)
    await alice.expect_message(from_=BOT, body="It is sunny.")


async def test_only_owner_and_targets_may_send(
    world: Any, endpoint: ScriptedEndpoint, xmpp_client: ConnectXmpp
) -> None:
    prosody, _gateway, _alice = world
    eve = await xmpp_client("eve@example.org", "eve-pw", prosody)
    await register(eve)
    eve.send_raw(f"<message to='{BOT}' id='e1' type='chat'><body>hi</body></message>")
    error = await expect_error(eve, "e1")
    assert error["error"]["condition"] == "forbidden"
    bob = await xmpp_client("bob@example.org", "bob-pw", prosody)
    await register(bob)
    msg_id = send_with_receipt(bob, "from a target")
    await expect_receipt(bob, msg_id)
    assert [r.json["body"] for r in endpoint.received] == ["from a target"]


async def test_endpoint_down_then_up_delivers_exactly_once(
    world: Any, endpoint: ScriptedEndpoint
) -> None:
    _prosody, _gateway, alice = world
    alice.send_raw(f"<presence to='{BOT}'/>")  # so the hook's presence reaches us
    await endpoint.down()
    msg_id = send_with_receipt(alice, "while you were out")
    failing = await alice.expect_presence(from_=BOT)
    while failing["show"] != "xa":
        failing = await alice.expect_presence(from_=BOT)
    assert "connection refused" in failing["status"]
    endpoint.then(Reply(503, headers={"Retry-After": "1"}))
    await endpoint.up()
    await expect_receipt(alice, msg_id, timeout=20)
    received = await endpoint.wait_for(2)
    assert [r.status for r in received] == [503, 204]
    assert received[0].headers["webhook-id"] == received[1].headers["webhook-id"]
    back = await alice.expect_presence(from_=BOT)
    while back["show"]:
        back = await alice.expect_presence(from_=BOT)
    await asyncio.sleep(1.5)
    assert len(endpoint.received) == 2


async def test_a_4xx_is_an_error_to_the_user(world: Any, endpoint: ScriptedEndpoint) -> None:
    _prosody, _gateway, alice = world
    endpoint.then(Reply(404, "no such bot"))
    msg_id = send_with_receipt(alice, "hello?")
    error = await expect_error(alice, msg_id)
    assert "HTTP 404 Not Found" in error["error"]["text"]
    assert len(endpoint.received) == 1


async def test_gateway_restart_with_a_message_in_the_outbox(
    world: Any, endpoint: ScriptedEndpoint
) -> None:
    _prosody, gateway, alice = world
    await endpoint.down()
    msg_id = send_with_receipt(alice, "survive a crash")
    await asyncio.sleep(1)  # accepted into the outbox, first attempt refused
    gateway.kill()
    await endpoint.up()
    await gateway.astart()
    await expect_receipt(alice, msg_id, timeout=30)
    await asyncio.sleep(1)
    assert [r.json["body"] for r in endpoint.received] == ["survive a crash"]
