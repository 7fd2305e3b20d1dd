"""The gateway's identd (RFC 1413), asked by a real IRC server: ngIRCd with ``Ident = yes``.

As each client registers, ngIRCd connects back to port 113 of the client's address and asks
who holds the connection; a confirmed answer becomes the user part of the client's hostmask,
an unanswered one gets a ``~`` in front. Port 113 is ngIRCd's own choice, so the gateway's
identd listens there (on 127.0.0.1): the test fails, saying so, when something else on the
machine holds it.
"""

from __future__ import annotations

import errno
import socket
from pathlib import Path

import pytest
from slixmpp import Presence
from support.fixture_types import ConnectIrc, ConnectXmpp, MakeNgircd, MakeProsody
from support.gateway import GatewayProcess

pytestmark = pytest.mark.e2e

GW = "irc.example.org"
SECRET = "irc-ident-component-s3cret"
ROOM = f"#ident%irc.localhost@{GW}"
IDENT_PORT = 113


def port_113_is_free() -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", IDENT_PORT))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                pytest.fail("127.0.0.1:113 is taken by another program; ngIRCd asks only there")
            raise


async def test_an_irc_server_learns_each_users_ident_from_the_gateway(
    tmp_path: Path,
    make_prosody: MakeProsody,
    make_ngircd: MakeNgircd,
    xmpp_client: ConnectXmpp,
    irc_client: ConnectIrc,
) -> None:
    port_113_is_free()
    prosody = make_prosody(components={GW: SECRET}, users={"alice": "alice-pw"})
    ngircd = make_ngircd(ident=True)
    gateway = GatewayProcess(
        tmp_path / "gateway",
        {
            "xmpp": {"host": "127.0.0.1", "port": prosody.component_port},
            "allowed_domains": ["example.org"],
            "transports": {
                "irc": {
                    "jid": GW,
                    "secret": SECRET,
                    "identd_host": "127.0.0.1",
                    "identd_port": IDENT_PORT,
                    "servers": {
                        "irc.localhost": {"host": "127.0.0.1", "port": ngircd.port, "tls": False}
                    },
                }
            },
        },
    )
    await gateway.astart()
    try:
        watcher = await irc_client(ngircd, "watcher")
        await watcher.join("#ident")
        alice = await xmpp_client("alice@example.org", "alice-pw", prosody)
        alice.send_raw(
            f"<presence to='{ROOM}/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
        )
        await alice.expect(
            lambda s: isinstance(s, Presence) and str(s["from"]) == f"{ROOM}/alice", timeout=20
        )
        joined = await watcher.expect(r"^:alice!\S+ JOIN :?#ident", timeout=20)
        user = joined.split("!", 1)[1].split("@", 1)[0]
        # Confirmed by the gateway's identd: no "~".
        assert user == "alice", joined
        await watcher.send("WHOIS watcher")
        whois = await watcher.expect(r" 311 watcher watcher ", timeout=10)
        assert " ~watcher " in whois, whois  # the watcher's client has no identd
    finally:
        gateway.stop()
