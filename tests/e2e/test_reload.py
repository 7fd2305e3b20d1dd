"""SIGHUP reloads the config without dropping connections, against real Prosody and ngIRCd.

What a reload must apply (hooks, allowed domains, admins, IRC servers, log level), what it
must keep (the IRC connection and the room a user is in), what re-attaches (a component with
a new jid or secret, alone), and what it must refuse (a bad file: the old config stays).
"""

from __future__ import annotations

import asyncio
import copy
import re
import signal
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from slixmpp import Iq, Presence
from support.fixture_types import ConnectIrc, ConnectXmpp, MakeNgircd, MakeProsody
from support.gateway import GatewayProcess
from support.ngircd import Ngircd
from support.prosody import Prosody
from support.xmpp_client import XmppClient

pytestmark = pytest.mark.e2e

IRC, HOOKS, HOOKS2 = "irc.example.org", "hooks.example.org", "hooks2.example.org"
SECRETS = {IRC: "irc-component-s3cret", HOOKS: "hooks-component-s3cret", HOOKS2: "hooks2-s3cret-x"}
ROOM = f"#test%irc.localhost@{IRC}"
TOKEN, NEW_TOKEN = "alerts-token-0123456789", "deploys-token-9876543210"
COMMANDS = "http://jabber.org/protocol/commands"


def settings(prosody: Prosody, ngircd: Ngircd) -> dict[str, Any]:
    return {
        "xmpp": {"host": "127.0.0.1", "port": prosody.component_port, "reconnect_max_seconds": 1},
        "allowed_domains": ["example.org"],
        "transports": {
            "irc": {
                "jid": IRC,
                "secret": SECRETS[IRC],
                "servers": {
                    "irc.localhost": {"host": "127.0.0.1", "port": ngircd.port, "tls": False}
                },
            },
            "webhook": {
                "jid": HOOKS,
                "secret": SECRETS[HOOKS],
                "hooks": [
                    {
                        "name": "alerts",
                        "owner": "alice@example.org",
                        "token": TOKEN,
                        "deliver_to": ["alice@example.org"],
                    }
                ],
            },
        },
    }


@dataclass
class World:
    gateway: GatewayProcess
    ngircd: Ngircd
    alice: XmppClient
    connect_irc: ConnectIrc
    prosody: Prosody
    connect_xmpp: ConnectXmpp

    async def reload(self, change: Any) -> str:
        """Edit the config file with ``change(config)``, SIGHUP, and return the log since."""
        config = copy.deepcopy(self.gateway.config)
        change(config)
        self.gateway.config = config
        self.gateway.config_path.write_text(yaml.safe_dump(config))
        before = len(self.gateway.log())
        assert self.gateway.process is not None
        self.gateway.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            since = self.gateway.log()[before:]
            if "config reloaded" in since or "config not reloaded" in since:
                return since
            assert self.gateway.process.poll() is None, self.gateway.log()
            await asyncio.sleep(0.1)
        raise AssertionError(f"no reload in the log:\n{self.gateway.log()}")


@pytest.fixture
async def world(
    tmp_path: Path,
    make_prosody: MakeProsody,
    make_ngircd: MakeNgircd,
    xmpp_client: ConnectXmpp,
    irc_client: ConnectIrc,
) -> AsyncIterator[World]:
    prosody = make_prosody(components=SECRETS, users={"alice": "alice-pw", "carol": "carol-pw"})
    ngircd = make_ngircd()
    gateway = GatewayProcess(tmp_path / "gateway", settings(prosody, ngircd))
    gateway.config_path.chmod(0o600)
    await gateway.astart()
    alice = await xmpp_client("alice@example.org", "alice-pw", prosody)
    try:
        yield World(gateway, ngircd, alice, irc_client, prosody, xmpp_client)
    finally:
        gateway.stop()


