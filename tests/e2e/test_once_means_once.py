"""A copy sent again after a crash carries the ids of the first send (issue 10).

Delivery is at least once: an event is confirmed only after the user's server answered the
ping that follows it, so a gateway killed between the send and that confirmation sends the
event again when it comes back. The copy must carry the same ``id``, origin-id and stanza-id,
so that clients and archives can tell it is the same message. Ids were chosen at send time
(a webhook post had a new ``id`` on every send) and there was no origin-id.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import aiohttp
import pytest
from slixmpp import Message
from support.fixture_types import ConnectXmpp, MakeProsody
from support.gateway import GatewayProcess

pytestmark = pytest.mark.e2e

HOOKS = "hooks.example.org"
SECRET = "hooks-component-s3cret"
TOKEN = "alerts-token-0123456789"
ALICE = "alice@example.org"
SID = "urn:xmpp:sid:0"


def ids_of(message: Message) -> tuple[str, str | None, dict[str, str]]:
    """The message's id, its origin-id, and its stanza-ids by who stamped them."""
    origin = message.xml.find(f"{{{SID}}}origin-id")
    stanza_ids = {
        element.get("by", ""): element.get("id", "")
        for element in message.xml.iter(f"{{{SID}}}stanza-id")
    }
    return message["id"], None if origin is None else origin.get("id"), stanza_ids


async def test_a_message_sent_again_after_a_crash_carries_its_first_ids(
    tmp_path: Path, make_prosody: MakeProsody, xmpp_client: ConnectXmpp
) -> None:
    prosody = make_prosody(components={HOOKS: SECRET}, users={"alice": "alice-pw"})
    gateway = GatewayProcess(
        tmp_path / "gateway",
        {
            "xmpp": {"host": "127.0.0.1", "port": prosody.component_port},
            "allowed_domains": ["example.org"],
            "transports": {
                "webhook": {
                    "jid": HOOKS,
                    "secret": SECRET,
                    "hooks": [{"name": "alerts", "owner": ALICE, "token": TOKEN}],
                }
            },
        },
    )
    await gateway.astart()
    alice = await xmpp_client(ALICE, "alice-pw", prosody)
    try:
        async with (
            aiohttp.ClientSession(gateway.base_url) as http,
            http.post(
                "/hooks/alerts",
                data=b"disk full on db1",
                headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/plain"},
            ) as response,
        ):
            assert response.status == 202
        first = await alice.expect_message(from_=f"alerts@{HOOKS}", body="disk full on db1")
        first_id, first_origin, first_stanza_ids = ids_of(first)
        assert first_id and first_origin == first_id
        assert first_stanza_ids.get(HOOKS)  # the gateway's, for the post's id

        # Killed between the send and its confirmation: the event is left as it was stored
        # for sending, claimed and tied to a ping whose answer was never written down.
        gateway.kill()
        with sqlite3.connect(gateway.workdir / "portway.db") as db:
            rewound = db.execute(
                "UPDATE inbound SET state = 'delivering', delivered_at = NULL,"
                " lease_until = :past WHERE transport = 'webhook'",
                {"past": time.time() - 1},
            ).rowcount
        assert rewound == 1
        await gateway.astart()

        copy = await alice.expect_message(
            from_=f"alerts@{HOOKS}", body="disk full on db1", timeout=20
        )
        copy_id, copy_origin, copy_stanza_ids = ids_of(copy)
        assert (copy_id, copy_origin) == (first_id, first_origin)
        assert copy_stanza_ids[HOOKS] == first_stanza_ids[HOOKS]
    finally:
        gateway.kill()
