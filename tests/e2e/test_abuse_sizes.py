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

import pytest
from support.gateway import GatewayProcess
from support.mail_world import JULIET_JID, MailWorld, plain_mail, send_mail

pytestmark = pytest.mark.e2e

PROSODY_COMPONENT_LIMIT = 512 * 1024
BOUND = 131072  # xmpp.max_stanza_bytes, the default


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


def http_get(url: str) -> tuple[bytes, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read(), response.headers.get("Content-Type", "")


def metric(gateway: GatewayProcess, name: str, transport: str) -> float:
    body, _ = http_get(gateway.base_url + "/metrics")
    found = re.search(
        rf'^{re.escape(name)}\{{transport="{transport}"\}} (\S+)$', body.decode(), re.M
    )
    return float(found.group(1)) if found else 0.0


async def test_a_700_kb_mail_is_cut_with_a_link_and_the_next_mail_arrives(
    mail_world: MailWorld,
) -> None:
    prosody, gateway, alice, smtp_port = mail_world
    # Prosody's own default applies: nothing in its config sets a stanza size limit.
    assert "stanza_size_limit" not in prosody.config_text()
    text = long_text(700_000)
    assert len(text.encode()) > PROSODY_COMPONENT_LIMIT
    big_mail = plain_mail(text, "<big@capulet.lit>", "The long one")
    reply = await send_mail(smtp_port, big_mail, timeout=30)
    assert reply.startswith("2"), reply
    small_mail = plain_mail("Short.", "<small@capulet.lit>", "Hi")
    assert (await send_mail(smtp_port, small_mail, timeout=30)).startswith("2")

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
