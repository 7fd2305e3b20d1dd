"""The webhook transport against a stand-in host: real store, real HTTP, no XMPP server.

The end-to-end tests show the same paths through Prosody; these pin down every refusal and
every outcome quickly, including ones that are awkward to provoke end to end.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from support.hook_endpoint import Reply, ScriptedEndpoint

from mappings.store import Store
from transports.base import (
    DeliveryFailed,
    Forbidden,
    GatewayError,
    NotFound,
    OutboundMessage,
    Pending,
    RetryLater,
    UserPresence,
)
from transports.events import ContactPresence, InboundMessage, RoomLeave, RoomPost, event_to_dict
from transports.webhook import WebhookTransport
from transports.webhook.settings import WebhookSettings
from transports.webhook.signing import signature_headers

TOKEN = "alerts-token-0123456789"


class StandInHost:
    """The TransportHost protocol over a real store, recording what reaches "XMPP"."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.domain = "hooks.example.org"
        self.public_url = "https://gw.example.org"
        self.admins: list[str] = []
        self.connected = True
        self.app = web.Application()
        self.events: list[Any] = []
        self.fail_storing = False
        self.rejected: list[str] = []

    def is_allowed(self, user_jid: str) -> bool:
        return user_jid.rpartition("@")[2] in ("example.org", "conference.example.org")

    def count_rejected(self, reason: str) -> None:
        self.rejected.append(reason)

    def add_route(
        self, method: str, path: str, handler: Callable[..., Awaitable[web.StreamResponse]]
    ) -> None:
        self.app.router.add_route(method, path, handler)

    async def deliver(
        self, event: Any, *, dedup_key: str | None = None, durable: bool = False
    ) -> bool:
        if self.fail_storing:
            raise OSError("disk full")
        if dedup_key is not None:
            stored = await self.store.inbound.put(
                "webhook", event.user_jid, event_to_dict(event), dedup_key=dedup_key
            )
            if stored is None:
                return False
        self.events.append(event)
        return True

    async def enqueue(self, message: OutboundMessage, data: dict[str, Any] | None = None) -> bool:
        item = await self.store.outbox.enqueue(
            "webhook",
            message.user_jid,
            message.contact,
            {"message": dataclasses.asdict(message), "data": data or {}},
        )
        return item is not None

    async def next_pending(self) -> Pending:
        (item,) = await self.store.outbox.claim("webhook")
        fields = item.payload["message"]
        fields["oob_urls"] = tuple(fields["oob_urls"])
        return Pending(item.id, item.attempts, OutboundMessage(**fields), item.payload["data"])

    def messages(self) -> list[InboundMessage]:
        return [event for event in self.events if isinstance(event, InboundMessage)]

    def presences(self) -> list[ContactPresence]:
        return [event for event in self.events if isinstance(event, ContactPresence)]


Setup = tuple[WebhookTransport, StandInHost, TestClient]


@pytest.fixture
async def endpoint() -> AsyncIterator[ScriptedEndpoint]:
    server = ScriptedEndpoint(TOKEN)
    await server.up()
    yield server
    await server.down()


@pytest.fixture
async def setup(tmp_path: Path, endpoint: ScriptedEndpoint) -> AsyncIterator[Setup]:
    store = await Store.open(f"sqlite:///{tmp_path / 'gw.db'}")
    host = StandInHost(store)
    settings = WebhookSettings.model_validate(
        {
            "jid": "hooks.example.org",
            "secret": "component-secret-1",
            "rate_per_minute": 5,
            "max_body_bytes": 1000,
            "allow_networks": ["127.0.0.0/8"],  # the test endpoint is on loopback
            "hooks": [
                {
                    "name": "alerts",
                    "owner": "alice@example.org",
                    "token": TOKEN,
                    "deliver_to": ["alice@example.org", "bob@example.org"],
                    "rooms": ["ops@conference.example.org"],
                    "nick": "Alerts",
                    "url": endpoint.url,
                },
                {"name": "plain", "owner": "alice@example.org", "token": "plain-token-000"},
            ],
        }
    )
    transport = WebhookTransport(settings, host)
    await transport.prepare()
    await transport.start()
    client = TestClient(TestServer(host.app))
    await client.start_server()
    yield transport, host, client
    await client.close()
    await transport.stop()
    await store.close()


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- inbound ------------------------------------------------------------------------------------


