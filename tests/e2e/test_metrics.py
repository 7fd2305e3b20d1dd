"""/metrics of the real gateway after real traffic: IRC on ngIRCd, mail over SMTP, hooks over
HTTP, each refused in the ways strangers get refused, and messages carried both ways."""

from __future__ import annotations

import asyncio
import contextlib
import email.message
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from prometheus_client.parser import text_string_to_metric_families
from slixmpp import Message
from support.fixture_types import ConnectIrc, ConnectXmpp, MakeNgircd, MakeProsody
from support.gateway import GatewayProcess
from support.hook_endpoint import Reply, ScriptedEndpoint
from support.ngircd import Ngircd
from support.ports import free_port
from support.prosody import Prosody
from support.smtp_sink import SmtpSink
from support.xmpp_client import XmppClient

pytestmark = pytest.mark.e2e

SECRETS = {
    "irc.example.org": "irc-component-s3cret",
    "mail.example.org": "mail-component-s3cret",
    "hooks.example.org": "hooks-component-s3cret",
}
ALICE = "alice@example.org"
TOKEN = "whsec_Ym90LXNlY3JldC1mb3ItdGVzdHMtMDE="
BOT = "bot@hooks.example.org"
ROOM = "#test%irc.localhost@irc.example.org"
MAX_BODY = 2048
MAX_MAIL = 20_000
RATE = 8


def settings(
    prosody: Prosody, ngircd: Ngircd, hook_url: str, smtp_port: int, sink_port: int
) -> dict[str, Any]:
    return {
        "xmpp": {"host": "127.0.0.1", "port": prosody.component_port, "reconnect_max_seconds": 1},
        "allowed_domains": ["example.org"],
        "transports": {
            "irc": {
                "jid": "irc.example.org",
                "secret": SECRETS["irc.example.org"],
                "servers": {
                    "irc.localhost": {
                        "host": "127.0.0.1",
                        "port": ngircd.port,
                        "tls": False,
                        "throttle": None,
                    }
                },
            },
            "email": {
                "jid": "mail.example.org",
                "secret": SECRETS["mail.example.org"],
                "domain": "mail.example.org",
                "smtp_listen": f"127.0.0.1:{smtp_port}",
                "smarthost": {"host": "127.0.0.1", "port": sink_port, "starttls": False},
                "max_message_bytes": MAX_MAIL,
            },
            "webhook": {
                "jid": "hooks.example.org",
                "secret": SECRETS["hooks.example.org"],
                "allow_networks": ["127.0.0.0/8"],  # the endpoint is on loopback
                "max_body_bytes": MAX_BODY,
                "hooks": [
                    {
                        "name": "bot",
                        "owner": ALICE,
                        "token": TOKEN,
                        "url": hook_url,
                        "deliver_to": [ALICE],
                        "rate_per_minute": RATE,
                    }
                ],
            },
        },
    }


@dataclass
class World:
    gateway: GatewayProcess
    alice: XmppClient
    ngircd: Ngircd
    endpoint: ScriptedEndpoint
    smtp_port: int
    connect_irc: ConnectIrc


@contextlib.asynccontextmanager
async def running_world(
    workdir: Path,
    make_prosody: MakeProsody,
    make_ngircd: MakeNgircd,
    xmpp_client: ConnectXmpp,
    irc_client: ConnectIrc,
    email_options: dict[str, Any] | None = None,
    **extra: Any,
) -> AsyncIterator[World]:
    """Prosody, ngIRCd, a hook endpoint, a smarthost and the gateway, with ``extra`` added to
    its config (and ``email_options`` to its email section); Alice online, registered with the
    hooks and bound to alice@mail.example.org."""
    prosody = make_prosody(components=SECRETS, users={"alice": "alice-pw"})
    ngircd = make_ngircd()
    endpoint = ScriptedEndpoint(TOKEN)
    await endpoint.up()
    smtp_port = free_port()
    async with SmtpSink() as sink:
        config = settings(prosody, ngircd, endpoint.url, smtp_port, sink.port)
        config["transports"]["email"].update(email_options or {})
        gateway = GatewayProcess(workdir / "gateway", {**config, **extra})
        bound = gateway.cli("mappings", "add", "email", ALICE, "alice")
        assert bound.returncode == 0, bound.stderr
        await gateway.astart()
        try:
            alice = await xmpp_client(ALICE, "alice-pw", prosody)
            registered = await alice.iq(
                "<iq type='set' to='hooks.example.org'><query xmlns='jabber:iq:register'>"
                "<x xmlns='jabber:x:data' type='submit'/></query></iq>"
            )
            assert registered["type"] == "result", registered
            yield World(gateway, alice, ngircd, endpoint, smtp_port, irc_client)
        finally:
            gateway.stop()
            await endpoint.down()


