"""No single event can stop the inbound queue (issue 10, "Sizes and poison").

The honest way to make an event that breaks the stream: an admin who set
``xmpp.max_stanza_bytes`` above the server's limit (here 1 MiB, over Prosody's default 512 KiB
for components). A 700 KB mail then goes out whole, and Prosody closes the stream on it, after
every reconnect. It must be set aside after a bounded number of attempts, counted in /metrics,
listed by ``portway queue``, its user told, and the mail behind it delivered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from e2e.test_abuse_sizes import long_text, metric
from support.fixture_types import ConnectXmpp, MakeProsody
from support.gateway import GatewayProcess
from support.mail_world import ALICE, JULIET_JID, MAIL, SECRET, email_gateway, send_mail
from support.mail_world import plain_mail as mail
from support.ports import free_port
from support.prosody import Prosody
from support.smtp_sink import SmtpSink
from support.xmpp_client import XmppClient

pytestmark = pytest.mark.e2e

MAX_ATTEMPTS = 5  # component/host.py


@pytest.fixture
async def world(
    tmp_path: Path, make_prosody: MakeProsody, xmpp_client: ConnectXmpp
) -> AsyncIterator[tuple[Prosody, GatewayProcess, XmppClient, int]]:
    prosody = make_prosody(components={MAIL: SECRET}, users={"alice": "alice-pw"})
    assert "stanza_size_limit" not in prosody.config_text()  # Prosody's default: 512 KiB
    smtp_port = free_port()
    async with SmtpSink() as sink:
        gateway = email_gateway(
            tmp_path / "gateway", prosody, smtp_port, sink.port, max_stanza_bytes=1024 * 1024
        )
        bound = gateway.cli("mappings", "add", "email", ALICE, "alice")
        assert bound.returncode == 0, bound.stderr
        await gateway.astart()
        alice = await xmpp_client(ALICE, "alice-pw", prosody)
        try:
            yield prosody, gateway, alice, smtp_port
        finally:
            gateway.kill()


async def test_an_event_that_breaks_the_stream_is_set_aside_and_the_rest_flows(
    world: Any,
) -> None:
    _prosody, gateway, alice, smtp_port = world
    poison = long_text(700_000)
    assert (await send_mail(smtp_port, mail(poison, "<big@capulet.lit>", "Big"))).startswith("2")
    assert (await send_mail(smtp_port, mail("After.", "<a1@capulet.lit>", "1"))).startswith("2")

    # The user is told, from the gateway's own JID, without the content.
    notice = await alice.expect_message(from_=MAIL, contains="set aside", timeout=60)
    assert "juliet" in notice["body"] and "line 000000" not in notice["body"]
    # The mail behind it arrives; the poison never did (the server refused it each time).
    await alice.expect_message(from_=JULIET_JID, contains="After.", timeout=30)
    assert not [s for s in alice.received if "line 000000" in str(s["body"] or "")]
    # Bounded: the stream broke on it MAX_ATTEMPTS times, not forever.
    reconnects = metric(gateway, "portway_component_reconnects_total", "email")
    assert MAX_ATTEMPTS - 1 <= reconnects <= MAX_ATTEMPTS + 1
    assert metric(gateway, "portway_inbound_set_aside_total", "email") == 1
    assert metric(gateway, "portway_inbound_set_aside_items", "email") == 1
    # Later mail goes straight through, on the same stream.
    assert (await send_mail(smtp_port, mail("Later.", "<a2@capulet.lit>", "2"))).startswith("2")
    await alice.expect_message(from_=JULIET_JID, contains="Later.", timeout=10)
    assert metric(gateway, "portway_component_reconnects_total", "email") == reconnects

    # The admin sees it ...
    listed = gateway.cli("queue", "list")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.splitlines()[1:]]
    assert len(rows) == 1, listed.stdout
    event_id, transport, attempts, _received, to, what = rows[0]
    assert (transport, attempts, to) == ("email", str(MAX_ATTEMPTS), ALICE)
    assert what.startswith("message from juliet@capulet.lit") and "line 0000" not in what
    assert gateway.cli("queue", "list", "--transport", "email").stdout == listed.stdout
    unknown_transport = gateway.cli("queue", "list", "--transport", "nope")
    assert unknown_transport.returncode == 1
    assert "nope is not an enabled transport" in unknown_transport.stderr
    # ... can queue it again (it fails again: the cause, the bound, was not fixed) ...
    retried = gateway.cli("queue", "retry", event_id)
    assert retried.returncode == 0 and "queued 1 event again" in retried.stdout
    assert gateway.cli("queue", "list").stdout == "no events set aside\n"
    await gateway.arestart()  # a restart drains at once (a running gateway: within a minute)
    await alice.expect_message(from_=MAIL, contains="set aside", timeout=60)
    assert [
        line.split("\t")[0] for line in gateway.cli("queue", "list").stdout.splitlines()[1:]
    ] == [event_id]
    # ... and drop it for good; unknown ids are an error that says so.
    dropped = gateway.cli("queue", "drop", event_id)
    assert dropped.returncode == 0 and f"dropped event {event_id}" in dropped.stdout
    again = gateway.cli("queue", "drop", event_id)
    assert again.returncode == 1
    assert f"no set-aside event {event_id} (see `portway queue list`)" in again.stderr
    assert gateway.cli("queue", "retry", "999999").returncode == 1
    assert gateway.cli("queue", "list").stdout == "no events set aside\n"
    assert metric(gateway, "portway_inbound_set_aside_items", "email") == 0
