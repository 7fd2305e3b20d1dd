"""Many users on one network: new connections are paced, and held within the server's cap.

Three XMPP users join the same channel at once through one gateway (ngIRCd); a person on
IRC sees their JOINs arrive at the configured pace, not in one burst. With a cap of two
connections to the server, the third user is told why, and gets in once one leaves.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from slixmpp import Presence
from support.fixture_types import ConnectIrc, ConnectXmpp, MakeNgircd, MakeProsody
from support.gateway import GatewayProcess
from support.ngircd import Ngircd
from support.prosody import Prosody
from support.xmpp_client import XmppClient

pytestmark = pytest.mark.e2e

GW = "irc.example.org"
SECRET = "irc-many-component-s3cret"
USERS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"}
CROWD = {**USERS, "dave": "dave-pw", "erin": "erin-pw"}
ROOM = f"#crowd%irc.localhost@{GW}"


def settings(prosody: Prosody, ngircd: Ngircd, **server: Any) -> dict[str, Any]:
    return {
        "xmpp": {"host": "127.0.0.1", "port": prosody.component_port, "reconnect_max_seconds": 1},
        "allowed_domains": ["example.org"],
        "transports": {
            "irc": {
                "jid": GW,
                "secret": SECRET,
                "servers": {
                    "irc.localhost": {
                        "host": "127.0.0.1",
                        "port": ngircd.port,
                        "tls": False,
                        "throttle": None,
                        **server,
                    }
                },
                "reconnect_attempts": 0,
                "reconnect_delay": 0.2,
            }
        },
    }


async def start(
    tmp_path: Path,
    make_prosody: MakeProsody,
    make_ngircd: MakeNgircd,
    xmpp_client: ConnectXmpp,
    users: dict[str, str],
    **server: Any,
) -> tuple[Ngircd, GatewayProcess, list[XmppClient]]:
    prosody = make_prosody(components={GW: SECRET}, users=users)
    ngircd = make_ngircd()
    gateway = GatewayProcess(tmp_path / "gateway", settings(prosody, ngircd, **server))
    await gateway.astart()
    clients = [await xmpp_client(f"{u}@example.org", pw, prosody) for u, pw in users.items()]
    return ngircd, gateway, clients


def send_join(client: XmppClient, nick: str) -> None:
    client.send_raw(
        f"<presence to='{ROOM}/{nick}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
    )


@pytest.fixture
async def paced(
    tmp_path: Path, make_prosody: MakeProsody, make_ngircd: MakeNgircd, xmpp_client: ConnectXmpp
) -> AsyncIterator[tuple[Ngircd, list[XmppClient]]]:
    ngircd, gateway, clients = await start(
        tmp_path, make_prosody, make_ngircd, xmpp_client, CROWD, connections_per_second=2.0
    )
    try:
        yield ngircd, clients
    finally:
        gateway.stop()


async def test_new_connections_to_a_server_are_paced(
    paced: tuple[Ngircd, list[XmppClient]], irc_client: ConnectIrc
) -> None:
    ngircd, clients = paced
    watcher = await irc_client(ngircd, "watcher")
    await watcher.join("#crowd")
    for client, nick in zip(clients, CROWD, strict=True):
        send_join(client, nick)
    arrivals: list[float] = []
    for _ in CROWD:
        await watcher.expect(r"^:\S+ JOIN :?#crowd", timeout=15)
        arrivals.append(time.monotonic())
    # 2 per second: five connections take 2 s. The first one's registration may be slow
    # (a cold start), so the span is counted from the second: 1.5 s at least, where
    # unpaced connections all arrive within a few tenths of a second.
    assert arrivals[-1] - arrivals[1] >= 1.3, arrivals


@pytest.fixture
async def capped(
    tmp_path: Path, make_prosody: MakeProsody, make_ngircd: MakeNgircd, xmpp_client: ConnectXmpp
) -> AsyncIterator[list[XmppClient]]:
    _ngircd, gateway, clients = await start(
        tmp_path, make_prosody, make_ngircd, xmpp_client, USERS, max_connections=2
    )
    try:
        yield clients
    finally:
        gateway.stop()


async def test_connections_beyond_the_server_cap_are_refused_with_the_reason(
    capped: list[XmppClient],
) -> None:
    alice, bob, carol = capped
    for client, nick in ((alice, "alice"), (bob, "bob")):
        send_join(client, nick)
        await client.expect(
            lambda s, nick=nick: isinstance(s, Presence) and str(s["from"]) == f"{ROOM}/{nick}",
            timeout=15,
        )
    send_join(carol, "carol")
    error = await carol.expect(
        lambda s: isinstance(s, Presence) and s["type"] == "error", timeout=15
    )
    assert "as many as the server allows" in error["error"]["text"]
    assert "127.0.0.1" not in error["error"]["text"]

    # alice leaves: her connection closes, and carol gets in.
    alice.send_raw(f"<presence to='{ROOM}/alice' type='unavailable'/>")
    await asyncio.sleep(1.0)
    send_join(carol, "carol")
    await carol.expect(
        lambda s: (
            isinstance(s, Presence) and str(s["from"]) == f"{ROOM}/carol" and s["type"] != "error"
        ),
        timeout=15,
    )
