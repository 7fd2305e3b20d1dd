"""TLS, certificate verification, SASL PLAIN and the server password, against real servers.

A real InspIRCd with Atheme services (tests/support/inspircd.py), Prosody and `portway run`.
The gateway trusts the test CA through SSL_CERT_FILE, the standard OpenSSL way for a
private CA; the server names below are gateway config entries that all point at the one
InspIRCd, each on the port that plays one situation:

- tls.localhost: TLS, certificate signed by the trusted test CA;
- self-signed.localhost: TLS, self-signed certificate, verify_cert on (must fail);
- insecure.localhost: the same self-signed port with verify_cert off (must work);
- locked.localhost / wrong-pass.localhost: a port that wants a server password (PASS),
  given right and wrong.

People on IRC are raw clients on the plain port of the same server, so they share the
channels and see what the gateway's connections do (WHOIS shows TLS and the account).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from slixmpp import Presence
from slixmpp.xmlstream import StanzaBase
from support.fixture_types import ConnectXmpp, MakeProsody
from support.gateway import GatewayProcess
from support.inspircd import IrcNetwork, MakeIrcNetwork
from support.irc_client import RawIrcClient
from support.prosody import Prosody
from support.xmpp_client import XmppClient

pytestmark = pytest.mark.e2e

GW = "irc.example.org"
SECRET = "irc-tls-component-s3cret"
USERS = {"alice": "alice-pw", "carol": "carol-pw"}
RECONNECT_ATTEMPTS = 2
COMMANDS = "http://jabber.org/protocol/commands"


def room(channel: str, server: str) -> str:
    return f"{channel}%{server}@{GW}"


def gateway_settings(prosody: Prosody, network: IrcNetwork) -> dict[str, Any]:
    ircd = network.ircd

    def server(port: int, **extra: Any) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": port, "tls": True, "throttle": None, **extra}

    servers = {
        "tls.localhost": server(ircd.tls_port),
        "self-signed.localhost": server(ircd.self_signed_port),
        "insecure.localhost": server(ircd.self_signed_port, verify_cert=False),
        "locked.localhost": server(ircd.locked_port, password=ircd.server_password),
        "wrong-pass.localhost": server(ircd.locked_port, password="not-the-password"),
    }
    return {
        "xmpp": {"host": "127.0.0.1", "port": prosody.component_port, "reconnect_max_seconds": 1},
        "allowed_domains": ["example.org"],
        "transports": {
            "irc": {
                "jid": GW,
                "secret": SECRET,
                "servers": servers,
                "reconnect_attempts": RECONNECT_ATTEMPTS,
                "reconnect_delay": 0.2,
                "reconnect_max_delay": 0.4,
            }
        },
    }


@dataclass
class World:
    prosody: Prosody
    network: IrcNetwork
    gateway: GatewayProcess
    alice: XmppClient
    connect_xmpp: ConnectXmpp
    irc_people: list[RawIrcClient] = field(default_factory=list)

    async def irc_person(self, nick: str) -> RawIrcClient:
        """Someone on IRC (plain port of the same server), closed at teardown."""
        client = RawIrcClient(self.network.host, self.network.port, nick)
        self.irc_people.append(client)
        await client.connect()
        return client


@pytest.fixture
async def world(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_prosody: MakeProsody,
    make_irc_network: MakeIrcNetwork,
    xmpp_client: ConnectXmpp,
) -> AsyncIterator[World]:
    prosody = make_prosody(components={GW: SECRET}, users=USERS)
    network = make_irc_network()
    # The gateway process inherits this: OpenSSL's default trust store becomes the test CA.
    monkeypatch.setenv("SSL_CERT_FILE", str(network.certs.ca))
    gateway = GatewayProcess(tmp_path / "gateway", gateway_settings(prosody, network))
    await gateway.astart()
    alice = await xmpp_client("alice@example.org", USERS["alice"], prosody)
    world = World(prosody, network, gateway, alice, xmpp_client)
    try:
        yield world
    finally:
        for person in world.irc_people:
            await person.close()
        gateway.stop()
        assert "Traceback" not in gateway.log(), gateway.log()


def status_codes(stanza: StanzaBase) -> set[str]:
    muc_user = "{http://jabber.org/protocol/muc#user}"
    return {s.get("code", "") for s in stanza.xml.iter(f"{muc_user}status")}


def send_join(client: XmppClient, room_jid: str, nick: str) -> None:
    client.send_raw(
        f"<presence to='{room_jid}/{nick}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
    )


async def join(client: XmppClient, room_jid: str, nick: str) -> Presence:
    """Join as a client does; return the self-presence (110)."""
    send_join(client, room_jid, nick)

    def own(stanza: StanzaBase) -> bool:
        return (
            isinstance(stanza, Presence)
            and str(stanza["from"]) == f"{room_jid}/{nick}"
            and stanza["type"] != "error"
            and "110" in status_codes(stanza)
        )

    found = await client.expect(own, timeout=15)
    assert isinstance(found, Presence)
    return found


async def join_error(client: XmppClient, room_jid: str, nick: str, timeout: float) -> Presence:
    """Try to join; return the error presence that must come back instead of the room."""
    send_join(client, room_jid, nick)

    def refused(stanza: StanzaBase) -> bool:
        # The join's outcome: an error, or (wrongly) our own presence in the room.
        return (
            isinstance(stanza, Presence)
            and stanza["from"].bare == room_jid
            and (stanza["type"] == "error" or stanza["from"].resource == nick)
        )

    found = await client.expect(refused, timeout=timeout)
    assert isinstance(found, Presence)
    assert found["type"] == "error", f"expected an error presence, got {found}"
    return found


async def chat_both_ways(
    client: XmppClient, person: RawIrcClient, channel: str, room_jid: str, nick: str
) -> None:
    """A line from XMPP reaches IRC, and a line from IRC reaches XMPP."""
    client.send_message(room_jid, f"hello {channel} from xmpp", mtype="groupchat")
    await person.expect(rf"^:{nick}!\S+ PRIVMSG {re.escape(channel)} :hello \S+ from xmpp$")
    await person.privmsg(channel, f"hello {channel} from irc")
    await client.expect_message(from_=f"{room_jid}/{person.nick}", body=f"hello {channel} from irc")


async def whois(person: RawIrcClient, nick: str) -> list[str]:
    """The WHOIS reply lines about ``nick``, up to the end (318)."""
    before = len(person.lines)
    await person.send(f"WHOIS {nick}")
    await person.expect(rf"^:\S+ 318 {person.nick} {nick} ")
    return [line for line in person.lines[before:] if re.match(rf"^:\S+ \d{{3}} \S+ {nick} ", line)]


async def server_settings(client: XmppClient, server: str, **values: str) -> None:
    """Run the per-server ad-hoc command: pick the server, then submit ``values``."""
    fields = "".join(
        f"<field var='{name}'><value>{value}</value></field>"
        for name, value in {"server": server, **values}.items()
    )
    first = await client.iq(
        f"<iq type='set' to='{GW}'><command xmlns='{COMMANDS}' node='irc-server-settings' "
        "action='execute'/></iq>"
    )
    assert first["type"] == "result", first
    session = first["command"]["sessionid"]
    for submitted in (f"<field var='server'><value>{server}</value></field>", fields):
        reply = await client.iq(
            f"<iq type='set' to='{GW}'><command xmlns='{COMMANDS}' node='irc-server-settings' "
            f"sessionid='{session}'><x xmlns='jabber:x:data' type='submit'>{submitted}</x>"
            "</command></iq>"
        )
        assert reply["type"] == "result", reply
        session = reply["command"]["sessionid"]
    assert reply["command"]["status"] == "completed", reply


def connect_failures(gateway: GatewayProcess, user: str, server: str) -> list[str]:
    """The gateway's log lines for failed connection attempts of one user to one server."""
    return [
        line
        for line in gateway.log().splitlines()
        if "connect failed" in line and user in line and server in line
    ]