@pytest.fixture
async def world(
    tmp_path: Path,
    make_prosody: MakeProsody,
    make_ngircd: MakeNgircd,
    xmpp_client: ConnectXmpp,
    irc_client: ConnectIrc,
) -> AsyncIterator[World]:
    # retention prunes delivered messages a second after they are done, so that a test can
    # see the outbox empty; nothing else here is old enough to go
    retention = {"outbox_days": 1 / 86400, "interval_minutes": 0.5 / 60}
    async with running_world(
        tmp_path, make_prosody, make_ngircd, xmpp_client, irc_client, retention=retention
    ) as made:
        yield made


# -- reading /metrics ---------------------------------------------------------------------------


def scrape(gateway: GatewayProcess) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of /metrics, by name and labels."""
    with urllib.request.urlopen(gateway.base_url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(gateway: GatewayProcess, name: str, **labels: str) -> float | None:
    return scrape(gateway).get((name, frozenset(labels.items())))


async def until(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    for _ in range(int(timeout * 10)):
        if await asyncio.to_thread(check):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never: {what}")


# -- traffic ------------------------------------------------------------------------------------


def post(
    gateway: GatewayProcess,
    body: bytes,
    *,
    hook: str = "bot",
    token: str = TOKEN,
    post_id: str | None = None,
) -> int:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/plain"}
    if post_id:
        headers["webhook-id"] = post_id
    request = urllib.request.Request(
        f"{gateway.base_url}/hooks/{hook}", data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


async def smtp_replies(smtp_port: int, recipient: str, size: int = 100) -> tuple[int, int]:
    """(RCPT reply code, DATA reply code or 0) of one mail from Juliet's server."""
    message = email.message.EmailMessage()
    message["From"] = "juliet@capulet.lit"
    message["To"] = recipient
    message["Subject"] = "hi"
    message.set_content("x" * size)
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_port, start_tls=False, timeout=20)
    async with client:
        await client.ehlo()
        await client.mail("juliet@capulet.lit")
        rcpt = await client.execute_command(f"RCPT TO:<{recipient}>".encode())
        if rcpt.code != 250:
            return rcpt.code, 0
        try:
            data = await client.data(message.as_bytes())
        except aiosmtplib.SMTPResponseException as refused:
            return rcpt.code, refused.code
        return rcpt.code, data.code


def from_bot(body: str) -> Callable[[Any], bool]:
    def match(stanza: Any) -> bool:
        return isinstance(stanza, Message) and stanza["from"].bare == BOT and stanza["body"] == body

    return match


# -- the tests ----------------------------------------------------------------------------------


async def test_refused_hook_posts_are_counted_by_reason(world: World) -> None:
    gateway = world.gateway
    assert post(gateway, b"hi", hook="nosuchhook") == 404
    assert post(gateway, b"hi", token="wrong") == 401
    assert post(gateway, b"hi", post_id="once") == 202
    assert post(gateway, b"hi", post_id="once") == 409
    assert post(gateway, b"x" * (MAX_BODY + 1)) == 413
    statuses = [post(gateway, b"hi") for _ in range(RATE)]
    assert 429 in statuses, statuses
    expected = {
        "not-found": 1,
        "unauthorized": 1,
        "duplicate": 1,
        "too-large": 1,
        "rate-limited": statuses.count(429),
    }
    page = scrape(gateway)
    for reason, count in expected.items():
        labels = frozenset({"transport": "webhook", "reason": reason}.items())
        assert page.get(("portway_inbound_rejected_total", labels)) == count, reason


async def test_refused_mail_is_counted_by_reason(world: World) -> None:
    port = world.smtp_port
    assert await smtp_replies(port, "someone@elsewhere.example") == (550, 0)  # relaying
    assert await smtp_replies(port, "nobody@mail.example.org") == (550, 0)  # unknown user
    assert (await smtp_replies(port, "alice@mail.example.org", size=MAX_MAIL * 2))[1] == 552
    assert await smtp_replies(port, "alice@mail.example.org") == (250, 250)
    for reason in ("refused", "unknown-recipient", "too-large"):
        count = sample(
            world.gateway, "portway_inbound_rejected_total", transport="email", reason=reason
        )
        assert count == 1, reason


