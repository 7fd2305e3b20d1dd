"""One large email must not stop all email (issue 10, finding 3).

A real Prosody with its default component stanza limit (512 KiB in 0.12), the real gateway and
its real SMTP listener. A mail of about 700 KB of text used to become one stanza over that
limit: Prosody closed the stream, the gateway reconnected and sent the same queued event
first again, forever, and no later mail reached anyone.
"""

from __future__ import annotations

import asyncio
import re
import urllib.request
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
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
JULIET = "juliet@capulet.lit"
JULIET_JID = rf"juliet\40capulet.lit@{MAIL}"
PROSODY_COMPONENT_LIMIT = 512 * 1024
BOUND = 131072  # xmpp.max_stanza_bytes, the default


def email_gateway(
    workdir: Path, prosody: Prosody, smtp_port: int, sink_port: int, **xmpp: Any
) -> GatewayProcess:
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
                }
            },
        },
    )


def long_text(size: int) -> str:
    """Plain text lines, numbered, so that a cut or a reordering shows."""
    lines = []
    total = 0
    n = 0
    while total < size:
        line = f'line {n:06d} of a very long mail: caf\u00e9 <b>&amp; "quotes" \u20ac\n'
        lines.append(line)
        total += len(line.encode())
        n += 1
    return "".join(lines)


def mail(text: str, message_id: str, subject: str) -> bytes:
    message = EmailMessage()
    message["From"] = f"Juliet <{JULIET}>"
    message["To"] = f"alice@{MAIL}"
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message.set_content(text)
    return message.as_bytes()


async def send_mail(smtp_port: int, raw: bytes) -> str:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_port, start_tls=False, timeout=30)
    async with client:
        _, reply = await client.sendmail(JULIET, [f"alice@{MAIL}"], raw)
    return reply


def http_get(url: str) -> tuple[bytes, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read(), response.headers.get("Content-Type", "")


def metric(gateway: GatewayProcess, name: str, transport: str) -> float:
    body, _ = http_get(gateway.base_url + "/metrics")
    found = re.search(
        rf'^{re.escape(name)}\{{transport="{transport}"\}} (\S+)$', body.decode(), re.M
    )
    return float(found.group(1)) if found else 0.0


@pytest.fixture
async def world(
    tmp_path: Path, make_prosody: MakeProsody, xmpp_client: ConnectXmpp
) -> AsyncIterator[tuple[Prosody, GatewayProcess, XmppClient, int]]:
    prosody = make_prosody(components={MAIL: SECRET}, users={"alice": "alice-pw"})
    # Prosody's own default applies: nothing in its config sets a stanza size limit.
    assert "stanza_size_limit" not in prosody.config_text()
    smtp_port = free_port()
    async with SmtpSink() as sink:
        gateway = email_gateway(tmp_path / "gateway", prosody, smtp_port, sink.port)
        bound = gateway.cli("mappings", "add", "email", ALICE, "alice")
        assert bound.returncode == 0, bound.stderr
        await gateway.astart()
        alice = await xmpp_client(ALICE, "alice-pw", prosody)
        try:
            yield prosody, gateway, alice, smtp_port
        finally:
            gateway.kill()


async def test_a_700_kb_mail_is_cut_with_a_link_and_the_next_mail_arrives(world: Any) -> None:
    _prosody, gateway, alice, smtp_port = world
    text = long_text(700_000)
    assert len(text.encode()) > PROSODY_COMPONENT_LIMIT
    reply = await send_mail(smtp_port, mail(text, "<big@capulet.lit>", "The long one"))
    assert reply.startswith("2"), reply
    assert (await send_mail(smtp_port, mail("Short.", "<small@capulet.lit>", "Hi"))).startswith("2")

    big = await alice.expect_message(from_=JULIET_JID, contains="line 000000", timeout=20)
    small = await alice.expect_message(from_=JULIET_JID, contains="Short.", timeout=20)
    assert big["subject"] == "The long one" and small["subject"] == "Hi"
    body = big["body"]
    # Cut, and the user can tell: a marker with the full length and a link.
    found = re.search(
        r"\[Cut here: this message was too long for XMPP\. The full text "
        r"\((\d+) characters\) is at (\S+) \]$",
        body,
    )
    assert found, body[-300:]
    assert len(body.encode()) <= BOUND
    assert len(str(big).encode()) < BOUND + 2048  # the stanza as Prosody relayed it
    shown = body[: found.start()].rstrip("\n")
    assert text.startswith(shown) and len(shown) > 50_000
    # The link serves the whole text.
    data, content_type = await asyncio.to_thread(http_get, found.group(2))
    assert content_type == "text/plain; charset=utf-8", content_type
    assert data.decode("utf-8").rstrip("\n") == text.rstrip("\n")
    assert int(found.group(1)) == len(data.decode("utf-8"))
    # One stream all along: no reconnect loop.
    assert metric(gateway, "portway_component_reconnects_total", "email") == 0
    assert "reconnecting" not in gateway.log()
