"""The email transport against a real store, its real SMTP listener and an SMTP sink.

The host stands in for the component: it stores events in the real inbound queue (with the
core's dedup keys) and the outbox is driven one attempt at a time, so each rule of the
transport shows without an XMPP server. Mail goes in over real SMTP with aiosmtplib.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import aiosmtplib
import pytest
from aiohttp import web
from support.ports import free_port
from support.smtp_sink import SmtpSink

from mappings.registrations import Registration
from mappings.store import Store
from transports.base import (
    Delivered,
    DeliveryFailed,
    GatewayError,
    OutboundMessage,
    Pending,
    RegistrationRequired,
    RetryLater,
)
from transports.email import EmailTransport
from transports.email.settings import EmailSettings
from transports.events import DeliveryReport, InboundMessage, event_to_dict

DOMAIN = "mail.example.org"
ALICE = "alice@example.org"
JULIET = "juliet@capulet.lit"


class FakeHost:
    """What the component offers a transport, backed by the real store."""

    def __init__(self, store: Store, port: int) -> None:
        self.domain = "email.example.org"
        self.store = store
        self.public_url = f"http://127.0.0.1:{port}"
        self.admins: list[str] = []
        self.connected = True
        self.app = web.Application()
        self.events: list[Any] = []
        self.rejected: list[str] = []
        self.broken = False

    def is_allowed(self, user_jid: str) -> bool:
        return user_jid.rpartition("@")[2] == "example.org"

    def count_rejected(self, reason: str) -> None:
        self.rejected.append(reason)

    def add_route(self, method: str, path: str, handler: Callable[..., Awaitable[Any]]) -> None:
        self.app.router.add_route(method, path, handler)

    async def deliver(
        self, event: Any, *, dedup_key: str | None = None, durable: bool = False
    ) -> bool:
        assert durable, "mail is answered with 250 only after it is stored"
        if self.broken:
            raise ConnectionError("the database is away")
        stored = await self.store.inbound.put(
            "email", event.user_jid, event_to_dict(event), dedup_key=dedup_key
        )
        if stored is None:
            return False
        self.events.append(event)
        return True

    async def enqueue(self, message: OutboundMessage, data: dict[str, Any] | None = None) -> bool:
        key = f"{message.user_jid}|{message.contact}|{message.xmpp_id}" if message.xmpp_id else None
        item = await self.store.outbox.enqueue(
            "email",
            message.user_jid,
            message.contact,
            {"message": dataclasses.asdict(message), "data": data or {}},
            xmpp_id=message.xmpp_id,
            dedup_key=key,
        )
        return item is not None


@dataclasses.dataclass
class Rig:
    transport: EmailTransport
    host: FakeHost
    sink: SmtpSink
    smtp_port: int

    async def next_pending(self) -> Pending:
        items = await self.host.store.outbox.claim("email")
        assert len(items) == 1, items
        item = items[0]
        fields = {
            k: tuple(v) if isinstance(v, list) else v for k, v in item.payload["message"].items()
        }
        return Pending(item.id, item.attempts, OutboundMessage(**fields), item.payload["data"])

    async def attempt(self) -> Delivered:
        pending = await self.next_pending()
        try:
            result = await self.transport.deliver(pending)
        except RetryLater as retry:
            await self.host.store.outbox.retry_later(pending.item_id, retry.reason, 0)
            raise
        await self.host.store.outbox.mark_delivered(pending.item_id, result.remote_id)
        return result

    async def smtp(self) -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=self.smtp_port, start_tls=False)
        await client.connect()
        return client

    async def mail_in(
        self, message: EmailMessage | bytes, sender: str = JULIET, to: str = f"alice@{DOMAIN}"
    ) -> str:
        """Send over SMTP; return the reply to DATA (or raise aiosmtplib's refusal)."""
        client = await self.smtp()
        try:
            raw = message if isinstance(message, bytes) else message.as_bytes()
            _errors, reply = await client.sendmail(sender, [to], raw)
            return reply
        finally:
            client.close()


def settings(smtp_port: int, sink_port: int, **extra: Any) -> EmailSettings:
    return EmailSettings.model_validate(
        {
            "jid": "email.example.org",
            "secret": "s3cr3t-for-tests",
            "domain": DOMAIN,
            "smtp_listen": f"127.0.0.1:{smtp_port}",
            "smarthost": {
                "host": "127.0.0.1",
                "port": sink_port,
                "starttls": False,
                **extra.pop("smarthost", {}),
            },
            "max_message_bytes": 200_000,
            "max_attachment_bytes": 50_000,
            **extra,
        }
    )


@pytest.fixture
async def make_rig(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Rig]]]:
    cleanups: list[Callable[[], Awaitable[Any]]] = []

    async def make(**extra: Any) -> Rig:
        store = await Store.open(f"sqlite:///{tmp_path / 'portway.db'}")
        cleanups.append(store.close)
        http_port = free_port()
        host = FakeHost(store, http_port)
        sink = SmtpSink(auth=extra.pop("sink_auth", None))
        await sink.start()
        cleanups.append(sink.stop)
        smtp_port = free_port()
        transport = EmailTransport(settings(smtp_port, sink.port, **extra), host)
        await transport.prepare()
        await transport.start()
        cleanups.append(transport.stop)
        runner = web.AppRunner(host.app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", http_port).start()
        cleanups.append(runner.cleanup)
        await store.registrations.save(Registration("email", ALICE, "alice", {"name": "Alice"}))
        return Rig(transport, host, sink, smtp_port)

    yield make
    for cleanup in reversed(cleanups):
        await cleanup()


def juliet_mail(
    text: str = "Wherefore art thou?", message_id: str = "<m1@capulet.lit>", **headers: str
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = '"Juliet Capulet" <juliet@capulet.lit>'
    message["To"] = f"alice@{DOMAIN}"
    message["Subject"] = headers.pop("Subject", "Balcony")
    message["Message-ID"] = message_id
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(text)
    return message


def outbound(
    body: str = "Here, at the window", xmpp_id: str = "x1", **fields: Any
) -> OutboundMessage:
    return OutboundMessage(
        user_jid=ALICE,
        from_jid=f"{ALICE}/phone",
        contact=JULIET,
        body=body,
        xmpp_id=xmpp_id,
        **fields,
    )


# -- inbound ---------------------------------------------------------------------------------


async def test_mail_in_reaches_the_user(make_rig: Callable[..., Awaitable[Rig]]) -> None:
    rig = await make_rig()
    reply = await rig.mail_in(juliet_mail())
    assert reply.startswith("2.0.0 Message accepted")
    [event] = rig.host.events
    assert isinstance(event, InboundMessage)
    assert (event.user_jid, event.contact, event.body) == (ALICE, JULIET, "Wherefore art thou?")
    assert event.nick == "Juliet Capulet"
    assert event.subject == "Balcony"
    assert event.remote_id == "<m1@capulet.lit>"
    assert event.thread
    assert rig.transport.format_address(event.contact) == r"juliet\40capulet.lit"
    # stored durably before the 250: it is in the inbound queue
    assert await rig.host.store.inbound.backlog("email") == 1


async def test_unknown_users_and_other_domains_are_refused_at_rcpt(
    make_rig: Callable[..., Awaitable[Rig]],
) -> None:
    rig = await make_rig()
    await rig.host.store.registrations.save(Registration("email", "eve@evil.example", "eve"))
    client = await rig.smtp()
    try:
        await client.ehlo()
        await client.mail(JULIET)
        for rcpt, code, text in (
            (f"nobody@{DOMAIN}", 550, "5.1.1"),
            ("bob@gmail.example", 550, "5.7.1 Relaying denied"),
            (f"alice@{DOMAIN}.evil.example", 550, "5.7.1 Relaying denied"),
            (f"eve@{DOMAIN}", 550, "5.1.1"),  # bound, but eve's server is not allowed
        ):
            with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
                await client.rcpt(rcpt)
            assert refused.value.code == code
            assert text in refused.value.message
        accepted = await client.rcpt(f"Alice@{DOMAIN.upper()}")
        assert accepted.code == 250
    finally:
        client.close()
    assert rig.host.events == []


async def test_a_binding_removed_before_data_is_refused(
    make_rig: Callable[..., Awaitable[Rig]],
) -> None:
    rig = await make_rig()
    client = await rig.smtp()
    try:
        await client.ehlo()
        await client.mail(JULIET)
        await client.rcpt(f"alice@{DOMAIN}")
        await rig.host.store.registrations.remove("email", ALICE)
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await client.data(juliet_mail().as_bytes())
        assert refused.value.code == 550
    finally:
        client.close()
    assert rig.host.events == []


async def test_size_limit_is_552(make_rig: Callable[..., Awaitable[Rig]]) -> None:
    rig = await make_rig()
    with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
        await rig.mail_in(juliet_mail("x" * 300_000))
    assert refused.value.code == 552
    assert rig.host.events == []
    # and a mail under the limit still goes through afterwards
    await rig.mail_in(juliet_mail("short"))
    assert len(rig.host.events) == 1


async def test_a_resent_message_id_is_delivered_once(
    make_rig: Callable[..., Awaitable[Rig]],
) -> None:
    rig = await make_rig()
    first = await rig.mail_in(juliet_mail())
    again = await rig.mail_in(juliet_mail())
    assert first.startswith("2.0.0") and again.startswith("2.0.0")
    assert len(rig.host.events) == 1


async def test_plain_spam_is_refused(make_rig: Callable[..., Awaitable[Rig]]) -> None:
    rig = await make_rig()
    no_from = juliet_mail()
    del no_from["From"]
    with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
        await rig.mail_in(no_from)
    assert refused.value.code == 550 and "From header" in refused.value.message
    with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
        await rig.mail_in(juliet_mail(), sender="")
    assert refused.value.code == 550 and "null sender" in refused.value.message
    assert rig.host.events == []


async def test_an_unreadable_from_falls_back_to_the_envelope(
    make_rig: Callable[..., Awaitable[Rig]],
) -> None:
    rig = await make_rig()
    raw = (
        b"From: Juliet <<not an address>>\r\nSubject: hi\r\nMessage-ID: <u@capulet.lit>\r\n"
        b'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhalf a mail"
    )
    await rig.mail_in(raw)
    [event] = rig.host.events
    assert (event.contact, event.body) == (JULIET, "half a mail")


async def test_storage_failure_is_a_451_and_the_retry_is_kept(
    make_rig: Callable[..., Awaitable[Rig]],
) -> None:
    rig = await make_rig()
    rig.host.broken = True
    with pytest.raises(aiosmtplib.SMTPResponseException) as deferred:
        await rig.mail_in(juliet_mail())
    assert deferred.value.code == 451
    rig.host.broken = False
    await rig.mail_in(juliet_mail())
    assert len(rig.host.events) == 1


async def test_attachments_are_served_and_linked(make_rig: Callable[..., Awaitable[Rig]]) -> None:
    rig = await make_rig()
    message = juliet_mail("a picture")
    message.add_attachment(b"\x89PNG small", maintype="image", subtype="png", filename="r.png")
    message.add_attachment(b"x" * 60_000, maintype="application", subtype="pdf", filename="big.pdf")
    await rig.mail_in(message)
    [event] = rig.host.events
    [url] = event.oob_urls
    assert url.startswith(f"{rig.host.public_url}/media/") and url.endswith(".png")
    assert event.body.startswith("a picture\n")
    assert "[attachment big.pdf not kept" in event.body
    assert event.body.endswith(url)
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert await response.read() == b"\x89PNG small"


async def test_roster_policy(make_rig: Callable[..., Awaitable[Rig]]) -> None:
    rig = await make_rig(inbound_policy="roster")
    with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
        await rig.mail_in(juliet_mail())
    assert refused.value.code == 550 and "contacts" in refused.value.message
    # once Alice writes to Juliet, Juliet's answers get through
    await rig.transport.send(outbound())
    await rig.mail_in(juliet_mail(message_id="<m2@capulet.lit>"))
    assert len(rig.host.events) == 1


# -- outbound --------------------------------------------------------------------------------


async def test_mail_out_through_the_smarthost(make_rig: Callable[..., Awaitable[Rig]]) -> None:
    rig = await make_rig()
    await rig.transport.send(outbound("Schöne Grüße", oob_urls=("https://x.example/a.png",)))
    result = await rig.attempt()
    [sent] = await rig.sink.wait_for(1)
    assert sent.mail_from == f"alice@{DOMAIN}"
    assert sent.rcpt_tos == (JULIET,)
    mail = sent.message
    assert mail["From"].addresses[0].display_name == "Alice"
    assert mail["From"].addresses[0].addr_spec == f"alice@{DOMAIN}"
    assert str(mail["Subject"]) == "Message from XMPP"
    assert str(mail["Message-ID"]) == result.remote_id
    assert result.remote_id and result.remote_id.endswith(f"@{DOMAIN}>")
    assert mail.get_content().replace("\r\n", "\n") == "Schöne Grüße\nhttps://x.example/a.png\n"


async def test_refusals_before_the_outbox(make_rig: Callable[..., Awaitable[Rig]]) -> None:
    rig = await make_rig(send_rate_per_hour=2)
    with pytest.raises(RegistrationRequired):
        await rig.transport.send(dataclasses.replace(outbound(), user_jid="bob@example.org"))
    await rig.host.store.registrations.save(Registration("email", "eve@evil.example", "eve"))
    with pytest.raises(GatewayError) as forbidden:
        await rig.transport.send(dataclasses.replace(outbound(), user_jid="eve@evil.example"))
    assert forbidden.value.condition == "forbidden"
    await rig.transport.send(outbound(xmpp_id="a"))
    await rig.transport.send(outbound(xmpp_id="a"))  # the same stanza again: one mail, one count
    await rig.transport.send(outbound(xmpp_id="b"))
    with pytest.raises(GatewayError) as limited:
        await rig.transport.send(outbound(xmpp_id="c"))
    assert limited.value.condition == "resource-constraint"
    assert (await rig.host.store.outbox.counts()) == {("email", "pending"): 2}
    await rig.transport.send(outbound("", xmpp_id="d"))  # a chat state: nothing to mail


async def test_reply_is_threaded_onto_the_last_inbound_mail(
    make_rig: Callable[..., Awaitable[Rig]],
) -> None:
    rig = await make_rig()
    root = "<root@capulet.lit>"
    await rig.mail_in(juliet_mail(References=root, In_Reply_To=root))
    thread = rig.host.events[0].thread
    await rig.transport.send(outbound())
    await rig.attempt()
    [sent] = await rig.sink.wait_for(1)
    assert str(sent.message["In-Reply-To"]) == "<m1@capulet.lit>"
    assert str(sent.message["References"]) == "<root@capulet.lit> <m1@capulet.lit>"
    assert str(sent.message["Subject"]) == "Re: Balcony"
    # Juliet answers that: the same XMPP thread
    ours = str(sent.message["Message-ID"])
    await rig.mail_in(
        juliet_mail("again", "<m3@capulet.lit>", In_Reply_To=ours, Subject="Re: Balcony")
    )
    assert rig.host.events[1].thread == thread


async def test_xmpp_thread_picks_the_mail_to_reply_to(
    make_rig: Callable[..., Awaitable[Rig]],
) -> None:
    rig = await make_rig()
    await rig.mail_in(juliet_mail("first", "<a@capulet.lit>", Subject="First"))
    await rig.mail_in(juliet_mail("second", "<b@capulet.lit>", Subject="Second"))
    first_thread = rig.host.events[0].thread
    assert first_thread != rig.host.events[1].thread
    await rig.transport.send(outbound(thread=first_thread))
    await rig.attempt()
    [sent] = await rig.sink.wait_for(1)
    assert str(sent.message["In-Reply-To"]) == "<a@capulet.lit>"
    assert str(sent.message["Subject"]) == "Re: First"
    # a new thread from the client starts a new mail conversation, with its own subject
    await rig.transport.send(outbound(xmpp_id="x2", thread="new-thread", subject="News"))
    await rig.attempt()
    sent = (await rig.sink.wait_for(2))[1]
    assert sent.message["In-Reply-To"] is None
    assert str(sent.message["Subject"]) == "News"
    await rig.mail_in(
        juliet_mail("re news", "<c@capulet.lit>", In_Reply_To=str(sent.message["Message-ID"]))
    )
    assert rig.host.events[2].thread == "new-thread"


async def test_4xx_and_outages_are_retried_with_the_same_message_id(
    make_rig: Callable[..., Awaitable[Rig]],
) -> None:
    rig = await make_rig()
    await rig.transport.send(outbound())
    rig.sink.fail_next(1, "451 4.7.1 Greylisted")
    with pytest.raises(RetryLater) as greylisted:
        await rig.attempt()
    assert "451 4.7.1 Greylisted" in greylisted.value.reason
    await rig.sink.stop()
    with pytest.raises(RetryLater):
        await rig.attempt()
    await rig.sink.start()
    result = await rig.attempt()
    [sent] = await rig.sink.wait_for(1)
    assert rig.sink.attempts == 2
    assert str(sent.message["Message-ID"]) == result.remote_id


async def test_5xx_is_final_with_the_servers_reply(make_rig: Callable[..., Awaitable[Rig]]) -> None:
    rig = await make_rig()
    await rig.transport.send(outbound())
    rig.sink.fail_next(1, "554 5.7.1 Spam detected")
    with pytest.raises(DeliveryFailed) as failed:
        await rig.attempt()
    assert failed.value.reason == "The mail server refused the message: 554 5.7.1 Spam detected"


async def test_smtp_auth(make_rig: Callable[..., Awaitable[Rig]]) -> None:
    rig = await make_rig(
        sink_auth=("portway", "relay-pass"),
        smarthost={"username": "portway", "password": "relay-pass"},
    )
    await rig.transport.send(outbound())
    await rig.attempt()
    [sent] = await rig.sink.wait_for(1)
    assert sent.login == "portway"


async def test_wrong_smtp_auth_keeps_the_mail(make_rig: Callable[..., Awaitable[Rig]]) -> None:
    rig = await make_rig(
        sink_auth=("portway", "relay-pass"),
        smarthost={"username": "portway", "password": "wrong-pass"},
    )
    await rig.transport.send(outbound())
    with pytest.raises(RetryLater) as retry:
        await rig.attempt()
    assert "login" in retry.value.reason
    assert "wrong-pass" not in retry.value.reason


# -- bounces ---------------------------------------------------------------------------------


def dsn(original_id: str, recipient: str = JULIET) -> bytes:
    return (
        b"From: MAILER-DAEMON@relay.example\r\nTo: alice@mail.example.org\r\n"
        b"Subject: Undelivered Mail\r\nMessage-ID: <dsn-"
        + original_id.strip("<>").encode()
        + b">\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nSorry.\r\n"
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; relay.example\r\n\r\n"
        + f"Final-Recipient: rfc822; {recipient}\r\n".encode()
        + b"Action: failed\r\nStatus: 5.1.1\r\n"
        b"Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n"
        b"--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        + f"Message-ID: {original_id}\r\n".encode()
        + b"\r\n--B--\r\n"
    )


async def test_a_bounce_becomes_an_error_for_the_message(
    make_rig: Callable[..., Awaitable[Rig]],
) -> None:
    rig = await make_rig()
    await rig.transport.send(outbound(xmpp_id="stanza-42"))
    result = await rig.attempt()
    assert result.remote_id
    await rig.mail_in(dsn(result.remote_id), sender="")
    [report] = rig.host.events
    assert isinstance(report, DeliveryReport)
    # to the resource that sent it: servers drop error stanzas addressed to a bare JID
    assert report.user_jid == f"{ALICE}/phone"
    assert (report.contact, report.xmpp_id) == (JULIET, "stanza-42")
    assert not report.delivered
    assert report.reason == (
        "The email to juliet@capulet.lit could not be delivered: the mailbox does not exist "
        "(the server said: 550 5.1.1 User unknown)"
    )
    # the same bounce again is not a second error
    await rig.mail_in(dsn(result.remote_id), sender="")
    assert len(rig.host.events) == 1


async def test_a_bounce_for_a_message_not_sent_from_here_is_refused(
    make_rig: Callable[..., Awaitable[Rig]],
) -> None:
    rig = await make_rig()
    with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
        await rig.mail_in(dsn("<forged@mail.example.org>"), sender="")
    assert refused.value.code == 550
    assert rig.host.events == []


async def test_listener_stops_and_frees_its_port(make_rig: Callable[..., Awaitable[Rig]]) -> None:
    rig = await make_rig()
    await rig.transport.stop()
    with pytest.raises((aiosmtplib.SMTPConnectError, OSError)):
        await asyncio.wait_for(rig.mail_in(juliet_mail()), 5)
