"""Abuse: a registered user aims hooks at the gateway's own network (issue 10, finding 1).

The attack as it was found: a user creates a hook (ad-hoc "Create a hook") whose url is an
internal address, writes to it, and reads the answer, or reads the hook's presence to tell an
open port from a closed one. Here the internal service is a listener on loopback that counts
every connection it gets: each test fails if even one reaches it, or if anything a user sees
differs between an open and a closed port.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from slixmpp import Iq, Message, Presence
from support.fixture_types import ConnectXmpp, MakeProsody
from support.gateway import GatewayProcess
from support.hook_endpoint import Reply, ScriptedEndpoint
from support.inside_service import InsideService, http_answer
from support.prosody import Prosody
from support.xmpp_client import XmppClient

pytestmark = pytest.mark.e2e

HOOKS = "hooks.example.org"
COMPONENT = {HOOKS: "hooks-component-s3cret"}
USERS = {"mallory": "mallory-pw", "alice": "alice-pw"}
TOKEN = "whsec_Ym90LXNlY3JldC1mb3ItdGVzdHMtMDE="
COMMANDS = "http://jabber.org/protocol/commands"
REFUSED = "the hook's url is refused: the address is not allowed"


@pytest.fixture
async def internal() -> AsyncIterator[InsideService]:
    service = InsideService(answer=http_answer(b"admin password: hunter2"))
    await service.start()
    yield service
    await service.stop()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port held (bound, not listening): a connection there would be refused."""
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    yield held.getsockname()[1]
    held.close()


@pytest.fixture
async def endpoint() -> AsyncIterator[ScriptedEndpoint]:
    server = ScriptedEndpoint(TOKEN)
    await server.up()
    yield server
    await server.down()


def settings(prosody: Prosody, bot_url: str) -> dict[str, Any]:
    """The admin allows loopback for the hook the admin defines, and only for it."""
    return {
        "xmpp": {"host": "127.0.0.1", "port": prosody.component_port, "reconnect_max_seconds": 2},
        "allowed_domains": ["example.org"],
        "transports": {
            "webhook": {
                "jid": HOOKS,
                "secret": COMPONENT[HOOKS],
                "request_timeout_seconds": 3,
                "retry_hours": 1,
                "allow_networks": ["127.0.0.0/8"],
                "hooks": [
                    {"name": "bot", "owner": "alice@example.org", "token": TOKEN, "url": bot_url}
                ],
            }
        },
    }


World = tuple[GatewayProcess, XmppClient, XmppClient]


@pytest.fixture
async def world(
    tmp_path: Path, make_prosody: MakeProsody, xmpp_client: ConnectXmpp, endpoint: ScriptedEndpoint
) -> AsyncIterator[World]:
    prosody = make_prosody(components=COMPONENT, users=USERS)
    gateway = GatewayProcess(tmp_path / "gateway", settings(prosody, endpoint.url))
    await gateway.astart()
    mallory = await xmpp_client("mallory@example.org", "mallory-pw", prosody)
    alice = await xmpp_client("alice@example.org", "alice-pw", prosody)
    for user in (mallory, alice):
        registered = await user.iq(
            f"<iq type='set' to='{HOOKS}'><query xmlns='jabber:iq:register'>"
            "<x xmlns='jabber:x:data' type='submit'/></query></iq>"
        )
        assert registered["type"] == "result", registered
    yield gateway, mallory, alice
    gateway.kill()


async def create_hook(client: XmppClient, name: str, url: str = "") -> Iq:
    """Run "Create a hook" and return the final reply (a result or an error)."""
    first = await client.iq(
        f"<iq type='set' to='{HOOKS}'><command xmlns='{COMMANDS}' node='webhook-create'"
        " action='execute'/></iq>"
    )
    assert first["type"] == "result", first
    fields = f"<field var='name'><value>{name}</value></field>"
    if url:
        fields += f"<field var='url'><value>{url}</value></field>"
    return await client.iq(
        f"<iq type='set' to='{HOOKS}'><command xmlns='{COMMANDS}' node='webhook-create'"
        f" sessionid='{first['command']['sessionid']}'><x xmlns='jabber:x:data'"
        f" type='submit'>{fields}</x></command></iq>"
    )


def send_with_receipt(client: XmppClient, to: str, body: str) -> str:
    msg_id = uuid.uuid4().hex
    client.send_raw(
        f"<message to='{to}' id='{msg_id}' type='chat'><body>{body}</body>"
        "<request xmlns='urn:xmpp:receipts'/></message>"
    )
    return msg_id


