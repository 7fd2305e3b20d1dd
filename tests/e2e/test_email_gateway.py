"""Email end to end: a real Prosody, slixmpp users, `portway run`, real SMTP both ways.

Mail comes in over SMTP to the gateway's own listener (aiosmtplib as the sending server) and
goes out to tests/support/smtp_sink.py, which plays the smarthost: it can be stopped, started
again on the same port, or told to refuse. Alice's address is bound with the admin CLI.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest
from slixmpp import Message
from slixmpp.xmlstream import StanzaBase
from support.fixture_types import ConnectXmpp, MakeProsody
from support.gateway import GatewayProcess
from support.ports import free_port
from support.prosody import Prosody
from support.smtp_sink import SmtpSink
from support.xmpp_client import XmppClient

pytestmark = pytest.mark.e2e

MAIL = "mail.example.org"
SECRET = "mail-component-s3cret"
ALICE = "alice@example.org"
ALICE_ADDRESS = f"alice@{MAIL}"
JULIET = "juliet@capulet.lit"
JULIET_JID = rf"juliet\40capulet.lit@{MAIL}"


@dataclass
class World:
    prosody: Prosody
    gateway: GatewayProcess
    sink: SmtpSink
    alice: XmppClient
    smtp_port: int

    async def mail_in(
        self, message: EmailMessage | bytes, sender: str = JULIET, to: str = ALICE_ADDRESS
    ) -> str:
        """Send a mail to the gateway as another mail server would; return the DATA reply."""
        raw = message if isinstance(message, bytes) else message.as_bytes()
        client = aiosmtplib.SMTP(
            hostname="127.0.0.1", port=self.smtp_port, start_tls=False, timeout=10
        )
        async with client:  # sendmail, unlike send(), allows the null sender of bounces
            _, reply = await client.sendmail(sender, [to], raw)
        return reply


@pytest.fixture
async def world(
    tmp_path: Path, make_prosody: MakeProsody, xmpp_client: ConnectXmpp
) -> AsyncIterator[World]:
    prosody = make_prosody(components={MAIL: SECRET}, users={"alice": "alice-pw"})
    smtp_port = free_port()
    async with SmtpSink() as sink:
        gateway = GatewayProcess(
            tmp_path / "gateway",
            {
                "xmpp": {
                    "host": "127.0.0.1",
                    "port": prosody.component_port,
                    "reconnect_max_seconds": 1,
                },
                "allowed_domains": ["example.org"],
                "transports": {
                    "email": {
                        "jid": MAIL,
                        "secret": SECRET,
                        "domain": MAIL,
                        "smtp_listen": f"127.0.0.1:{smtp_port}",
                        "smarthost": {"host": "127.0.0.1", "port": sink.port, "starttls": False},
                        "max_message_bytes": 100_000,
                        "retry_base_seconds": 0.3,
                    }
                },
            },
        )
        bound = gateway.cli("mappings", "add", "email", ALICE, "alice")
        assert bound.returncode == 0, bound.stderr
        await gateway.astart()
        alice = await xmpp_client(ALICE, "alice-pw", prosody)
        try:
            yield World(prosody, gateway, sink, alice, smtp_port)
        finally:
            gateway.kill()


def juliet_mail(
    text: str = "Wherefore art thou?", message_id: str = "<m1@capulet.lit>", **headers: str
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = '"Juliet Capulet" <juliet@capulet.lit>'
    message["To"] = ALICE_ADDRESS
    message["Subject"] = headers.pop("Subject", "Balcony")
    message["Message-ID"] = message_id
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(text)
    return message


def send_to_juliet(
    client: XmppClient, body: str, *, receipt: bool = True, thread: str | None = None
) -> str:
    msg = client.xmpp.make_message(mto=JULIET_JID, mbody=body, mtype="chat")
    if receipt:
        msg["request_receipt"] = True
    if thread:
        msg["thread"] = thread
    msg.send()
    return str(msg["id"])


def receipt_for(xmpp_id: str) -> Callable[[StanzaBase], bool]:
    def matches(stanza: StanzaBase) -> bool:
        return isinstance(stanza, Message) and stanza["receipt"] == xmpp_id

    return matches


def error_for(xmpp_id: str) -> Callable[[StanzaBase], bool]:
    def matches(stanza: StanzaBase) -> bool:
        return isinstance(stanza, Message) and stanza["type"] == "error" and stanza["id"] == xmpp_id

    return matches


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        data: bytes = response.read()
        return data


async def test_mail_in_of_every_shape(world: World) -> None:
    assert (await world.mail_in(juliet_mail())).startswith("2.0.0")
    plain = await world.alice.expect_message(from_=JULIET_JID)
    assert plain["body"] == "Wherefore art thou?"
    assert plain["subject"] == "Balcony"
    assert plain["nick"]["nick"] == "Juliet Capulet"

    html = EmailMessage()
    html["From"] = "juliet@capulet.lit"
    html["Message-ID"] = "<h1@capulet.lit>"
    html.set_content("<p>Good <b>night</b>!</p><p>Parting is such sweet sorrow</p>", subtype="html")
    await world.mail_in(html)
    got = await world.alice.expect_message(from_=JULIET_JID)
    assert got["body"] == "Good night!\n\nParting is such sweet sorrow"

    with_file = juliet_mail("a rose", "<a1@capulet.lit>")
    with_file.add_attachment(b"\x89PNG rose", maintype="image", subtype="png", filename="rose.png")
    await world.mail_in(with_file)
    got = await world.alice.expect_message(from_=JULIET_JID, contains="a rose")
    url = got["oob"]["url"]
    assert url.startswith(f"{world.gateway.base_url}/media/")
    assert got["body"] == f"a rose\n{url}"
    assert await asyncio.to_thread(fetch, url) == b"\x89PNG rose"

    latin1 = (
        b"From: =?iso-8859-1?q?J=FCrgen?= <jurgen@example.de>\r\nTo: alice@mail.example.org\r\n"
        b"Subject: =?iso-8859-1?q?Gr=FC=DFe?=\r\nMessage-ID: <l1@example.de>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\nSch\xf6ne Gr\xfc\xdfe\r\n"
    )
    await world.mail_in(latin1, sender="jurgen@example.de")
    got = await world.alice.expect_message(from_=rf"jurgen\40example.de@{MAIL}")
    assert (got["body"], got["subject"]) == ("Schöne Grüße", "Grüße")


async def test_refusals_at_rcpt_and_the_size_limit(world: World) -> None:
    for rcpt, text in ((f"nobody@{MAIL}", "5.1.1"), ("bob@gmail.example", "Relaying denied")):
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            await world.mail_in(juliet_mail(), to=rcpt)
        [refusal] = refused.value.recipients
        assert refusal.code == 550 and text in refusal.message
    with pytest.raises(aiosmtplib.SMTPResponseException) as too_big:
        await world.mail_in(juliet_mail("x" * 150_000))
    assert too_big.value.code == 552
    with pytest.raises(TimeoutError):
        await world.alice.expect_message(from_=JULIET_JID, timeout=1.5)


async def test_a_duplicate_message_id_is_delivered_once(world: World) -> None:
    await world.mail_in(juliet_mail("once"))
    await world.mail_in(juliet_mail("once"))
    await world.alice.expect_message(from_=JULIET_JID, body="once")
    with pytest.raises(TimeoutError):
        await world.alice.expect_message(from_=JULIET_JID, timeout=1.5)


async def test_mail_out_threaded_onto_the_last_inbound_mail(world: World) -> None:
    await world.mail_in(juliet_mail())
    first = await world.alice.expect_message(from_=JULIET_JID)
    thread = first["thread"]
    assert thread

    xmpp_id = send_to_juliet(world.alice, "At the window, ñ")
    await world.alice.expect(receipt_for(xmpp_id))
    [sent] = await world.sink.wait_for(1)
    assert sent.mail_from == ALICE_ADDRESS and sent.rcpt_tos == (JULIET,)
    mail = sent.message
    assert str(mail["From"]) == f"alice <{ALICE_ADDRESS}>"
    assert str(mail["In-Reply-To"]) == "<m1@capulet.lit>"
    assert str(mail["References"]) == "<m1@capulet.lit>"
    assert str(mail["Subject"]) == "Re: Balcony"
    assert mail.get_content_charset() == "utf-8"
    assert mail.get_content().strip() == "At the window, ñ"

    await world.mail_in(
        juliet_mail("then come", "<m2@capulet.lit>", In_Reply_To=str(mail["Message-ID"]))
    )
    answer = await world.alice.expect_message(from_=JULIET_JID, body="then come")
    assert answer["thread"] == thread


async def test_smarthost_down_then_up_delivers_once(world: World) -> None:
    await world.sink.stop()
    xmpp_id = send_to_juliet(world.alice, "are you there?")
    await asyncio.sleep(2)  # several attempts fail meanwhile
    assert world.sink.received == []
    await world.sink.start()
    await world.alice.expect(receipt_for(xmpp_id), timeout=20)
    await asyncio.sleep(1.5)
    assert len(world.sink.received) == 1
    assert world.sink.received[0].message.get_content().strip() == "are you there?"
    assert "cannot be reached" in world.gateway.log()


async def test_a_5xx_from_the_smarthost_is_an_error_to_the_user(world: World) -> None:
    world.sink.fail_next(1, "550 5.7.1 Sender not allowed to relay")
    xmpp_id = send_to_juliet(world.alice, "hello")
    error = await world.alice.expect(error_for(xmpp_id))
    assert "550 5.7.1 Sender not allowed to relay" in error["error"]["text"]
    assert str(error["from"]).startswith("juliet\\40capulet.lit@")
    assert world.sink.received == []


async def test_a_bounce_is_matched_to_its_message(world: World) -> None:
    xmpp_id = send_to_juliet(world.alice, "to a bad address", receipt=False)
    [sent] = await world.sink.wait_for(1)
    original = str(sent.message["Message-ID"])
    dsn = (
        b"From: MAILER-DAEMON@relay.example\r\nTo: alice@mail.example.org\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn@relay.example>\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you...\r\n"
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; relay.example\r\n\r\n"
        b"Final-Recipient: rfc822; juliet@capulet.lit\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        b"Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n"
        b"--B\r\nContent-Type: message/rfc822\r\n\r\n" + sent.data + b"\r\n--B--\r\n"
    )
    assert original.encode() in dsn
    await world.mail_in(dsn, sender="")
    error = await world.alice.expect(error_for(xmpp_id))
    assert error["error"]["text"] == (
        "The email to juliet@capulet.lit could not be delivered: the mailbox does not exist "
        "(the server said: 550 5.1.1 User unknown)"
    )
    with pytest.raises(TimeoutError):  # and no chat message full of headers
        await world.alice.expect_message(timeout=1)


async def test_a_gateway_restart_with_mail_in_the_outbox(world: World) -> None:
    await world.sink.stop()
    xmpp_id = send_to_juliet(world.alice, "kept across a crash")
    await asyncio.sleep(1.5)
    world.gateway.kill()
    await world.sink.start()
    await world.gateway.astart()
    await world.alice.expect(receipt_for(xmpp_id), timeout=20)
    await asyncio.sleep(1.5)
    assert [m.message.get_content().strip() for m in world.sink.received] == ["kept across a crash"]


async def test_mail_waits_while_xmpp_is_down(world: World, xmpp_client: ConnectXmpp) -> None:
    await world.prosody.akill()
    assert (await world.mail_in(juliet_mail("while you were away"))).startswith("2.0.0")
    await world.prosody.astart()
    await world.gateway.wait_health(attached=True, timeout=20)
    alice = await xmpp_client(ALICE, "alice-pw", world.prosody)
    got = await alice.expect_message(from_=JULIET_JID, timeout=20)
    assert got["body"] == "while you were away"