def post(gateway: GatewayProcess, hook: str, token: str, body: str) -> int:
    request = urllib.request.Request(
        f"{gateway.base_url}/hooks/{hook}",
        data=body.encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


async def join(alice: XmppClient, room: str, nick: str = "alice") -> Presence:
    """The presence that answers a join: the self-presence, or an error."""
    alice.send_raw(
        f"<presence to='{room}/{nick}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
    )

    def answer(stanza: Any) -> bool:
        return isinstance(stanza, Presence) and stanza["from"].bare == room

    reply = await alice.expect(answer, timeout=15)
    assert isinstance(reply, Presence)
    return reply


async def list_users(alice: XmppClient) -> Iq:
    return await alice.iq(
        f"<iq type='set' to='{IRC}'><command xmlns='{COMMANDS}' node='portway-registrations'"
        " action='execute'/></iq>"
    )


async def test_sighup_applies_new_settings_and_keeps_connections(world: World) -> None:
    alice, gateway = world.alice, world.gateway
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#test")
    assert (await join(alice, ROOM))["type"] != "error"
    await bob.expect(r"^:alice!\S+ JOIN :?#test")
    # What the new config will allow, refused under the old one:
    assert (await list_users(alice))["error"]["condition"] == "forbidden"
    assert post(gateway, "deploys", NEW_TOKEN, "v2 is out") == 404
    assert (await join(alice, f"#ops%other.localhost@{IRC}"))["type"] == "error"
    alice.drain()

    def change(config: dict[str, Any]) -> None:
        config["admins"] = ["alice@example.org"]
        config["log_level"] = "INFO"
        config["http"]["listen"] = "127.0.0.1:1"  # a new listener needs a restart
        irc = config["transports"]["irc"]
        irc["servers"] = {
            **irc["servers"],
            "other.localhost": dict(irc["servers"]["irc.localhost"]),
        }
        hook = {"name": "deploys", "owner": "alice@example.org", "token": NEW_TOKEN}
        config["transports"]["webhook"]["hooks"].append(hook)

    since = await world.reload(change)
    assert "config reloaded" in since and "re-attached" not in since, since
    assert "changes that take effect at the next restart: http\n" in since, since

    # Kept: alice's IRC connection and her room; nobody left or came back on either side.
    await bob.privmsg("#test", "still there?")
    await alice.expect_message(from_=f"{ROOM}/bob", body="still there?")
    alice.send_message(ROOM, "still here", mtype="groupchat")
    await bob.expect(r"^:alice!\S+ PRIVMSG #test :still here$")
    assert not [line for line in bob.lines if re.search(r"^:alice!\S+ (QUIT|PART|JOIN)", line)][1:]
    assert gateway.log().count(f"{IRC}: attached") == 1
    # Applied: admins, hooks, IRC servers, log level.
    assert (await list_users(alice))["type"] == "result"
    assert post(gateway, "deploys", NEW_TOKEN, "v2 is out") == 202
    await alice.expect_message(from_=f"deploys@{HOOKS}", body="v2 is out")
    assert (await join(alice, f"#ops%other.localhost@{IRC}"))["type"] != "error"
    after = gateway.log()[gateway.log().index("config reloaded") :]
    assert " DEBUG " not in after

    # allowed_domains too: example.org is no longer served.
    def elsewhere(config: dict[str, Any]) -> None:
        config["allowed_domains"] = ["elsewhere.example"]

    await world.reload(elsewhere)
    refused = await list_users(alice)
    assert refused["error"]["condition"] == "forbidden"
    assert "your server may not use this gateway" in refused["error"]["text"]


async def test_new_defaults_of_a_configured_irc_server_apply_to_the_next_connection(
    world: World,
) -> None:
    """The README: IRC servers *and their defaults* take effect. A server already in the
    config gets a username and real name; the next connection to it registers with them,
    while the one already open stays as it registered."""
    alice, gateway = world.alice, world.gateway
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#test")
    assert (await join(alice, ROOM))["type"] != "error"
    await bob.expect(r"^:alice!~?alice@\S+ JOIN :?#test")

    def defaults(config: dict[str, Any]) -> None:
        server = config["transports"]["irc"]["servers"]["irc.localhost"]
        server.update({"username": "relayed", "realname": "Relayed by Portway"})

    since = await world.reload(defaults)
    assert "config reloaded" in since and "next restart" not in since, since

    carol = await world.connect_xmpp("carol@example.org", "carol-pw", world.prosody)
    assert (await join(carol, ROOM, "carol"))["type"] != "error"
    await bob.expect(r"^:carol!~?relayed@\S+ JOIN :?#test")
    await bob.send("WHOIS carol")
    await bob.expect(r" 311 bob carol ~?relayed \S+ \* :Relayed by Portway$")
    # alice's connection was not redone for it: same registration, never quit.
    await bob.send("WHOIS alice")
    await bob.expect(r" 311 bob alice ~?alice \S+ \* :alice$")
    assert not [line for line in bob.lines if re.search(r"^:alice!\S+ (QUIT|PART)", line)]
    assert gateway.log().count(f"{IRC}: attached") == 1


async def test_a_new_jid_and_secret_reattach_that_component_alone(world: World) -> None:
    alice, gateway = world.alice, world.gateway
    bob = await world.connect_irc(world.ngircd, "bob")
    await bob.join("#test")
    assert (await join(alice, ROOM))["type"] != "error"
    assert post(gateway, "alerts", TOKEN, "before") == 202
    await alice.expect_message(from_=f"alerts@{HOOKS}", body="before")

    def move(config: dict[str, Any]) -> None:
        config["transports"]["webhook"] = {
            **config["transports"]["webhook"],
            "jid": HOOKS2,
            "secret": SECRETS[HOOKS2],
        }

    since = await world.reload(move)
    assert "re-attached webhook" in since, since
    await gateway.wait_health(attached=True)
    assert set(gateway.health()[1]["components"]) == {IRC, HOOKS2}, gateway.health()
    assert post(gateway, "alerts", TOKEN, "after") == 202
    await alice.expect_message(from_=f"alerts@{HOOKS2}", body="after")
    # The old domain is gone from the server; the IRC component never left.
    gone = await alice.iq(
        f"<iq type='get' to='{HOOKS}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
    )
    assert gone["type"] == "error"
    await bob.privmsg("#test", "irc untouched")
    await alice.expect_message(from_=f"{ROOM}/bob", body="irc untouched")
    assert gateway.log().count(f"{IRC}: attached") == 1
    assert SECRETS[HOOKS2] not in gateway.log()


async def test_a_refused_new_secret_keeps_the_component_as_it_was(world: World) -> None:
    """A secret cannot be checked before the server sees it: the refusal comes at re-attach,
    and then the component comes back as it was, instead of the gateway stopping."""
    alice, gateway = world.alice, world.gateway

    def wrong(config: dict[str, Any]) -> None:
        webhook = config["transports"]["webhook"]
        config["transports"]["webhook"] = {**webhook, "jid": HOOKS2, "secret": "not-the-secret"}
        hook = {"name": "deploys", "owner": "alice@example.org", "token": NEW_TOKEN}
        webhook["hooks"].append(hook)  # the rest of the section still applies

    since = await world.reload(wrong)
    assert f"the XMPP server refused the component secret for {HOOKS2}" in since, since
    assert "webhook keeps its previous jid and secret" in since
    assert "not-the-secret" not in gateway.log()
    await gateway.wait_health(attached=True)
    assert set(gateway.health()[1]["components"]) == {IRC, HOOKS}
    assert post(gateway, "alerts", TOKEN, "still here") == 202
    await alice.expect_message(from_=f"alerts@{HOOKS}", body="still here")
    assert post(gateway, "deploys", NEW_TOKEN, "new hook, old jid") == 202
    await alice.expect_message(from_=f"deploys@{HOOKS}", body="new hook, old jid")
    assert gateway.process is not None and gateway.process.poll() is None

    # The next reload compares with what runs: the right secret now re-attaches.
    def right(config: dict[str, Any]) -> None:
        config["transports"]["webhook"]["secret"] = SECRETS[HOOKS2]

    assert "re-attached webhook" in await world.reload(right)
    assert post(gateway, "alerts", TOKEN, "moved") == 202
    await alice.expect_message(from_=f"alerts@{HOOKS2}", body="moved")


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        ("allowed_domains: [example.org\n", "line"),
        ("xmpp: {port: notaport}\nallowed_domains: [example.org]\ntransports: {}\n", "xmpp.port"),
    ],
)
async def test_a_bad_config_keeps_the_old_one_running(
    world: World, broken: str, reason: str
) -> None:
    alice, gateway = world.alice, world.gateway
    gateway.config_path.write_text(broken)
    before = len(gateway.log())
    assert gateway.process is not None
    gateway.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "config not reloaded" not in gateway.log()[before:]:
        assert time.monotonic() < deadline, gateway.log()
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.3)
    lines = gateway.log()[before:].strip().splitlines()
    assert len(lines) == 1, lines  # one clear line, no traceback
    assert "config not reloaded, the running one stays: " in lines[0]
    assert str(gateway.config_path) in lines[0] and reason in lines[0]
    assert " ERROR " in lines[0]
    # Still running, as configured before.
    assert gateway.health()[0] == 200
    assert post(gateway, "alerts", TOKEN, "still routed") == 202
    await alice.expect_message(from_=f"alerts@{HOOKS}", body="still routed")
