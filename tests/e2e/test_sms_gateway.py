"""SMS end to end: a real Prosody, slixmpp users, `portway run`, and the local Twilio server.

Alice's number is bound with the admin CLI, as in production. Twilio is played by
tests/support/fake_twilio.py, which answers the real twilio library's REST calls and signs the
webhooks it posts to the gateway exactly as Twilio does.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from slixmpp import Message
from slixmpp.xmlstream import StanzaBase
from support.fake_twilio import FakeTwilio, sms_section
from support.fixture_types import ConnectXmpp, MakeProsody
from support.gateway import GatewayProcess
from support.prosody import Prosody
from support.xmpp_client import XmppClient

pytestmark = pytest.mark.e2e

SMS = "sms.example.org"
SECRET = "sms-component-s3cret"
ALICE_NUMBER = "+15550001111"
FRIEND = "+15557654321"
FRIEND_JID = f"{FRIEND}@{SMS}"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


@dataclass
class World:
    prosody: Prosody
    gateway: GatewayProcess
    twilio: FakeTwilio
    alice: XmppClient

    @property
    def inbound_url(self) -> str:
        return f"{self.gateway.base_url}/sms/inbound"


@pytest.fixture
async def world(
    tmp_path: Path, make_prosody: MakeProsody, xmpp_client: ConnectXmpp
) -> AsyncIterator[World]:
    prosody = make_prosody(components={SMS: SECRET}, users={"alice": "alice-pw", "bob": "bob-pw"})
    async with FakeTwilio() as twilio:
        gateway = GatewayProcess(
            tmp_path / "gateway",
            {
                "xmpp": {"host": "127.0.0.1", "port": prosody.component_port},
                "admins": ["admin@example.org"],
                "allowed_domains": ["example.org"],
                "transports": {
                    "sms": sms_section(twilio, SMS, SECRET),
                },
            },
        )
        bound = gateway.cli("mappings", "add", "sms", "alice@example.org", ALICE_NUMBER)
        assert bound.returncode == 0, bound.stderr
        await gateway.astart()
        alice = await xmpp_client("alice@example.org", "alice-pw", prosody)
        try:
            yield World(prosody, gateway, twilio, alice)
        finally:
            gateway.kill()


def send_sms(client: XmppClient, body: str, *, receipt: bool = True, to: str = FRIEND_JID) -> str:
    msg = client.xmpp.make_message(mto=to, mbody=body, mtype="chat")
    if receipt:
        msg["request_receipt"] = True
    msg.send()
    return str(msg["id"])


def receipt_for(xmpp_id: str):  # type: ignore[no-untyped-def]
    def matches(stanza: StanzaBase) -> bool:
        return isinstance(stanza, Message) and stanza["receipt"] == xmpp_id

    return matches


def error_for(xmpp_id: str):  # type: ignore[no-untyped-def]
    def matches(stanza: StanzaBase) -> bool:
        return isinstance(stanza, Message) and stanza["type"] == "error" and stanza["id"] == xmpp_id

    return matches


def metrics(gateway: GatewayProcess) -> str:
    with urllib.request.urlopen(f"{gateway.base_url}/metrics", timeout=5) as response:
        return response.read().decode()


async def test_a_signed_text_reaches_the_user_and_a_forged_one_does_not(world: World) -> None:
    status, body = await world.twilio.post_inbound(
        world.inbound_url, FRIEND, ALICE_NUMBER, "hello from a phone"
    )
    assert (status, body) == (200, EMPTY_TWIML)
    msg = await world.alice.expect_message(from_=FRIEND_JID, body="hello from a phone")
    assert msg["nick"]["nick"] == "+1 555-765-4321"

    status, _ = await world.twilio.post_inbound(
        world.inbound_url, FRIEND, ALICE_NUMBER, "forged", signature="Zm9yZ2Vk"
    )
    assert status == 403
    status, _ = await world.twilio.post_inbound(
        world.inbound_url, FRIEND, ALICE_NUMBER, "unsigned", signature=""
    )
    assert status == 403

    status, body = await world.twilio.post_inbound(
        world.inbound_url, FRIEND, "+15550002222", "to nobody"
    )
    assert (status, body) == (200, EMPTY_TWIML)
    assert (
        'portway_inbound_rejected_total{reason="unknown-number",transport="sms"} 1.0'
        in await asyncio.to_thread(metrics, world.gateway)
    )
    assert 'reason="bad-signature",transport="sms"} 2.0' in await asyncio.to_thread(
        metrics, world.gateway
    )
    with pytest.raises(TimeoutError):
        await world.alice.expect_message(from_=FRIEND_JID, timeout=1.5)


async def test_a_duplicate_message_sid_gives_one_message(world: World) -> None:
    for _ in range(2):
        status, _ = await world.twilio.post_inbound(
            world.inbound_url, FRIEND, ALICE_NUMBER, "only once", message_sid="SM" + "b" * 32
        )
        assert status == 200
    await world.alice.expect_message(from_=FRIEND_JID, body="only once")
    with pytest.raises(TimeoutError):
        await world.alice.expect_message(from_=FRIEND_JID, body="only once", timeout=1.5)


async def test_an_mms_image_is_served_back(world: World) -> None:
    image = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40
    status, _ = await world.twilio.post_inbound(
        world.inbound_url, FRIEND, ALICE_NUMBER, "a picture", media=[("image/jpeg", image)]
    )
    assert status == 200
    msg = await world.alice.expect_message(from_=FRIEND_JID, contains="a picture")
    url = msg["oob"]["url"]
    assert url.startswith(f"{world.gateway.base_url}/media/")
    assert msg["body"] == f"a picture\n{url}"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/jpeg"
        assert await response.read() == image


async def test_outbound_with_a_receipt_on_delivered(world: World) -> None:
    xmpp_id = send_sms(world.alice, "hi from xmpp")
    [sent] = await world.twilio.wait_for_messages(1)
    assert (sent.from_, sent.to, sent.body) == (ALICE_NUMBER, FRIEND, "hi from xmpp")
    assert sent.status_callback == f"{world.gateway.base_url}/sms/status"
    assert (await world.twilio.post_status(sent.sid, "sent"))[0] == 200
    assert (await world.twilio.post_status(sent.sid, "delivered"))[0] == 200
    await world.alice.expect(receipt_for(xmpp_id))


async def test_undelivered_gives_an_error_in_words(world: World) -> None:
    xmpp_id = send_sms(world.alice, "to a phone that is off")
    [sent] = await world.twilio.wait_for_messages(1)
    await world.twilio.post_status(sent.sid, "undelivered", error_code=30003)
    error = await world.alice.expect(error_for(xmpp_id))
    assert "switched off or out of reach" in error["error"]["text"]


async def test_a_final_twilio_error_quotes_code_and_message(world: World) -> None:
    world.twilio.fail_next(1, status=400, code=21610, message="Attempt to send to unsubscribed")
    xmpp_id = send_sms(world.alice, "after STOP")
    error = await world.alice.expect(error_for(xmpp_id))
    assert "21610" in error["error"]["text"]
    assert "Attempt to send to unsubscribed" in error["error"]["text"]
    assert world.twilio.messages == []


async def test_a_500_then_success_sends_one_sms(world: World) -> None:
    world.twilio.fail_next(1, status=500)
    send_sms(world.alice, "second time lucky")
    await world.twilio.wait_for_messages(1, timeout=15)
    await asyncio.sleep(1)
    assert [attempt.status for attempt in world.twilio.creates] == [500, 201]
    assert len(world.twilio.messages) == 1


async def test_an_sms_in_the_outbox_survives_a_gateway_restart(world: World) -> None:
    world.twilio.fail_next(1000, status=503, code=20503, message="Service unavailable")
    send_sms(world.alice, "survive the restart")
    async with asyncio.timeout(10):
        while not world.twilio.creates:
            await asyncio.sleep(0.05)
    world.gateway.kill()
    world.twilio.clear_failures()
    await world.gateway.astart()
    [sent] = await world.twilio.wait_for_messages(1, timeout=15)
    assert sent.body == "survive the restart"
    await asyncio.sleep(1)
    assert len(world.twilio.messages) == 1


async def test_a_user_with_no_number_is_refused(world: World, xmpp_client: ConnectXmpp) -> None:
    bob = await xmpp_client("bob@example.org", "bob-pw", world.prosody)
    xmpp_id = send_sms(bob, "can I text?")
    error = await bob.expect(error_for(xmpp_id))
    assert error["error"]["condition"] == "registration-required"
    await asyncio.sleep(0.5)
    assert world.twilio.creates == []


async def test_an_invalid_number_is_jid_malformed_with_the_reason(world: World) -> None:
    xmpp_id = send_sms(world.alice, "to nowhere", to=f"5551234@{SMS}")
    error = await world.alice.expect(error_for(xmpp_id))
    assert error["error"]["condition"] == "jid-malformed"
    assert "add the area code" in error["error"]["text"]
    assert world.twilio.creates == []