async def expect_error(client: XmppClient, msg_id: str, timeout: float = 15) -> Message:
    def is_error(stanza: Any) -> bool:
        return isinstance(stanza, Message) and stanza["type"] == "error" and stanza["id"] == msg_id

    found = await client.expect(is_error, timeout)
    assert isinstance(found, Message)
    return found


async def expect_failing(client: XmppClient, hook_jid: str) -> Presence:
    presence = await client.expect_presence(from_=hook_jid)
    while presence["show"] != "xa":
        presence = await client.expect_presence(from_=hook_jid)
    return presence


def set_url(gateway: GatewayProcess, name: str, url: str) -> None:
    """Point a stored hook at ``url`` behind the gateway's back: a hook from before the fix,
    or a name that resolved to a public address when the hook was created."""
    with sqlite3.connect(gateway.workdir / "portway.db") as db:
        changed = db.execute("UPDATE webhook_hooks SET url = ? WHERE name = ?", (url, name))
        assert changed.rowcount == 1


async def test_hooks_into_the_inside_are_refused_at_creation(
    world: World, internal: InsideService
) -> None:
    gateway, mallory, _alice = world
    port = internal.port
    targets = [
        f"http://127.0.0.1:{port}/internal/admin",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        f"http://localhost:{port}/internal/admin",
        f"http://[::ffff:127.0.0.1]:{port}/internal/admin",
        f"http://user@127.0.0.1:{port}/internal/admin",
    ]
    for number, url in enumerate(targets):
        reply = await create_hook(mallory, f"probe{number}", url)
        assert reply["type"] == "error", (url, reply)
        assert reply["error"]["condition"] == "not-allowed", (url, reply)
        assert (
            reply["error"]["text"] == f"{REFUSED} (private, loopback or otherwise not public);"
            " use a public address"
        ), (url, reply)
    # The admin's allow_networks (127.0.0.0/8) is for the admin's hooks only.
    listing = await mallory.iq(
        f"<iq type='set' to='{HOOKS}'><command xmlns='{COMMANDS}' node='webhook-list'"
        " action='execute'/></iq>"
    )
    assert "probe" not in str(listing)
    assert internal.connections == 0
    assert "hunter2" not in gateway.log()


async def test_a_stored_hook_into_the_inside_never_connects_and_cannot_scan(
    world: World, internal: InsideService, closed_port: int
) -> None:
    gateway, mallory, _alice = world
    seen: dict[str, tuple[str, str, str]] = {}
    for name, port in (("open", internal.port), ("closed", closed_port)):
        created = await create_hook(mallory, name)
        assert created["type"] == "result", created
        set_url(gateway, name, f"http://127.0.0.1:{port}/internal/admin")
        hook = f"{name}@{HOOKS}"
        mallory.send_raw(f"<presence to='{hook}'/>")  # so the hook's presence reaches us
        msg_id = send_with_receipt(mallory, hook, "GET me the admin page")
        error = await expect_error(mallory, msg_id)
        presence = await expect_failing(mallory, hook)
        seen[name] = (error["error"]["condition"], error["error"]["text"], presence["status"])
    # Final at once (not retried for an hour), in words that say nothing of the port.
    assert seen["open"] == seen["closed"]
    _condition, text, status = seen["open"]
    assert REFUSED in text and REFUSED in status
    for leak in ("connection refused", "HTTP", "Connect call failed", str(internal.port)):
        assert leak.lower() not in (text + status).lower()
    await asyncio.sleep(2)  # nothing retried behind our back either
    assert internal.connections == 0
    assert "hunter2" not in str(mallory.drain())


async def test_a_name_that_resolves_inside_is_refused_at_delivery(
    world: World, internal: InsideService
) -> None:
    """``localhost`` stands for a name that pointed outside at creation and inside now."""
    gateway, mallory, _alice = world
    assert (await create_hook(mallory, "rebound"))["type"] == "result"
    set_url(gateway, "rebound", f"http://localhost:{internal.port}/internal/admin")
    msg_id = send_with_receipt(mallory, f"rebound@{HOOKS}", "hello?")
    error = await expect_error(mallory, msg_id)
    assert REFUSED in error["error"]["text"]
    assert internal.connections == 0


async def test_the_admins_hook_with_allow_networks_still_works(
    world: World, endpoint: ScriptedEndpoint
) -> None:
    _gateway, _mallory, alice = world
    endpoint.then(Reply(200, "pong", "text/plain"))
    send_with_receipt(alice, f"bot@{HOOKS}", "ping")
    (request,) = await endpoint.wait_for(1)
    assert request.signature_ok and request.json["body"] == "ping"
    await alice.expect_message(from_=f"bot@{HOOKS}", body="pong")