async def test_bearer_post_reaches_every_target(setup: Setup) -> None:
    _, host, client = setup
    response = await client.post("/hooks/alerts", data="disk full", headers=bearer())
    assert response.status == 202
    post_id = (await response.json())["id"]
    # each target's message has an XMPP id of its own, kept for a later correction of it
    ids = [event.xmpp_id for event in host.events[:2]]
    assert all(ids) and len(set(ids)) == 2
    assert [dataclasses.replace(event, xmpp_id=None) for event in host.events[:2]] == [
        InboundMessage("alice@example.org", "alerts", "disk full", remote_id=post_id),
        InboundMessage("bob@example.org", "alerts", "disk full", remote_id=post_id),
    ]
    assert host.events[2:] == [
        RoomPost("ops@conference.example.org", "alerts", "Alerts", "disk full", post_id)
    ]
    # A hook without targets posts to its owner.
    response = await client.post("/hooks/plain", data="hi", headers=bearer("plain-token-000"))
    assert response.status == 202
    assert host.events[-1].user_jid == "alice@example.org"


async def test_to_picks_among_targets(setup: Setup) -> None:
    _, host, client = setup
    response = await client.post(
        "/hooks/alerts", json={"text": "hi", "to": "bob@example.org"}, headers=bearer()
    )
    assert response.status == 202
    assert [event.user_jid for event in host.events] == ["bob@example.org"]
    response = await client.post(
        "/hooks/alerts", json={"text": "hi", "to": "eve@evil.test"}, headers=bearer()
    )
    assert response.status == 400
    assert "not a target" in (await response.json())["error"]
    assert len(host.events) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer plain-token-000"},
    ],
)
async def test_missing_or_wrong_secret_is_401(setup: Setup, headers: dict[str, str]) -> None:
    _, host, client = setup
    response = await client.post("/hooks/alerts", data="x", headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert host.events == []


async def test_signed_posts_stale_and_replayed(setup: Setup) -> None:
    _, host, client = setup
    body = json.dumps({"text": "signed"}).encode()
    signed = {
        **signature_headers(TOKEN, "msg_1", int(time.time()), body),
        "Content-Type": "application/json",
    }
    response = await client.post("/hooks/alerts", data=body, headers=signed)
    assert response.status == 202
    assert (await response.json())["id"] == "msg_1"
    assert len(host.events) == 3
    # The same webhook-id again (a replay, or a sender's retry): refused, not delivered twice.
    response = await client.post("/hooks/alerts", data=body, headers=signed)
    assert response.status == 409
    assert len(host.events) == 3
    stale = {
        **signature_headers(TOKEN, "msg_2", int(time.time()) - 600, body),
        "Content-Type": "application/json",
    }
    response = await client.post("/hooks/alerts", data=body, headers=stale)
    assert response.status == 401
    assert "5 minutes" in (await response.json())["error"]
    forged = {**signed, "webhook-id": "msg_3"}
    assert (await client.post("/hooks/alerts", data=body, headers=forged)).status == 401
    assert len(host.events) == 3


async def test_size_rate_and_unknown_hook(setup: Setup) -> None:
    _, host, client = setup
    assert (await client.post("/hooks/nope", data="x", headers=bearer())).status == 404
    response = await client.post("/hooks/alerts", data="x" * 1001, headers=bearer())
    assert response.status == 413

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"y" * 100

    response = await client.post("/hooks/alerts", data=chunked(), headers=bearer())
    assert response.status == 413
    assert host.events == []
    statuses = [
        (await client.post("/hooks/plain", data="n", headers=bearer("plain-token-000"))).status
        for _ in range(5)
    ]
    assert statuses == [202] * 5
    response = await client.post("/hooks/plain", data="n", headers=bearer("plain-token-000"))
    assert response.status == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 12
    # The limit is per hook.
    assert (await client.post("/hooks/alerts", data="a", headers=bearer())).status == 202


async def test_bad_body_and_store_failure(setup: Setup) -> None:
    _, host, client = setup
    response = await client.post(
        "/hooks/alerts", data=b"{oops", headers={**bearer(), "Content-Type": "application/json"}
    )
    assert response.status == 400
    response = await client.post(
        "/hooks/alerts", data=b"<x/>", headers={**bearer(), "Content-Type": "application/xml"}
    )
    assert response.status == 415
    host.fail_storing = True
    response = await client.post("/hooks/alerts", data="x", headers=bearer())
    assert response.status == 503
    assert response.headers["Retry-After"]


# -- outbound -----------------------------------------------------------------------------------


def message(user: str = "alice@example.org", contact: str = "alerts") -> OutboundMessage:
    return OutboundMessage(user, f"{user}/pc", contact, "status?", xmpp_id="x1", thread="th")


async def test_who_may_send(setup: Setup) -> None:
    transport, _, _ = setup
    with pytest.raises(Forbidden):
        await transport.send(message("eve@example.org"))
    with pytest.raises(NotFound):
        await transport.send(message(contact="nope"))
    with pytest.raises(GatewayError, match="no url"):
        await transport.send(message(contact="plain"))
    await transport.send(message("bob@example.org"))  # a target may


async def test_signed_post_and_reply(setup: Setup, endpoint: ScriptedEndpoint) -> None:
    transport, host, _ = setup
    endpoint.then(Reply(200, json.dumps({"text": "all green"}), "application/json"))
    await transport.send(message())
    pending = await host.next_pending()
    delivered = await transport.deliver(pending)
    (request,) = endpoint.received
    assert request.signature_ok
    assert request.json["body"] == "status?"
    assert request.json["from"] == "alice@example.org/pc"
    assert request.json["to"] == "alerts@hooks.example.org"
    assert request.headers["webhook-id"] == delivered.remote_id == request.json["id"]
    assert host.messages() == [
        InboundMessage("alice@example.org", "alerts", "all green", thread="th")
    ]
    # A retry of the same item (say after a crash) posts the same id, and the reply is not
    # delivered twice.
    endpoint.then(Reply(200, "all green", "text/plain"))
    await transport.deliver(pending)
    assert endpoint.received[1].headers["webhook-id"] == delivered.remote_id
    assert len(host.messages()) == 1


async def test_failures_and_presence(setup: Setup, endpoint: ScriptedEndpoint) -> None:
    transport, host, _ = setup
    await transport.send(message())
    pending = await host.next_pending()
    endpoint.then(Reply(503, headers={"Retry-After": "3"}))
    with pytest.raises(RetryLater, match="503") as caught:
        await transport.deliver(pending)
    assert caught.value.after_seconds == 3
    assert {(p.user_jid, p.show) for p in host.presences()} == {
        ("alice@example.org", "xa"),
        ("bob@example.org", "xa"),
    }
    assert "HTTP 503" in host.presences()[0].status
    # Failing again does not repeat the presence; coming back does.
    endpoint.then(Reply(502))
    with pytest.raises(RetryLater):
        await transport.deliver(pending)
    assert len(host.presences()) == 4  # the status names the new error
    await endpoint.down()
    with pytest.raises(RetryLater, match="cannot reach"):
        await transport.deliver(pending)
    await endpoint.up()
    await transport.deliver(pending)
    assert host.presences()[-1] == ContactPresence("bob@example.org", "alerts", True)
    endpoint.then(Reply(404))
    with pytest.raises(DeliveryFailed, match="HTTP 404 Not Found"):
        await transport.deliver(pending)
    # A user coming online is told the hook is failing; the health survives a restart.
    host.events.clear()
    await transport.user_presence(UserPresence("bob@example.org/phone", None, True))
    assert [(p.contact, p.show) for p in host.presences()] == [("alerts", "xa")]
    again = WebhookTransport(transport.settings, StandInHost(host.store))
    await again.prepare()
    await again.start()
    assert again.presence_of((await again.directory.get("alerts")), "bob@example.org").show == "xa"  # type: ignore[arg-type]


# -- commands -----------------------------------------------------------------------------------


async def test_create_rotate_list_delete(setup: Setup) -> None:
    transport, host, client = setup
    commands = {command.node: command for command in transport.commands()}
    result = await commands["webhook-create"].run(
        "carol@example.org", {"name": "CI", "rooms": "dev@conference.example.org", "url": ""}
    )
    assert "https://gw.example.org/hooks/ci" in result.text
    secret = result.text.split("Secret: ")[1].split()[0]
    response = await client.post("/hooks/ci", data="green", headers=bearer(secret))
    assert response.status == 202
    assert host.events[-1] == RoomPost(
        "dev@conference.example.org", "ci", "ci", "green", (await response.json())["id"]
    )

    rotate_form = await commands["webhook-rotate"].form("carol@example.org")  # type: ignore[operator]
    assert [option[0] for option in rotate_form.fields[0].options] == ["ci"]
    rotated = await commands["webhook-rotate"].run("carol@example.org", {"name": "ci"})
    new_secret = rotated.text.split(": ")[1].split()[0]
    assert (await client.post("/hooks/ci", data="x", headers=bearer(secret))).status == 401
    assert (await client.post("/hooks/ci", data="x", headers=bearer(new_secret))).status == 202
    with pytest.raises(NotFound):
        await commands["webhook-rotate"].run("alice@example.org", {"name": "ci"})

    listing = await commands["webhook-list"].run("carol@example.org", {})
    assert "ci@hooks.example.org" in listing.text and new_secret not in listing.text
    assert "alerts" in (await commands["webhook-list"].run("bob@example.org", {})).text

    kept = await commands["webhook-delete"].run(
        "carol@example.org", {"name": "ci", "confirm": False}
    )
    assert "not deleted" in kept.text
    await commands["webhook-delete"].run("carol@example.org", {"name": "ci", "confirm": True})
    assert RoomLeave("dev@conference.example.org", "ci", "ci") in host.events
    assert (await client.post("/hooks/ci", data="x", headers=bearer(new_secret))).status == 404


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"name": "alerts"}, "taken"),
        ({"name": "bad name!"}, "hook name"),
        ({"name": "x", "deliver_to": "eve@evil.test"}, "not on a domain"),
        ({"name": "x", "rooms": "r@conference.evil.test"}, "not a room on a domain"),
        ({"name": "x", "deliver_to": "not a jid"}, "not a bare JID"),
        ({"name": "x", "url": "ftp://x"}, "not an http"),
        *(
            ({"name": "x", "url": url}, "url is refused: the address is not allowed")
            for url in (
                "http://127.0.0.1:8080/internal/admin",
                "http://169.254.169.254/latest/meta-data/",
                "http://localhost:8080/",
                "http://[::ffff:127.0.0.1]:8080/",
                "https://10.0.0.1/",
            )
        ),
    ],
)
async def test_create_refusals(setup: Setup, values: dict[str, str], reason: str) -> None:
    transport, _, _ = setup
    create = next(c for c in transport.commands() if c.node == "webhook-create")
    with pytest.raises(GatewayError, match=reason):
        await create.run("carol@example.org", values)


async def test_unregistering_deletes_the_users_hooks(setup: Setup) -> None:
    transport, _, client = setup
    create = next(c for c in transport.commands() if c.node == "webhook-create")
    result = await create.run("carol@example.org", {"name": "mine"})
    secret = result.text.split("Secret: ")[1].split()[0]
    await transport.unregistered("carol@example.org")
    assert (await client.post("/hooks/mine", data="x", headers=bearer(secret))).status == 404
