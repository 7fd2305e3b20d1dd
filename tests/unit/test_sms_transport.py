"""The SMS transport against the local Twilio server, a real store and a real HTTP listener.

The host here stands in for the component: it stores events the way the core does (the real
inbound queue, dedup keys and outbox of mappings/) and drives outbox attempts one by one, so
each rule of the transport is shown without an XMPP server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from support.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from support.ports import free_port

from component.metrics import Metrics
from mappings.registrations import Registration
from mappings.store import Store
from transports.base import (
    Conflict,
    Delivered,
    DeliveryFailed,
    Forbidden,
    NotFound,
    OutboundMessage,
    Pending,
    RegistrationRequired,
    RetryLater,
)
from transports.events import DeliveryReport, InboundMessage, event_from_dict, event_to_dict
from transports.sms import SmsTransport
from transports.sms.settings import SmsSettings

ALICE = "alice@example.org"
ALICE_NUMBER = "+15550001111"
BOB = "bob@example.org"
FRIEND = "+15557654321"


class FakeHost:
    """What the component offers a transport, backed by the real store."""

    def __init__(self, store: Store, port: int) -> None:
        self.domain = "sms.example.org"
        self.store = store
        self.port = port
        self.public_url = f"http://127.0.0.1:{port}"
        self.admins = ["admin@example.org"]
        self.connected = True
        self.app = web.Application()
        self.events: list[Any] = []
        self.hold: asyncio.Event | None = None
        self.metrics = Metrics()

    def is_allowed(self, user_jid: str) -> bool:
        return user_jid.rpartition("@")[2] == "example.org"

    def count_rejected(self, reason: str) -> None:
        self.metrics.inbound_rejected.labels("sms", reason).inc()

    def add_route(self, method: str, path: str, handler: Callable[..., Awaitable[Any]]) -> None:
        self.app.router.add_route(method, path, handler)

    async def deliver(
        self, event: Any, *, dedup_key: str | None = None, durable: bool = False
    ) -> bool:
        if self.hold is not None:
            await self.hold.wait()
        stored = await self.store.inbound.put(
            "sms", event.user_jid, event_to_dict(event), dedup_key=dedup_key
        )
        if stored is None:
            return False
        self.events.append(event)
        return True

    async def enqueue(self, message: OutboundMessage, data: dict[str, Any] | None = None) -> bool:
        item = await self.store.outbox.enqueue(
            "sms",
            message.user_jid,
            message.contact,
            {"message": event_to_dict_message(message), "data": data or {}},
            xmpp_id=message.xmpp_id,
        )
        return item is not None

    async def attempt(self, transport: SmsTransport) -> list[Delivered | Exception]:
        """One pass of the outbox worker: each due item gets one attempt."""
        outcomes: list[Delivered | Exception] = []
        for item in await self.store.outbox.claim("sms"):
            pending = Pending(
                item.id,
                item.attempts,
                OutboundMessage(**item.payload["message"]),
                item.payload["data"],
            )
            try:
                delivered = await transport.deliver(pending)
            except RetryLater as exc:
                await self.store.outbox.retry_later(item.id, exc.reason, time.time())
                outcomes.append(exc)
            except DeliveryFailed as exc:
                await self.store.outbox.mark_failed(item.id, exc.reason)
                outcomes.append(exc)
            else:
                await self.store.outbox.mark_delivered(item.id, delivered.remote_id)
                outcomes.append(delivered)
        return outcomes


def event_to_dict_message(message: OutboundMessage) -> dict[str, Any]:
    import dataclasses

    fields = dataclasses.asdict(message)
    fields["oob_urls"] = tuple(fields["oob_urls"])
    return fields


Gateway = tuple[FakeHost, SmsTransport, FakeTwilio]


async def make_gateway(tmp_path: Path, **options: Any) -> AsyncIterator[Gateway]:
    twilio = FakeTwilio()
    await twilio.start()
    store = await Store.open(f"sqlite:///{tmp_path}/portway.db")
    host = FakeHost(store, free_port())
    settings = SmsSettings(
        jid="sms.example.org",
        secret="component-secret",
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        api_base_url=twilio.base_url,
        **options,
    )
    transport = SmsTransport(settings, host)
    await transport.prepare()
    await transport.start()
    runner = web.AppRunner(host.app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", host.port).start()
    await store.registrations.save(Registration("sms", ALICE, ALICE_NUMBER))
    try:
        yield host, transport, twilio
    finally:
        await transport.stop()
        await runner.cleanup()
        await store.close()
        await twilio.stop()


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    async for made in make_gateway(tmp_path):
        yield made


@pytest.fixture
async def self_service(tmp_path: Path) -> AsyncIterator[Gateway]:
    async for made in make_gateway(tmp_path, self_service=True):
        yield made


def text(
    body: str,
    *,
    user: str = ALICE,
    xmpp_id: str = "m1",
    receipt: bool = True,
    oob: tuple[str, ...] = (),
) -> OutboundMessage:
    return OutboundMessage(
        user_jid=user,
        from_jid=f"{user}/phone",
        contact=FRIEND,
        body=body,
        xmpp_id=xmpp_id,
        receipt_requested=receipt,
        oob_urls=oob,
    )


def rejected(host: FakeHost, reason: str) -> float:
    sample = host.metrics.registry.get_sample_value(
        "portway_inbound_rejected_total", {"transport": "sms", "reason": reason}
    )
    return sample or 0.0


# -- outbound ----------------------------------------------------------------------------------


async def test_a_text_goes_out_from_the_users_number(gateway: Gateway) -> None:
    host, transport, twilio = gateway
    await transport.send(text("hello"))
    assert twilio.creates == []  # stored first, attempted by the outbox worker
    [outcome] = await host.attempt(transport)
    assert isinstance(outcome, Delivered) and not outcome.final
    [message] = twilio.messages
    assert (message.from_, message.to, message.body) == (ALICE_NUMBER, FRIEND, "hello")
    assert message.status_callback == f"{host.public_url}/sms/status"
    assert outcome.remote_id == message.sid


async def test_an_upload_goes_out_as_mms(gateway: Gateway) -> None:
    host, transport, twilio = gateway
    url = "https://upload.example.org/u/cat.jpg"
    await transport.send(text(url, oob=(url,)))
    await host.attempt(transport)
    [create] = twilio.creates
    assert create.fields["MediaUrl"] == [url]
    assert "Body" not in create.fields


async def test_a_500_is_retried_and_the_text_goes_out_once(gateway: Gateway) -> None:
    host, transport, twilio = gateway
    twilio.fail_next(1, status=500)
    await transport.send(text("retry me"))
    [first] = await host.attempt(transport)
    assert isinstance(first, RetryLater)
    [second] = await host.attempt(transport)
    assert isinstance(second, Delivered)
    assert [c.status for c in twilio.creates] == [500, 201]
    assert len(twilio.messages) == 1
    assert await host.attempt(transport) == []


@pytest.mark.parametrize("status", [429, 502, 503])
async def test_rate_limits_and_server_errors_are_temporary(gateway: Gateway, status: int) -> None:
    host, transport, twilio = gateway
    twilio.fail_next(1, status=status, code=20429 if status == 429 else 20500)
    await transport.send(text("later"))
    [outcome] = await host.attempt(transport)
    assert isinstance(outcome, RetryLater)
    assert str(status) in outcome.reason


async def test_a_dropped_connection_is_temporary(gateway: Gateway) -> None:
    host, transport, twilio = gateway
    twilio.disconnect_next(1)
    await transport.send(text("dropped"))
    [outcome] = await host.attempt(transport)
    assert isinstance(outcome, RetryLater)
    assert "unreachable" in outcome.reason
    [outcome] = await host.attempt(transport)
    assert isinstance(outcome, Delivered)
    assert len(twilio.messages) == 1


async def test_twilio_unreachable_is_temporary(gateway: Gateway) -> None:
    host, transport, twilio = gateway
    await twilio.stop()
    await transport.send(text("nobody home"))
    [outcome] = await host.attempt(transport)
    assert isinstance(outcome, RetryLater)


async def test_a_4xx_is_final_and_quotes_twilio(gateway: Gateway) -> None:
    host, transport, twilio = gateway
    twilio.fail_next(1, status=400, code=21610, message="Attempt to send to unsubscribed recipient")
    await transport.send(text("hi"))
    [outcome] = await host.attempt(transport)
    assert isinstance(outcome, DeliveryFailed)
    assert "21610" in outcome.reason
    assert "Attempt to send to unsubscribed recipient" in outcome.reason
    assert await host.attempt(transport) == []


async def test_a_number_not_of_the_account_is_refused_by_twilio(gateway: Gateway) -> None:
    host, transport, _twilio = gateway
    await host.store.registrations.save(Registration("sms", BOB, "+15559990000"))
    await transport.send(text("hi", user=BOB))
    [outcome] = await host.attempt(transport)
    assert isinstance(outcome, DeliveryFailed) and "21606" in outcome.reason


async def test_an_attempt_repeated_after_a_crash_does_not_text_twice(gateway: Gateway) -> None:
    host, transport, twilio = gateway
    await transport.send(text("once"))
    [item] = await host.store.outbox.claim("sms")
    pending = Pending(item.id, item.attempts, text("once"), item.payload["data"])
    first = await transport.deliver(pending)
    # The process dies here, before the worker marks the item delivered; the lease runs out
    # and the item is attempted again.
    again = await transport.deliver(pending)
    assert again.remote_id == first.remote_id
    assert len(twilio.creates) == 1


async def test_a_user_with_no_number_gets_registration_required(gateway: Gateway) -> None:
    host, transport, _twilio = gateway
    with pytest.raises(RegistrationRequired, match="no phone number"):
        await transport.send(text("hi", user=BOB))
    await host.store.registrations.save(Registration("sms", BOB, None))
    with pytest.raises(RegistrationRequired):
        await transport.send(text("hi", user=BOB))
    assert await host.store.outbox.claim("sms") == []


async def test_a_user_of_another_domain_is_forbidden(gateway: Gateway) -> None:
    host, transport, _twilio = gateway
    await host.store.registrations.save(Registration("sms", "mallory@evil.example", "+15550002222"))
    with pytest.raises(Forbidden):
        await transport.send(text("spam", user="mallory@evil.example"))
    assert await host.store.outbox.claim("sms") == []


# -- status callbacks --------------------------------------------------------------------------


async def sent_sid(host: FakeHost, transport: SmsTransport, **options: Any) -> str:
    await transport.send(text("status?", **options))
    [outcome] = await host.attempt(transport)
    assert isinstance(outcome, Delivered) and outcome.remote_id
    return outcome.remote_id


async def test_delivered_sends_the_receipt_once(gateway: Gateway) -> None:
    host, transport, twilio = gateway
    sid = await sent_sid(host, transport)
    for status in ("sent", "delivered", "delivered", "sent"):
        assert await twilio.post_status(sid, status) == (
            200,
            '<?xml version="1.0" encoding="UTF-8"?><Response/>',
        )
    assert host.events == [DeliveryReport(f"{ALICE}/phone", FRIEND, "m1", delivered=True)]
    sms = await transport.sent.by_sid(sid)
    assert sms is not None and sms.status == "delivered"


async def test_no_receipt_unless_asked(gateway: Gateway) -> None:
    host, transport, twilio = gateway
    sid = await sent_sid(host, transport, receipt=False)
    await twilio.post_status(sid, "delivered")
    assert host.events == []


async def test_undelivered_gives_the_carrier_error_in_words(gateway: Gateway) -> None:
    host, transport, twilio = gateway
    sid = await sent_sid(host, transport, receipt=False)
    await twilio.post_status(sid, "undelivered", error_code=30003)
    [report] = host.events
    assert isinstance(report, DeliveryReport) and not report.delivered
    assert report.xmpp_id == "m1"
    assert "switched off or out of reach" in report.reason and "30003" in report.reason


async def test_failed_without_a_code_still_says_so(gateway: Gateway) -> None:
    host, transport, twilio = gateway
    sid = await sent_sid(host, transport)
    await twilio.post_status(sid, "failed")
    [report] = host.events
    assert report.reason == "The text failed."


async def test_a_badly_signed_status_is_refused(gateway: Gateway) -> None:
    host, transport, twilio = gateway
    sid = await sent_sid(host, transport)
    fields = {"MessageSid": sid, "MessageStatus": "undelivered", "AccountSid": ACCOUNT_SID}
    status, _ = await twilio.post_signed(f"{host.public_url}/sms/status", fields, signature="x")
    assert status == 403
    assert host.events == []
    sms = await transport.sent.by_sid(sid)
    assert sms is not None and sms.status == "queued"


async def test_a_status_for_an_unknown_message_is_ignored(gateway: Gateway) -> None:
    host, _transport, twilio = gateway
    fields = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered"}
    assert (await twilio.post_signed(f"{host.public_url}/sms/status", fields))[0] == 200
    assert host.events == []


# -- inbound -----------------------------------------------------------------------------------


def inbound_url(host: FakeHost) -> str:
    return f"{host.public_url}/sms/inbound"


async def test_a_signed_text_reaches_the_bound_user(gateway: Gateway) -> None:
    host, _transport, twilio = gateway
    status, body = await twilio.post_inbound(inbound_url(host), FRIEND, ALICE_NUMBER, "hi alice")
    assert (status, body) == (200, '<?xml version="1.0" encoding="UTF-8"?><Response/>')
    [event] = host.events
    assert isinstance(event, InboundMessage)
    assert (event.user_jid, event.contact, event.body) == (ALICE, FRIEND, "hi alice")
    assert event.nick == "+1 555-765-4321"
    assert event_from_dict(event_to_dict(event)) == event


async def test_a_short_code_sender_is_kept_as_it_is(gateway: Gateway) -> None:
    host, _transport, twilio = gateway
    await twilio.post_inbound(inbound_url(host), "72345", ALICE_NUMBER, "Your code is 1234")
    [event] = host.events
    assert event.contact == "72345"


@pytest.mark.parametrize("signature", ["", "d3Jvbmc=", "computed-for-other-fields"])
async def test_a_badly_signed_text_is_refused(gateway: Gateway, signature: str) -> None:
    host, _transport, twilio = gateway
    if signature == "computed-for-other-fields":
        signature = twilio.sign(inbound_url(host), {"Body": "something else"})
    before = rejected(host, "bad-signature")
    status, _ = await twilio.post_inbound(
        inbound_url(host), FRIEND, ALICE_NUMBER, "forged", signature=signature
    )
    assert status == 403
    assert host.events == []
    assert rejected(host, "bad-signature") == before + 1


async def test_a_signature_for_another_url_is_refused(gateway: Gateway) -> None:
    host, _transport, twilio = gateway
    fields = twilio.inbound_fields(FRIEND, ALICE_NUMBER, "hi")
    signature = twilio.sign("https://elsewhere.example/sms/inbound", fields)
    status, _ = await twilio.post_signed(inbound_url(host), fields, signature=signature)
    assert status == 403 and host.events == []


async def test_an_unknown_number_is_answered_logged_counted_and_dropped(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    host, _transport, twilio = gateway
    before = rejected(host, "unknown-number")
    status, body = await twilio.post_inbound(inbound_url(host), FRIEND, "+15550002222", "hello?")
    assert (status, body) == (200, '<?xml version="1.0" encoding="UTF-8"?><Response/>')
    assert host.events == []
    assert rejected(host, "unknown-number") == before + 1
    assert "+15550002222" in caplog.text


async def test_a_duplicate_message_sid_is_delivered_once(gateway: Gateway) -> None:
    host, _transport, twilio = gateway
    for _ in range(3):
        status, _ = await twilio.post_inbound(
            inbound_url(host), FRIEND, ALICE_NUMBER, "once", message_sid="SM" + "a" * 32
        )
        assert status == 200
    assert len(host.events) == 1


async def test_the_answer_waits_until_the_text_is_stored(gateway: Gateway) -> None:
    host, _transport, twilio = gateway
    host.hold = asyncio.Event()
    posting = asyncio.create_task(
        twilio.post_inbound(inbound_url(host), FRIEND, ALICE_NUMBER, "wait for it")
    )
    await asyncio.sleep(0.3)
    assert not posting.done()
    host.hold.set()
    assert (await posting)[0] == 200
    assert len(host.events) == 1


async def test_a_store_failure_is_not_acknowledged(gateway: Gateway) -> None:
    host, _transport, twilio = gateway

    async def broken(*_args: Any, **_kwargs: Any) -> bool:
        raise RuntimeError("database is gone")

    host.deliver = broken  # type: ignore[method-assign]
    status, _ = await twilio.post_inbound(inbound_url(host), FRIEND, ALICE_NUMBER, "lost?")
    assert status == 500  # Twilio will retry; nothing was acknowledged


async def test_malformed_inbound_requests_get_400(gateway: Gateway) -> None:
    host, _transport, twilio = gateway
    fields = twilio.inbound_fields("not-a-number", ALICE_NUMBER, "hi")
    assert (await twilio.post_signed(inbound_url(host), fields))[0] == 400
    fields = twilio.inbound_fields(FRIEND, ALICE_NUMBER, "hi")
    fields["AccountSid"] = "AC" + "f" * 32
    assert (await twilio.post_signed(inbound_url(host), fields))[0] == 400
    assert host.events == []


async def test_an_mms_image_is_fetched_and_served_back(gateway: Gateway) -> None:
    host, _transport, twilio = gateway
    image = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
    status, _ = await twilio.post_inbound(
        inbound_url(host), FRIEND, ALICE_NUMBER, "look", media=[("image/png", image)]
    )
    assert status == 200
    [event] = host.events
    [url] = event.oob_urls
    assert url.startswith(f"{host.public_url}/media/") and url.endswith(".png")
    assert event.body == f"look\n{url}"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/png"
        assert await response.read() == image
        async with session.get(url.replace("/media/", "/media/x")) as missing:
            assert missing.status == 404


async def test_an_oversized_attachment_is_named_not_served(tmp_path: Path) -> None:
    async for host, _transport, twilio in make_gateway(tmp_path, media_max_bytes=1000):
        await twilio.post_inbound(
            inbound_url(host),
            FRIEND,
            ALICE_NUMBER,
            "big",
            media=[("image/jpeg", b"x" * 2000), ("image/gif", b"GIF89a")],
        )
        [event] = host.events
        assert len(event.oob_urls) == 1 and event.oob_urls[0].endswith(".gif")
        assert "[attachment 1 not shown: it is 2.0 kB, over the 1.0 kB limit]" in event.body


# -- registration and the admin command --------------------------------------------------------


async def test_self_service_registers_a_free_number_of_the_account(self_service: Gateway) -> None:
    _host, transport, _twilio = self_service
    registered = await transport.register(BOB, {"number": "(555) 000-2222"})
    assert registered.address == "+15550002222"


async def test_self_service_refuses_a_number_of_another_account(self_service: Gateway) -> None:
    _host, transport, _twilio = self_service
    with pytest.raises(NotFound, match="not a number of this gateway's Twilio account"):
        await transport.register(BOB, {"number": "+15559990000"})


async def test_self_service_refuses_a_number_bound_to_someone_else(self_service: Gateway) -> None:
    _host, transport, _twilio = self_service
    with pytest.raises(Conflict):
        await transport.register(BOB, {"number": ALICE_NUMBER})


async def test_without_self_service_only_admins_bind(gateway: Gateway) -> None:
    _host, transport, _twilio = gateway
    with pytest.raises(Forbidden, match="administrator"):
        await transport.register(BOB, {"number": "+15550002222"})
    assert (await transport.register(ALICE, {})).address == ALICE_NUMBER


async def test_the_admin_command_binds_a_number(gateway: Gateway) -> None:
    host, transport, _twilio = gateway
    [command] = [c for c in transport.commands() if c.node == "sms-bind-number"]
    assert command.admin_only
    result = await command.run("admin@example.org", {"jid": BOB, "number": "555 000 2222"})
    assert "+15550002222" in result.text
    registration = await host.store.registrations.get("sms", BOB)
    assert registration is not None and registration.address == "+15550002222"
    with pytest.raises(Conflict, match=ALICE):
        await command.run("admin@example.org", {"jid": BOB, "number": ALICE_NUMBER})
    with pytest.raises(Forbidden):
        outsider = {"jid": "eve@evil.example", "number": "+15550003333"}
        await command.run("admin@example.org", outsider)


def test_addresses(tmp_path: Path) -> None:
    settings = SmsSettings(
        jid="sms.example.org",
        secret="component-secret",
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        default_region="GB",
    )
    transport = SmsTransport(settings, FakeHost(store=None, port=0))  # type: ignore[arg-type]
    assert transport.address_from_prompt("020 7183 8750") == "+442071838750"
    assert transport.parse_address("+442071838750") == "+442071838750"
    assert transport.parse_address(r"020\207183\208750") == "+442071838750"
    assert transport.format_address("+442071838750") == "+442071838750"
    assert transport.display_name("+442071838750") == "+44 20 7183 8750"


async def test_malformed_callbacks_are_counted_by_reason(gateway: Gateway) -> None:
    host, _transport, twilio = gateway
    other_account = {**twilio.inbound_fields(FRIEND, ALICE_NUMBER, "hi"), "AccountSid": "ACx"}
    before = rejected(host, "bad-request")
    status, _ = await twilio.post_signed(inbound_url(host), other_account)
    assert status == 400
    bad_number = twilio.inbound_fields("not a number", ALICE_NUMBER, "hi")
    status, _ = await twilio.post_signed(inbound_url(host), bad_number)
    assert status == 400
    assert rejected(host, "bad-request") == before + 2
    assert host.events == []
