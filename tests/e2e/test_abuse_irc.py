"""Attacks on the IRC transport by a registered user, against a real gateway.

Prosody, ngIRCd and `portway run`, with a raw TCP listener on loopback that records every
byte and every connection it gets: it stands for a service of the admin's network that is
not IRC (a Redis, an HTTP admin page). Each test fails if its attack works: the gateway
connects where the user aims it, sends the admin's passwords there, sends the user's
arbitrary lines, opens connections without end, or loses its session to a multi-line status.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from slixmpp import Iq, Message, Presence
from slixmpp.xmlstream import StanzaBase
from support.fixture_types import ConnectIrc, ConnectXmpp, MakeNgircd, MakeProsody
from support.gateway import GatewayProcess
from support.inside_service import InsideService
from support.irc_client import RawIrcClient
from support.ngircd import Ngircd
from support.prosody import Prosody
from support.xmpp_client import XmppClient
from test_irc_rooms import GW, SECRET, USERS, is_presence, join

pytestmark = pytest.mark.e2e

NS_COMMANDS = "http://jabber.org/protocol/commands"
NODE = "irc-server-settings"
ADMIN_PASS = "admin-PASS-s3cret"
ADMIN_SASL = "admin-SASL-s3cret"
ADMIN_NICKSERV = "admin-NickServ-s3cret"
REFUSED = "the address is not allowed (private, loopback or otherwise not public)"
DEFAULT_FIELDS = {
    "nick",
    "username",
    "realname",
    "sasl_password",
    "throttle",
    "encoding",
    "persistent_rooms",
}


def admin_server(port: int, **extra: Any) -> dict[str, Any]:
    """A server as the admin configures it: with a PASS, and a NickServ line holding a secret."""
    return {
        "host": "127.0.0.1",
        "port": port,
        "tls": False,
        "throttle": None,
        "password": ADMIN_PASS,
        "after_connect": [f"PRIVMSG NickServ :IDENTIFY {ADMIN_NICKSERV}"],
        **extra,
    }


@dataclass
class World:
    prosody: Prosody
    ngircd: Ngircd
    listener: InsideService
    alice: XmppClient
    connect_xmpp: ConnectXmpp
    connect_irc: ConnectIrc
    tmp_path: Path
    gateways: list[GatewayProcess] = field(default_factory=list)
    people: list[RawIrcClient] = field(default_factory=list)

    async def irc_person(self, nick: str) -> RawIrcClient:
        """Someone on IRC (the server wants the admin's PASS from everyone), closed at teardown."""
        person = RawIrcClient(self.ngircd.host, self.ngircd.port, nick, password=ADMIN_PASS)
        self.people.append(person)
        await person.connect()
        return person

    async def gateway(self, servers: dict[str, Any], **irc: Any) -> GatewayProcess:
        section = {
            "jid": GW,
            "secret": SECRET,
            "servers": servers,
            "reconnect_delay": 0.3,
            "reconnect_max_delay": 1.0,
            **irc,
        }
        settings = {
            "xmpp": {
                "host": "127.0.0.1",
                "port": self.prosody.component_port,
                "reconnect_max_seconds": 1,
            },
            "allowed_domains": ["example.org"],
            "transports": {"irc": section},
        }
        gateway = GatewayProcess(self.tmp_path / f"gateway{len(self.gateways)}", settings)
        self.gateways.append(gateway)
        await gateway.astart()
        return gateway


@pytest.fixture
async def world(
    tmp_path: Path,
    make_prosody: MakeProsody,
    make_ngircd: MakeNgircd,
    xmpp_client: ConnectXmpp,
    irc_client: ConnectIrc,
) -> AsyncIterator[World]:
    prosody = make_prosody(components={GW: SECRET}, users={**USERS, "carol": "carol-pw"})
    listener = InsideService()
    await listener.start()
    alice = await xmpp_client("alice@example.org", USERS["alice"], prosody)
    ngircd = make_ngircd(server_password=ADMIN_PASS)
    world = World(prosody, ngircd, listener, alice, xmpp_client, irc_client, tmp_path)
    try:
        yield world
    finally:
        for person in world.people:
            await person.close()
        for gateway in world.gateways:
            gateway.stop()
        await listener.stop()


async def execute(client: XmppClient, jid: str) -> Iq:
    return await client.iq(
        f"<iq type='set' to='{jid}'><command xmlns='{NS_COMMANDS}' node='{NODE}' "
        "action='execute'/></iq>"
    )


async def submit_settings(client: XmppClient, server: str, values: dict[str, str]) -> Iq:
    """Run "IRC server settings" on the server's JID and submit ``values``, whatever the form."""
    first = await execute(client, f"{server}@{GW}")
    assert first["type"] == "result", first
    fields = "".join(
        f"<field var='{k}'>{''.join(f'<value>{v}</value>' for v in value.split(chr(10)))}</field>"
        for k, value in values.items()
    )
    return await client.iq(
        f"<iq type='set' to='{server}@{GW}'><command xmlns='{NS_COMMANDS}' node='{NODE}' "
        f"sessionid='{first['command']['sessionid']}' action='complete'>"
        f"<x xmlns='jabber:x:data' type='submit'>{fields}</x></command></iq>"
    )


async def form_fields(client: XmppClient, jid: str) -> dict[str, Any]:
    reply = await execute(client, jid)
    assert reply["type"] == "result", reply
    return {var: f["value"] for var, f in reply["command"]["form"].get_fields().items()}


def refused_with(reply: Iq, condition: str, *texts: str) -> None:
    assert reply["type"] == "error", reply
    assert reply["error"]["condition"] == condition, reply
    for text in texts:
        assert text in reply["error"]["text"], reply["error"]["text"]


async def join_refused(client: XmppClient, room: str, nick: str = "alice") -> Presence:
    client.send_raw(
        f"<presence to='{room}/{nick}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
    )
    found = await client.expect(is_presence(f"{room}/{nick}"), timeout=15)
    assert isinstance(found, Presence)
    assert found["type"] == "error", f"the join was not refused: {found}"
    return found


def store_override(gateway: GatewayProcess, user: str, server: str, data: dict[str, Any]) -> None:
    """Write a per-user override as a database from before this release may hold it."""
    with sqlite3.connect(gateway.workdir / "portway.db") as db:
        db.execute(
            "INSERT INTO user_settings (transport, user_jid, scope, data) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (transport, user_jid, scope) DO UPDATE SET data = excluded.data",
            ("irc", user, f"server:{server}", json.dumps(data)),
        )


async def test_a_user_cannot_aim_the_connection_at_another_port_host_or_clear_text(
    world: World,
) -> None:
    await world.gateway({"irc.localhost": admin_server(world.ngircd.port)})
    alice = world.alice
    server_jid = f"irc.localhost@{GW}"

    # The form offers who the user is, not where the gateway connects.
    assert set(await form_fields(alice, server_jid)) == DEFAULT_FIELDS
    attack = {
        "port": str(world.listener.port),
        "tls": "0",
        "host": "127.0.0.1",
        "after_connect": "SET pwned 1\nGET /admin HTTP/1.0",
        "nick": "alicia",
    }
    reply = await submit_settings(alice, "irc.localhost", attack)
    refused_with(reply, "not-allowed", "port", "tls", "host", "after_connect")
    # Nothing of the attack is stored: the next connection goes to the admin's server.
    assert set(await form_fields(alice, server_jid)) == DEFAULT_FIELDS
    bob = await world.irc_person("bob")
    await bob.join("#test")
    await join(alice, f"#test%irc.localhost@{GW}", "alicia")
    await bob.expect(r"^:alicia!\S+ JOIN :?#test")
    await asyncio.sleep(0.5)
    assert world.listener.connections == 0
    assert ADMIN_PASS.encode() not in world.listener.received


async def test_the_admins_passwords_go_only_to_the_admins_port(world: World) -> None:
    """The admin lets users change the port: then the admin's secrets stay behind."""
    other = InsideService()
    await other.start()
    try:
        trap = admin_server(
            world.listener.port, sasl_password=ADMIN_SASL, user_settable=["nick", "port", "tls"]
        )
        await world.gateway({"trap.localhost": trap}, allow_networks=["127.0.0.1/32"])
        room = f"#x%trap.localhost@{GW}"

        # Control: on the admin's own port, the secrets are sent (this listener would see them).
        carol = await world.connect_xmpp("carol@example.org", "carol-pw", world.prosody)
        carol.send_raw(
            f"<presence to='{room}/carol'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
        )
        await world.listener.wait_for(f"PASS {ADMIN_PASS}".encode())
        await world.listener.wait_for(b"CAP LS")

        # The user's own port: the gateway goes there, without any of the admin's secrets.
        done = await submit_settings(world.alice, "trap.localhost", {"port": str(other.port)})
        assert done["type"] == "result", done
        world.alice.send_raw(
            f"<presence to='{room}/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
        )
        await other.wait_for(b"USER ")
        await asyncio.sleep(0.5)
        # CAP LS goes to every server (IRCv3 negotiation carries no secret); SASL must not.
        for secret in (
            ADMIN_PASS,
            ADMIN_SASL,
            ADMIN_NICKSERV,
            "PASS ",
            "CAP REQ sasl",
            "AUTHENTICATE",
        ):
            assert secret.encode() not in other.received, other.received
        assert other.received.startswith(b"NICK alice\r\nCAP LS 302\r\nUSER ")
    finally:
        await other.stop()


async def test_a_loopback_port_is_refused_even_where_users_may_set_the_port(
    world: World,
) -> None:
    server = admin_server(world.ngircd.port, user_settable=["nick", "port", "host"])
    await world.gateway({"irc.localhost": server})
    for values in (
        {"port": str(world.listener.port)},
        {"host": "localhost", "port": str(world.listener.port)},
        {"host": "[::ffff:127.0.0.1]", "port": str(world.listener.port)},
        {"host": "169.254.169.254", "port": "80"},
    ):
        reply = await submit_settings(world.alice, "irc.localhost", values)
        refused_with(reply, "not-allowed", REFUSED)
        assert str(world.listener.port) not in reply["error"]["text"]
    assert (await form_fields(world.alice, f"irc.localhost@{GW}"))["port"] == str(world.ngircd.port)
    await asyncio.sleep(0.3)
    assert world.listener.connections == 0


async def test_after_connect_lines_only_from_the_admins_list(world: World) -> None:
    await world.gateway(
        {"irc.localhost": admin_server(world.ngircd.port)},
        user_after_connect=["PRIVMSG NickServ"],
    )
    alice = world.alice
    fields = await form_fields(alice, f"irc.localhost@{GW}")
    assert set(fields) == DEFAULT_FIELDS | {"after_connect"}
    for line in (
        "SET pwned 1",
        "GET /admin HTTP/1.0",
        "PRIVMSG NickServ2 :IDENTIFY x",
        "PRIVMSG NickServ,#test :IDENTIFY x",
    ):
        reply = await submit_settings(alice, "irc.localhost", {"after_connect": line})
        refused_with(reply, "not-allowed", "is not allowed after connecting", "PRIVMSG NickServ")
    assert (await form_fields(alice, f"irc.localhost@{GW}"))["after_connect"] == [""]

    ok = await submit_settings(
        alice, "irc.localhost", {"after_connect": "PRIVMSG NickServ :IDENTIFY alice-own-pw"}
    )
    assert ok["type"] == "result", ok
    nickserv = await world.irc_person("NickServ")
    await join(alice, f"#test%irc.localhost@{GW}", "alice")
    await nickserv.expect(r"^:alice!\S+ PRIVMSG NickServ :IDENTIFY alice-own-pw$")
    assert not [line for line in nickserv.lines if "pwned" in line or "GET" in line]


async def test_allow_other_servers_never_reaches_a_refused_address(world: World) -> None:
    gateway = await world.gateway(
        {"irc.localhost": admin_server(world.ngircd.port)},
        allow_other_servers=True,
        user_settable=["nick", "host", "port"],
    )
    alice = world.alice
    port = world.listener.port
    # Overrides as an older database may hold them, aiming each server at the listener.
    names = ["localhost", "127.0.0.1", "2130706433", "169.254.169.254", "mapped.example"]
    for name in names:
        store_override(gateway, "alice@example.org", name, {"port": port})
    store_override(
        gateway, "alice@example.org", "mapped.example", {"host": "::ffff:127.0.0.1", "port": port}
    )
    for name in names:
        error = await join_refused(alice, f"#x%{name}@{GW}")
        assert error["error"]["condition"] == "not-allowed", error
        text = error["error"]["text"]
        assert text == f"cannot connect to {name}: {REFUSED}", text
    # A private message to a nick there is refused the same way.
    alice.send_message(f"bob%localhost@{GW}", "hello")
    bounced = await alice.expect(
        lambda s: isinstance(s, Message) and s["type"] == "error", timeout=10
    )
    assert REFUSED in bounced["error"]["text"]
    # And a host of the user's own, in the settings form.
    reply = await submit_settings(alice, "free.example", {"host": "[::ffff:127.0.0.1]"})
    refused_with(reply, "not-allowed", REFUSED)
    await asyncio.sleep(0.5)
    assert world.listener.connections == 0
    assert not re.search(r"connect failed.*(localhost|127\.0\.0\.1|169\.254)", gateway.log())


async def test_connections_per_user_are_capped(world: World) -> None:
    servers = {
        name: {
            "host": "127.0.0.1",
            "port": world.ngircd.port,
            "tls": False,
            "throttle": None,
            "password": ADMIN_PASS,
        }
        for name in ("one.localhost", "two.localhost", "three.localhost")
    }
    await world.gateway(servers, max_connections_per_user=2)
    alice = world.alice
    await join(alice, f"#a%one.localhost@{GW}", "alice")
    await join(alice, f"#b%two.localhost@{GW}", "alice2")  # one nick per connection

    error = await join_refused(alice, f"#c%three.localhost@{GW}", "alice3")
    assert error["error"]["condition"] == "resource-constraint", error
    assert "you already have 2 IRC connections" in error["error"]["text"]
    alice.send_message(f"bob%three.localhost@{GW}", "hello")
    bounced = await alice.expect(
        lambda s: isinstance(s, Message) and s["type"] == "error", timeout=10
    )
    assert "you already have 2 IRC connections" in bounced["error"]["text"]

    # Leaving a server frees its place.
    alice.send_raw(f"<presence to='#a%one.localhost@{GW}/alice' type='unavailable'/>")
    await alice.expect(is_presence(f"#a%one.localhost@{GW}/alice", "unavailable"))
    await asyncio.sleep(0.5)
    await join(alice, f"#c%three.localhost@{GW}", "alice3")


async def whois_away(person: Any, nick: str) -> list[str]:
    before = len(person.lines)
    await person.send(f"WHOIS {nick}")
    await person.expect(rf"^:\S+ 318 {person.nick} {nick} ")
    return [line for line in person.lines[before:] if re.match(r"^:\S+ 301 ", line)]


async def test_a_multi_line_away_status_survives_a_server_restart(world: World) -> None:
    await world.gateway({"irc.localhost": admin_server(world.ngircd.port)})
    alice = world.alice
    room = f"#test%irc.localhost@{GW}"
    bob = await world.irc_person("bob")
    await bob.join("#test")
    await join(alice, room, "alice")
    alice.send_raw(
        f"<presence to='{room}/alice'><show>away</show>"
        "<status>gone for lunch\nback at two\r\nor three</status></presence>"
    )
    await until(lambda: whois_away(bob, "alice"))
    assert (await whois_away(bob, "alice"))[0].endswith(
        " alice :gone for lunch back at two or three"
    )

    world.ngircd.kill()
    world.ngircd.start()
    bob2 = await world.irc_person("bob")
    await bob2.join("#test")
    await bob2.expect(r"^:alice!\S+ JOIN :?#test", timeout=20)
    away = await whois_away(bob2, "alice")
    assert away and away[0].endswith(" alice :gone for lunch back at two or three"), away
    await bob2.privmsg("#test", "welcome back")
    await alice.expect_message(from_=f"{room}/bob", body="welcome back")


async def until(check: Callable[[], Awaitable[list[str]]], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.2)


async def test_a_raw_kick_with_a_line_break_is_refused_clearly(world: World) -> None:
    await world.gateway({"irc.localhost": admin_server(world.ngircd.port)})
    alice = world.alice
    bob = await world.irc_person("bob")
    await join(alice, f"#kick%irc.localhost@{GW}", "alice")  # first in: channel operator
    await bob.join("#kick")
    alice.send_message(f"irc.localhost@{GW}", "KICK #kick bob :first line\nINVITE x #kick")

    def error(stanza: StanzaBase) -> bool:
        return isinstance(stanza, Message) and stanza["type"] == "error"

    bounced = await alice.expect(error, timeout=10)
    assert bounced["error"]["condition"] == "bad-request"
    assert "single line" in bounced["error"]["text"]
    await asyncio.sleep(0.5)
    assert not [line for line in bob.lines if " KICK " in line or " INVITE " in line]