async def test_tls_with_a_trusted_certificate(world: World) -> None:
    bob = await world.irc_person("bob")
    await bob.join("#tls")
    tls_room = room("#tls", "tls.localhost")

    own = await join(world.alice, tls_room, "alice")
    assert "110" in status_codes(own)
    await bob.expect(r"^:alice!\S+ JOIN :?#tls")
    await chat_both_ways(world.alice, bob, "#tls", tls_room, "alice")
    # The server says the gateway's connection is a TLS one (671, "secure connection").
    assert any(" 671 " in line for line in await whois(bob, "alice"))
    assert not connect_failures(world.gateway, "alice@example.org", "tls.localhost")


async def test_an_untrusted_certificate_is_refused_clearly(world: World) -> None:
    started = time.monotonic()
    error = await join_error(
        world.alice, room("#tls", "self-signed.localhost"), "alice", timeout=15
    )
    text = error["error"]["text"]
    assert "certificate verification failed" in text, text
    assert "self-signed" in text or "self signed" in text, text
    assert error["error"]["condition"] in ("remote-server-not-found", "not-authorized"), error
    # Not hammered: a bounded number of attempts, then nothing more.
    attempts = connect_failures(world.gateway, "alice@example.org", "self-signed.localhost")
    assert 1 <= len(attempts) <= RECONNECT_ATTEMPTS + 1, attempts
    assert time.monotonic() - started < 10
    await asyncio.sleep(0.8)
    later = connect_failures(world.gateway, "alice@example.org", "self-signed.localhost")
    assert later == attempts

    # Nothing else harmed: the same user on a trusted server, in the same gateway.
    bob = await world.irc_person("bob")
    await bob.join("#tls")
    tls_room = room("#tls", "tls.localhost")
    await join(world.alice, tls_room, "alice")
    await chat_both_ways(world.alice, bob, "#tls", tls_room, "alice")


