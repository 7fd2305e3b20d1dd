"""Incoming files put on the user's own server (XEP-0363), against Prosody's mod_http_file_share.

A mail attachment is the file: it reaches Alice as a link to her own server's upload service,
named, with the same bytes. Without a service that takes it, the gateway's ``/media`` serves
it, under its name.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from support.fixture_types import ConnectXmpp, MakeProsody
from support.gateway import GatewayProcess
from support.mail_world import ALICE, JULIET, JULIET_JID, MAIL, SECRET, email_gateway, send_mail
from support.ports import free_port
from support.smtp_sink import SmtpSink
from support.xmpp_client import XmppClient

pytestmark = pytest.mark.e2e

UPLOAD = "upload.example.org"
PICTURE = bytes(range(256)) * 40  # 10 kB that no text codec would leave alone


def file_share(access: list[str], size_limit: int = 10_000_000) -> str:
    """An upload component that ``access`` may use (Prosody's HTTP server: ``http_port``)."""
    allowed = "; ".join(f'"{jid}"' for jid in access)
    return "\n".join(
        [
            # the URLs say 127.0.0.1, so requests reach Prosody without the component's name
            f'http_default_host = "{UPLOAD}"',
            f'Component "{UPLOAD}" "http_file_share"',
            f"    http_file_share_access = {{ {allowed} }}",
            f"    http_file_share_size_limit = {size_limit}",
        ]
    )


def mail_with_picture(message_id: str) -> bytes:
    message = EmailMessage()
    message["From"] = f"Juliet <{JULIET}>"
    message["To"] = f"alice@{MAIL}"
    message["Subject"] = "the balcony"
    message["Message-ID"] = message_id
    message.set_content("a picture of the balcony")
    message.add_attachment(PICTURE, maintype="image", subtype="png", filename="balcony.png")
    return message.as_bytes()


@contextlib.asynccontextmanager
async def world(
    tmp_path: Path,
    make_prosody: MakeProsody,
    xmpp_client: ConnectXmpp,
    extra: str,
    port: int,
    **xmpp: Any,
) -> AsyncIterator[tuple[GatewayProcess, XmppClient, int]]:
    """Prosody (with ``extra`` config), the sink, the email gateway; Alice bound and online."""
    prosody = make_prosody(
        components={MAIL: SECRET}, users={"alice": "alice-pw"}, extra_config=extra, http_port=port
    )
    smtp_port = free_port()
    async with SmtpSink() as sink:
        gateway = email_gateway(tmp_path / "gateway", prosody, smtp_port, sink.port, **xmpp)
        bound = gateway.cli("mappings", "add", "email", ALICE, "alice")
        assert bound.returncode == 0, bound.stderr
        await gateway.astart()
        try:
            alice = await xmpp_client(ALICE, "alice-pw", prosody)
            yield gateway, alice, smtp_port
        finally:
            gateway.kill()


async def fetch(url: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.read()


def oob(message: Any) -> tuple[str, str]:
    x = message.xml.find("{jabber:x:oob}x")
    assert x is not None, message
    return x.findtext("{jabber:x:oob}url", ""), x.findtext("{jabber:x:oob}desc", "")


async def received_picture(world_: Any, message_id: str) -> tuple[Any, str, str]:
    """Juliet mails Alice the picture; the message Alice gets, its OOB URL and description."""
    _gateway, alice, smtp_port = world_
    await send_mail(smtp_port, mail_with_picture(message_id))
    message = await alice.expect_message(from_=JULIET_JID, timeout=20)
    return (message, *oob(message))


@pytest.mark.parametrize(
    "configured",
    [pytest.param({}, id="found-by-disco"), pytest.param({"upload_service": UPLOAD}, id="named")],
)
async def test_an_attachment_goes_to_the_users_upload_service(
    tmp_path: Path, make_prosody: MakeProsody, xmpp_client: ConnectXmpp, configured: dict[str, str]
) -> None:
    http_port = free_port()
    extra = file_share([MAIL])
    async with world(tmp_path, make_prosody, xmpp_client, extra, http_port, **configured) as w:
        message, url, desc = await received_picture(w, "<pic-1@capulet.lit>")
        assert url.startswith(f"http://127.0.0.1:{http_port}/file_share/"), url
        assert url.endswith("/balcony.png")
        assert desc == "balcony.png (10 kB)"
        assert url in message["body"] and "/media/" not in message["body"]
        assert await fetch(url) == (200, PICTURE)


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param("", id="no-upload-service"),
        pytest.param(file_share(["someone-else.example.org"]), id="service-refuses-the-component"),
        pytest.param(file_share([MAIL], size_limit=1000), id="file-over-the-service-limit"),
    ],
)
async def test_otherwise_media_serves_it_under_its_name(
    tmp_path: Path, make_prosody: MakeProsody, xmpp_client: ConnectXmpp, extra: str
) -> None:
    async with world(tmp_path, make_prosody, xmpp_client, extra, free_port()) as w:
        _message, url, desc = await received_picture(w, "<pic-3@capulet.lit>")
        gateway = w[0]
        assert url.startswith(f"{gateway.base_url}/media/") and url.endswith("/balcony.png"), url
        assert desc == "balcony.png (10 kB)"
        assert await fetch(url) == (200, PICTURE)