async def test_outbox_items_drop_to_zero_and_latency_is_measured(world: World) -> None:
    gateway, alice = world.gateway, world.alice
    world.endpoint.then(Reply(503))  # the first attempt fails: the message waits, pending
    alice.send_raw(
        f"<message to='{BOT}' type='chat' id='{uuid.uuid4().hex}'><body>hi</body></message>"
    )
    await world.endpoint.wait_for(1)

    def pending(count: int) -> Callable[[], bool]:
        return lambda: (
            sample(gateway, "portway_outbox_items", transport="webhook", state="pending") == count
        )

    await until(pending(1), "the message waits for its retry")
    await world.endpoint.wait_for(2)  # the retry, answered 204
    await until(pending(0), "pending says 0 once the message is delivered")

    def delivered(count: int) -> Callable[[], bool]:
        return lambda: (
            sample(gateway, "portway_outbox_items", transport="webhook", state="delivered") == count
        )

    await until(delivered(1), "the delivered message is counted")
    await until(delivered(0), "delivered says 0 once retention forgot the message")
    assert sample(gateway, "portway_table_rows", table="outbox") == 0
    assert (sample(gateway, "portway_pruned_rows_total", table="outbox") or 0) >= 1
    for state in ("pending", "sending", "delivered", "failed"):
        assert sample(gateway, "portway_outbox_items", transport="webhook", state=state) == 0
        assert sample(gateway, "portway_outbox_items", transport="email", state=state) == 0

    out = {"transport": "webhook", "direction": "out"}
    assert sample(gateway, "portway_delivery_seconds_count", **out) == 1
    # from acceptance to delivery: the failed attempt and the backoff before the retry
    assert (sample(gateway, "portway_delivery_seconds_sum", **out) or 0) >= 0.9

    assert post(gateway, b"to alice") == 202
    await alice.expect(from_bot("to alice"))
    inbound = {"transport": "webhook", "direction": "in"}
    await until(
        lambda: sample(gateway, "portway_delivery_seconds_count", **inbound) == 1,
        "the post's way to XMPP is measured",
    )
    assert sample(gateway, "portway_delivery_seconds_bucket", **inbound, le="+Inf") == 1


async def test_irc_connections_and_joined_channels(world: World) -> None:
    gateway, alice = world.gateway, world.alice
    server = {"server": "irc.localhost"}
    assert sample(gateway, "portway_irc_connections", **server) == 0
    assert sample(gateway, "portway_irc_joined_channels", **server) == 0
    alice.send_raw(
        f"<presence to='{ROOM}/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
    )

    def gauges(connections: int, channels: int) -> Callable[[], bool]:
        return lambda: (
            (
                sample(gateway, "portway_irc_connections", **server),
                sample(gateway, "portway_irc_joined_channels", **server),
            )
            == (connections, channels)
        )

    await until(gauges(1, 1), "alice's connection and channel are counted")
    alice.send_raw(f"<presence to='{ROOM}/alice' type='unavailable'/>")
    await until(gauges(0, 0), "both go back to 0 once alice left")


async def test_irc_messages_are_timed_until_their_line_is_on_the_socket(world: World) -> None:
    """IRC sends without the outbox: the time from taking the user's message to writing its
    line to the server counts as delivery out, for room and private messages alike."""
    gateway, alice = world.gateway, world.alice
    out = {"transport": "irc", "direction": "out"}
    assert sample(gateway, "portway_delivery_seconds_count", **out) is None
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#test")
    alice.send_raw(
        f"<presence to='{ROOM}/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
    )
    await bob.expect(r"^:alice!\S+ JOIN :?#test")
    alice.send_raw(
        f"<message to='{ROOM}' type='groupchat' id='m1'><body>timed in the room</body></message>"
    )
    await bob.expect(r"PRIVMSG #test :timed in the room")
    await until(
        lambda: sample(gateway, "portway_delivery_seconds_count", **out) == 1,
        "the room message's way to the IRC server is measured",
    )
    alice.send_raw(
        "<message to='bob%irc.localhost@irc.example.org' type='chat' id='m2'>"
        "<body>timed in private</body></message>"
    )
    await bob.expect(r"PRIVMSG bob :timed in private")
    await until(
        lambda: sample(gateway, "portway_delivery_seconds_count", **out) == 2,
        "the private message's way is measured too",
    )
    assert sample(gateway, "portway_delivery_seconds_bucket", **out, le="+Inf") == 2
    await bob.close()


async def test_process_gc_and_build_info(world: World) -> None:
    page = scrape(world.gateway)
    names = {name for name, _ in page}
    assert {
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_cpu_seconds_total",
        "python_gc_collections_total",
        "python_info",
    } <= names
    builds = [labels for name, labels in page if name == "portway_build_info"]
    assert len(builds) == 1
    assert dict(builds[0])["version"] == "0.1.0"
    assert page[("portway_build_info", builds[0])] == 1
