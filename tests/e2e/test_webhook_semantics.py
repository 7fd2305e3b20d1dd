"""Corrections, retractions, reactions and replies through hooks, both ways.

Users' clients send the real XEP stanzas; the hook's endpoint gets typed, signed JSON that
validates against ``transports/webhook/post.schema.json``. Services correct their own earlier
posts with ``replace``, and alert groups correct their first message on hooks that ask so.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest
from slixmpp import Message
from support.fixture_types import ConnectXmpp, MakeProsody
from support.gateway import GatewayProcess
from support.hook_endpoint import Reply, ScriptedEndpoint, alertmanager_payload, grafana_payload
from support.prosody import Prosody
from support.xmpp_client import XmppClient

pytestmark = pytest.mark.e2e

COMPONENT = {"hooks.example.org": "hooks-component-s3cret"}
USERS = {"alice": "alice-pw", "bob": "bob-pw"}
TOKEN = "whsec_Ym90LXNlY3JldC1mb3ItdGVzdHMtMDE="
BOT = "bot@hooks.example.org"
ALERTS = "alerts@hooks.example.org"
ROOM = "ops@conference.example.org"
SCHEMA = json.loads(
    (Path(__file__).parents[2] / "transports" / "webhook" / "post.schema.json").read_text()
)
CORRECT = "{urn:xmpp:message-correct:0}replace"


def settings(prosody: Prosody, url: str) -> dict[str, Any]:
    hook = {"owner": "alice@example.org", "token": TOKEN}
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
                    {**hook, "name": "bot", "url": url},
                    {**hook, "name": "alerts", "update_alerts": True},
                    {**hook, "name": "other"},
                    {**hook, "name": "opsroom", "rooms": [ROOM], "nick": "Ops Bot"},
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
) -> AsyncIterator[tuple[Prosody, GatewayProcess, XmppClient, aiohttp.ClientSession]]:
    prosody = make_prosody(components=COMPONENT, users=USERS)
    gateway = GatewayProcess(tmp_path / "gateway", settings(prosody, endpoint.url))
    await gateway.astart()
    alice = await xmpp_client("alice@example.org", "alice-pw", prosody)
    async with aiohttp.ClientSession(gateway.base_url) as http:
        yield prosody, gateway, alice, http
    gateway.kill()


async def post(http: aiohttp.ClientSession, hook: str, data: Any) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with http.post(f"/hooks/{hook}", json=data, headers=headers) as response:
        return response.status, await response.json()


def send(client: XmppClient, inner: str, to: str = BOT) -> str:
    msg_id = uuid.uuid4().hex
    client.send_raw(f"<message to='{to}' id='{msg_id}' type='chat'>{inner}</message>")
    return msg_id


def replaced(message: Message) -> str | None:
    element = message.xml.find(CORRECT)
    return element.get("id") if element is not None else None


async def test_each_kind_of_message_reaches_the_endpoint_typed_and_valid(
    world: Any, endpoint: ScriptedEndpoint
) -> None:
    _prosody, _gateway, alice, _http = world
    first = send(alice, "<body>deploy at 5?</body>")
    (original,) = await endpoint.wait_for(1)
    send(
        alice,
        f"<body>deploy at 6?</body><replace xmlns='urn:xmpp:message-correct:0' id='{first}'/>",
    )
    send(
        alice,
        f"<reactions xmlns='urn:xmpp:reactions:0' id='{first}'>"
        "<reaction>👍</reaction><reaction>🎉</reaction></reactions>",
    )
    quote = "> deploy at 6?\n"
    send(
        alice,
        f"<body>{quote}or tomorrow</body><reply xmlns='urn:xmpp:reply:0' id='{first}'/>"
        "<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'>"
        f"<body start='0' end='{len(quote)}'/></fallback>",
    )
    send(alice, f"<retract xmlns='urn:xmpp:message-retract:1' id='{first}'/>")
    received = await endpoint.wait_for(5)
    posts = [request.json for request in received]
    for request in received:
        assert request.signature_ok
    for payload in posts:
        jsonschema.validate(payload, SCHEMA)
    assert [p["type"] for p in posts] == [
        "message",
        "correction",
        "reaction",
        "reply",
        "retraction",
    ]
    assert "refers_to" not in posts[0]
    assert {p["refers_to"] for p in posts[1:]} == {original.json["id"]}
    assert posts[1]["body"] == "deploy at 6?"
    assert posts[2]["reactions"] == ["👍", "🎉"] and posts[2]["body"] == ""
    assert (posts[3]["body"], posts[3]["quote"]) == ("or tomorrow", "deploy at 6?")
    assert posts[4]["body"] == ""


async def test_a_shared_file_reaches_the_endpoint_as_its_link(
    world: Any, endpoint: ScriptedEndpoint
) -> None:
    """A file shared through the upload service is its link in ``body``: as Conversations
    sends it (the link in the body too), and as a client that sends the OOB element alone."""
    _prosody, _gateway, alice, _http = world
    url = "https://upload.example.org/k3y/build%20log.txt"
    send(alice, f"<body>{url}</body><x xmlns='jabber:x:oob'><url>{url}</url></x>")
    other = "https://upload.example.org/k4y/trace.png"
    send(alice, f"<x xmlns='jabber:x:oob'><url>{other}</url></x>")
    received = await endpoint.wait_for(2)
    for request in received:
        assert request.signature_ok
        jsonschema.validate(request.json, SCHEMA)
    assert [(r.json["type"], r.json["body"]) for r in received] == [
        ("message", url),
        ("message", other),
    ]


async def test_a_reaction_to_a_hooks_own_post_names_that_post(
    world: Any, endpoint: ScriptedEndpoint
) -> None:
    _prosody, _gateway, alice, http = world
    status, answer = await post(http, "bot", {"text": "build 7 failed"})
    assert status == 202
    got = await alice.expect_message(from_=BOT, body="build 7 failed")
    send(
        alice,
        f"<reactions xmlns='urn:xmpp:reactions:0' id='{got['id']}'>"
        "<reaction>👀</reaction></reactions>",
    )
    (request,) = await endpoint.wait_for(1)
    jsonschema.validate(request.json, SCHEMA)
    assert (request.json["type"], request.json["refers_to"]) == ("reaction", answer["id"])


async def test_a_reference_to_a_message_the_gateway_never_saw_is_null(
    world: Any, endpoint: ScriptedEndpoint
) -> None:
    _prosody, _gateway, alice, _http = world
    send(alice, "<body>fixed</body><replace xmlns='urn:xmpp:message-correct:0' id='nope'/>")
    (request,) = await endpoint.wait_for(1)
    jsonschema.validate(request.json, SCHEMA)
    assert (request.json["type"], request.json["refers_to"]) == ("correction", None)


async def test_a_service_corrects_its_own_post_and_only_its_own(world: Any) -> None:
    _prosody, gateway, alice, http = world
    status, first = await post(http, "other", {"text": "[FIRING] disk 91% on db1"})
    assert status == 202
    original = await alice.expect_message(from_="other@hooks.example.org")
    assert replaced(original) is None

    status, _ = await post(http, "other", {"text": "[RESOLVED] disk 60%", "replace": first["id"]})
    assert status == 202
    fixed = await alice.expect_message(from_="other@hooks.example.org", body="[RESOLVED] disk 60%")
    assert replaced(fixed) == original["id"]

    # another hook cannot name it; nor can anyone name what does not exist
    status, answer = await post(http, "alerts", {"text": "hijack", "replace": first["id"]})
    assert status == 404 and "no earlier post" in answer["error"]
    status, answer = await post(http, "other", {"text": "x", "replace": "never-sent"})
    assert status == 404
    status, answer = await post(http, "other", {"text": "x", "replace": ["not", "a", "string"]})
    assert status == 400 and "replace" in answer["error"]

    # the ids outlive a restart
    gateway.kill()
    await gateway.astart()
    status, _ = await post(http, "other", {"text": "[FIRING] again", "replace": first["id"]})
    assert status == 202
    again = await alice.expect_message(
        from_="other@hooks.example.org", body="[FIRING] again", timeout=20
    )
    assert replaced(again) == original["id"]


async def test_an_alert_group_corrects_its_first_message_until_it_resolves(world: Any) -> None:
    _prosody, _gateway, alice, http = world
    firing = alertmanager_payload(("firing", "HighCPU", "CPU above 90%"))
    assert (await post(http, "alerts", firing))[0] == 202
    first = await alice.expect_message(from_=ALERTS, contains="[FIRING] HighCPU")
    assert replaced(first) is None

    still = alertmanager_payload(("firing", "HighCPU", "CPU above 95%"))
    assert (await post(http, "alerts", still))[0] == 202
    update = await alice.expect_message(from_=ALERTS, contains="CPU above 95%")
    assert replaced(update) == first["id"]

    resolved = alertmanager_payload(("resolved", "HighCPU", "CPU back to 20%"))
    assert (await post(http, "alerts", resolved))[0] == 202
    done = await alice.expect_message(from_=ALERTS, contains="[RESOLVED] HighCPU")
    assert replaced(done) == first["id"]

    # resolved: the next firing is news, a message of its own
    assert (await post(http, "alerts", firing))[0] == 202
    news = await alice.expect_message(from_=ALERTS, contains="[FIRING] HighCPU")
    assert replaced(news) is None


async def test_a_grafana_alert_corrects_its_first_message_until_it_resolves(world: Any) -> None:
    """Grafana's unified alerting posts carry a ``groupKey`` as Alertmanager's do."""
    _prosody, _gateway, alice, http = world
    assert (await post(http, "alerts", grafana_payload("firing", "DiskFull", "91%")))[0] == 202
    first = await alice.expect_message(from_=ALERTS, contains="DiskFull")
    assert replaced(first) is None
    assert (await post(http, "alerts", grafana_payload("resolved", "DiskFull", "40%")))[0] == 202
    done = await alice.expect_message(from_=ALERTS, contains="40%")
    assert replaced(done) == first["id"]


async def test_a_hook_without_update_alerts_adds_a_message_each_time(world: Any) -> None:
    _prosody, _gateway, alice, http = world
    firing = alertmanager_payload(("firing", "HighCPU", "CPU above 90%"))
    for _ in range(2):
        assert (await post(http, "other", firing))[0] == 202
        message = await alice.expect_message(from_="other@hooks.example.org")
        assert replaced(message) is None


async def test_a_room_post_is_corrected_in_the_room(world: Any, xmpp_client: ConnectXmpp) -> None:
    prosody, _gateway, _alice, http = world
    bob = await xmpp_client("bob@example.org", "bob-pw", prosody)
    await bob.xmpp.plugin["xep_0045"].join_muc_wait(ROOM, "bob", maxchars=0, timeout=10)
    status, first = await post(http, "opsroom", {"text": "backup running"})
    assert status == 202
    original = await bob.expect_message(from_=f"{ROOM}/Ops Bot", body="backup running")
    status, _ = await post(http, "opsroom", {"text": "backup done", "replace": first["id"]})
    assert status == 202
    fixed = await bob.expect_message(from_=f"{ROOM}/Ops Bot", body="backup done")
    assert replaced(fixed) == original["id"]


async def test_the_endpoints_reply_still_comes_back(world: Any, endpoint: ScriptedEndpoint) -> None:
    _prosody, _gateway, alice, _http = world
    endpoint.then(Reply(200, "noted", "text/plain"))
    first = send(alice, "<body>ping</body>")
    await endpoint.wait_for(1)
    await alice.expect_message(from_=BOT, body="noted")
    endpoint.then(Reply(200, "noted again", "text/plain"))
    send(alice, f"<body>pong</body><replace xmlns='urn:xmpp:message-correct:0' id='{first}'/>")
    await alice.expect_message(from_=BOT, body="noted again")