async def test_verify_cert_off_accepts_a_self_signed_certificate(world: World) -> None:
    bob = await world.irc_person("bob")
    await bob.join("#insecure")
    insecure_room = room("#insecure", "insecure.localhost")
    await join(world.alice, insecure_room, "alice")
    await chat_both_ways(world.alice, bob, "#insecure", insecure_room, "alice")
    assert any(" 671 " in line for line in await whois(bob, "alice"))


async def test_sasl_plain_logs_in_to_the_account(world: World) -> None:
    # The account's name is not the nick: the gateway logs in as its user name.
    await world.network.register_account("wonderland", "rabbit-hole-pw")
    await server_settings(
        world.alice, "tls.localhost", username="wonderland", sasl_password="rabbit-hole-pw"
    )
    bob = await world.irc_person("bob")
    await bob.join("#sasl")
    sasl_room = room("#sasl", "tls.localhost")

    await join(world.alice, sasl_room, "alice")
    await chat_both_ways(world.alice, bob, "#sasl", sasl_room, "alice")
    # WHOIS 330: "alice is logged in as wonderland", seen by someone else on IRC.
    replies = await whois(bob, "alice")
    assert any(re.match(r"^:\S+ 330 bob alice wonderland :", line) for line in replies), replies
    assert "rabbit-hole-pw" not in world.gateway.log()


async def test_sasl_with_a_wrong_password_fails_clearly_and_harms_no_one(world: World) -> None:
    await world.network.register_account("carol", "carols-real-pw")
    carol = await world.connect_xmpp("carol@example.org", USERS["carol"], world.prosody)
    await server_settings(carol, "tls.localhost", sasl_password="not-carols-pw")
    bob = await world.irc_person("bob")
    await bob.join("#shared")
    shared_room = room("#shared", "tls.localhost")
    await join(world.alice, shared_room, "alice")

    error = await join_error(carol, shared_room, "carol", timeout=15)
    text = error["error"]["text"]
    assert "SASL authentication failed" in text, text
    assert "carol" in text, text
    attempts = connect_failures(world.gateway, "carol@example.org", "tls.localhost")
    assert 1 <= len(attempts) <= RECONNECT_ATTEMPTS + 1, attempts
    await asyncio.sleep(0.8)
    assert connect_failures(world.gateway, "carol@example.org", "tls.localhost") == attempts
    assert "not-carols-pw" not in world.gateway.log()

    # alice, on the same server and channel, never noticed.
    await chat_both_ways(world.alice, bob, "#shared", shared_room, "alice")
    assert not [line for line in bob.lines if re.match(r"^:carol\S*!", line)]


async def test_server_password_right_and_wrong(world: World) -> None:
    bob = await world.irc_person("bob")
    await bob.join("#locked")
    locked_room = room("#locked", "locked.localhost")
    await join(world.alice, locked_room, "alice")
    await chat_both_ways(world.alice, bob, "#locked", locked_room, "alice")

    carol = await world.connect_xmpp("carol@example.org", USERS["carol"], world.prosody)
    error = await join_error(carol, room("#locked", "wrong-pass.localhost"), "carol", timeout=15)
    text = error["error"]["text"]
    assert "refused the connection" in text and "Access denied" in text, text
    attempts = connect_failures(world.gateway, "carol@example.org", "wrong-pass.localhost")
    assert 1 <= len(attempts) <= RECONNECT_ATTEMPTS + 1, attempts
    assert "not-the-password" not in world.gateway.log()
    assert world.network.ircd.server_password not in world.gateway.log()

    # alice's connection, on the same port, is unharmed.
    await bob.privmsg("#locked", "still here?")
    await world.alice.expect_message(from_=f"{locked_room}/bob", body="still here?")
