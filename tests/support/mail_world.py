"""The email world of the abuse tests: Prosody, the real ``portway run`` with its SMTP
listener, and a smarthost sink; Alice bound to ``alice@mail.example.org``.

Mail comes in over SMTP as another mail server would send it (aiosmtplib), from Juliet.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any, NamedTuple

import aiosmtplib

from support.fixture_types import ConnectXmpp, MakeProsody
from support.gateway import GatewayProcess
from support.ports import free_port
from support.prosody import Prosody
from support.smtp_sink import SmtpSink
from support.xmpp_client import XmppClient

MAIL = "mail.example.org"
SECRET = "mail-component-s3cret"
ALICE = "alice@example.org"
JULIET = "juliet@capulet.lit"
JULIET_JID = rf"juliet\40capulet.lit@{MAIL}"


class MailWorld(NamedTuple):
    prosody: Prosody
    gateway: GatewayProcess
    alice: XmppClient
    smtp_port: int


def email_gateway(
    workdir: Path,
    prosody: Prosody,
    smtp_port: int,
    sink_port: int,
    email: dict[str, Any] | None = None,
    **xmpp: Any,
) -> GatewayProcess:
    """The gateway with only the email transport, relaying out through ``sink_port``;
    ``email`` adds to its ``transports.email`` section, ``xmpp`` to its ``xmpp`` section
    (e.g. ``max_stanza_bytes``)."""
    return GatewayProcess(
        workdir,
        {
            "xmpp": {
                "host": "127.0.0.1",
                "port": prosody.component_port,
                "reconnect_max_seconds": 1,
                **xmpp,
            },
            "allowed_domains": ["example.org"],
            "transports": {
                "email": {
                    "jid": MAIL,
                    "secret": SECRET,
                    "domain": MAIL,
                    "smtp_listen": f"127.0.0.1:{smtp_port}",
                    "smarthost": {"host": "127.0.0.1", "port": sink_port, "starttls": False},
                    **(email or {}),
                }
            },
        },
    )


async def send_mail(smtp_port: int, raw: bytes, timeout: float = 60) -> str:
    """Juliet's server sends ``raw`` to Alice's address; the DATA reply."""
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_port, start_tls=False, timeout=timeout)
    async with client:
        _, reply = await client.sendmail(JULIET, [f"alice@{MAIL}"], raw)
    return reply


def plain_mail(text: str, message_id: str, subject: str = "Hi") -> bytes:
    """A text mail from Juliet to Alice."""
    message = EmailMessage()
    message["From"] = f"Juliet <{JULIET}>"
    message["To"] = f"alice@{MAIL}"
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message.set_content(text)
    return message.as_bytes()


def failure_report(original: bytes, recipient: str = JULIET) -> bytes:
    """A relay's DSN (RFC 3464) saying ``original`` could not be delivered: 5.1.1."""
    return (
        b"From: MAILER-DAEMON@relay.example\r\nTo: alice@mail.example.org\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn@relay.example>\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; relay.example\r\n\r\n"
        b"Final-Recipient: rfc822; " + recipient.encode() + b"\r\nAction: failed\r\n"
        b"Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n"
        b"--B\r\nContent-Type: message/rfc822\r\n\r\n" + original + b"\r\n--B--\r\n"
    )


@contextlib.asynccontextmanager
async def running_mail_world(
    workdir: Path, make_prosody: MakeProsody, connect_xmpp: ConnectXmpp
) -> AsyncIterator[MailWorld]:
    """Start Prosody, the smarthost sink and the gateway, Alice bound and online; the
    gateway is killed at the end."""
    prosody = make_prosody(components={MAIL: SECRET}, users={"alice": "alice-pw"})
    smtp_port = free_port()
    async with SmtpSink() as sink:
        gateway = email_gateway(workdir / "gateway", prosody, smtp_port, sink.port)
        bound = gateway.cli("mappings", "add", "email", ALICE, "alice")
        assert bound.returncode == 0, bound.stderr
        await gateway.astart()
        alice = await connect_xmpp(ALICE, "alice-pw", prosody)
        try:
            yield MailWorld(prosody, gateway, alice, smtp_port)
        finally:
            gateway.kill()
