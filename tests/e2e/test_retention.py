"""Retention against the real gateway: with horizons of seconds, what every network carried
(outbox rows, id maps, room lines, dedup records, served files) is forgotten while it runs,
and it goes on working."""

from __future__ import annotations

import email.message
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiosmtplib
import pytest
from support.fixture_types import ConnectIrc, ConnectXmpp, MakeNgircd, MakeProsody
from test_metrics import (
    BOT,
    ROOM,
    World,
    from_bot,
    post,
    running_world,
    sample,
    scrape,
    until,
)

pytestmark = pytest.mark.e2e

SECONDS = 1 / 86400  # a day's fraction: the config's horizons are in days
#: What the traffic below leaves, and what retention must forget of it
FORGOTTEN = ("outbox", "inbound", "message_ids", "room_archive", "media", "email_headers")


@pytest.fixture
async def world(
    tmp_path: Path,
    make_prosody: MakeProsody,
    make_ngircd: MakeNgircd,
    xmpp_client: ConnectXmpp,
    irc_client: ConnectIrc,
) -> AsyncIterator[World]:
    retention = {
        "outbox_days": 2 * SECONDS,
        "message_ids_days": 2 * SECONDS,
        "archive_days": 2 * SECONDS,
        "inbound_days": 2 * SECONDS,
        "interval_minutes": 0.5 / 60,
    }
    async with running_world(
        tmp_path,
        make_prosody,
        make_ngircd,
        xmpp_client,
        irc_client,
        email_options={"attachment_ttl_hours": 2 / 3600},  # files are served for 2 s
        retention=retention,
    ) as made:
        yield made


async def mail_with_a_file(smtp_port: int) -> None:
    message = email.message.EmailMessage()
    message["From"] = "Juliet <juliet@capulet.lit>"
    message["To"] = "alice@mail.example.org"
    message["Subject"] = "a rose"
    message["Message-ID"] = f"<{uuid.uuid4().hex}@capulet.lit>"
    message.set_content("see attached")
    message.add_attachment(b"\x89PNG rose", maintype="image", subtype="png", filename="rose.png")
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_port, start_tls=False, timeout=20)
    async with client:
        await client.send_message(message)


async def test_what_every_network_carried_is_forgotten_while_the_gateway_runs(
    world: World,
) -> None:
    gateway, alice = world.gateway, world.alice
    # hooks: a post in, a message out
    assert post(gateway, b"from the bot", post_id="p1") == 202
    await alice.expect(from_bot("from the bot"))
    alice.send_raw(f"<message to='{BOT}' type='chat' id='out1'><body>to the bot</body></message>")
    await world.endpoint.wait_for(1)
    # IRC: a line in a channel, archived for alice
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#test")
    alice.send_raw(
        f"<presence to='{ROOM}/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
    )
    await bob.expect(r"^:alice!\S+ JOIN :?#test", timeout=15)
    await bob.privmsg("#test", "a line for the archive")
    await alice.expect(lambda s: s["type"] == "groupchat" and s["body"] == "a line for the archive")
    # mail: a file, served at a URL until it expires
    await mail_with_a_file(world.smtp_port)
    await alice.expect(lambda s: "rose" in str(s["body"]) and s["type"] in ("chat", "normal"))

    def forgotten() -> bool:
        page = scrape(gateway)
        return all(
            page.get(("portway_table_rows", frozenset({("table", table)}))) == 0
            for table in FORGOTTEN
        )

    await until(forgotten, "every table of traffic is empty", timeout=20)
    for table in FORGOTTEN:
        pruned = sample(gateway, "portway_pruned_rows_total", table=table) or 0
        assert pruned >= 1, table  # it held rows, and retention took them
    # What is not traffic stays: alice's registrations.
    assert (sample(gateway, "portway_table_rows", table="registrations") or 0) >= 2

    # And the gateway goes on: the first post's id is new again once its record is gone.
    assert post(gateway, b"again", post_id="p1") == 202
    await alice.expect(from_bot("again"))
