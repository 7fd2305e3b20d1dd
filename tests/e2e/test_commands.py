"""Ad-hoc commands (XEP-0050) and registration, against a real Prosody and the real gateway.

Clients without an XEP-0077 form (profanity) register with the "Register" command; what shows
only shows (status, lists) completes at once instead of asking to submit an empty form; the
IRC settings form keeps only what the user changed; and the JIDs a config hook names may
write to it without registering, while everyone else still must.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from slixmpp import Iq, Message
from support.fixture_types import ConnectXmpp, MakeProsody
from support.gateway import GatewayProcess
from support.hook_endpoint import ScriptedEndpoint
from support.ports import free_port
from support.prosody import Prosody
from support.xmpp_client import XmppClient

pytestmark = pytest.mark.e2e

IRC = "irc.example.org"
MAIL = "mail.example.org"
HOOKS = "hooks.example.org"
SECRETS = {IRC: "irc-component-s3cret", MAIL: "mail-component-s3cret", HOOKS: "hooks-s3cret"}
USERS = {name: f"{name}-pw" for name in ("alice", "bob", "carol", "eve", "admin")}
TOKEN = "whsec_Ym90LXNlY3JldC1mb3ItdGVzdHMtMDE="
BOT = f"bot@{HOOKS}"
NS = "http://jabber.org/protocol/commands"
IRC_SERVERS = ("irc.localhost", "irc.other")


def settings(prosody: Prosody, url: str, irc_encoding: str = "utf-8") -> dict[str, Any]:
    servers = {name: {"port": free_port(), "tls": False} for name in IRC_SERVERS}
    servers["irc.localhost"]["encoding"] = irc_encoding
    return {
        "xmpp": {"host": "127.0.0.1", "port": prosody.component_port, "reconnect_max_seconds": 2},
        "admins": ["admin@example.org"],
        "allowed_domains": ["example.org"],
        "transports": {
            "irc": {"jid": IRC, "secret": SECRETS[IRC], "servers": servers},
            "email": {
                "jid": MAIL,
                "secret": SECRETS[MAIL],
                "domain": MAIL,
                "smtp_listen": f"127.0.0.1:{free_port()}",
                "smarthost": {"host": "127.0.0.1", "port": free_port(), "starttls": False},
            },
            "webhook": {
                "jid": HOOKS,
                "secret": SECRETS[HOOKS],
                "allow_networks": ["127.0.0.0/8"],  # the endpoint is on loopback
                "hooks": [
                    {
                        "name": "bot",
                        "owner": "alice@example.org",
                        "token": TOKEN,
                        "url": url,
                        "deliver_to": ["bob@example.org"],
                    }
                ],
            },
        },
    }


@dataclass
class World:
    prosody: Prosody
    gateway: GatewayProcess
    endpoint: ScriptedEndpoint
    alice: XmppClient
    connect: ConnectXmpp

    async def user(self, name: str) -> XmppClient:
        return await self.connect(f"{name}@example.org", f"{name}-pw", self.prosody)


@pytest.fixture
async def world(
    tmp_path: Path, make_prosody: MakeProsody, xmpp_client: ConnectXmpp
) -> AsyncIterator[World]:
    endpoint = ScriptedEndpoint(TOKEN)
    await endpoint.up()
    prosody = make_prosody(components=SECRETS, users=USERS)
    gateway = GatewayProcess(tmp_path / "gateway", settings(prosody, endpoint.url))
    await gateway.astart()
    alice = await xmpp_client("alice@example.org", "alice-pw", prosody)
    yield World(prosody, gateway, endpoint, alice, xmpp_client)
    gateway.stop()
    await endpoint.down()


# -- helpers -------------------------------------------------------------------------------------


async def execute(client: XmppClient, jid: str, node: str) -> Iq:
    return await client.iq(
        f"<iq type='set' to='{jid}'><command xmlns='{NS}' node='{node}' action='execute'/></iq>"
    )


async def submit(client: XmppClient, jid: str, started: Iq, values: dict[str, str]) -> Iq:
    """Submit the form of a started command (``complete``), with ``values`` as typed."""
    assert started["type"] == "result", started
    assert started["command"]["status"] == "executing", started
    fields = "".join(
        f"<field var='{var}'><value>{value}</value></field>" for var, value in values.items()
    )
    return await client.iq(
        f"<iq type='set' to='{jid}'><command xmlns='{NS}' node='{started['command']['node']}'"
        f" sessionid='{started['command']['sessionid']}' action='complete'>"
        f"<x xmlns='jabber:x:data' type='submit'>{fields}</x></command></iq>"
    )


def prefilled(reply: Iq) -> dict[str, str]:
    """The form's fields as a client sends them back untouched: every value, as text."""
    values = {}
    for var, field in reply["command"]["form"].get_fields().items():
        value = field.get_value(convert=False)
        values[var] = "\n".join(value) if isinstance(value, list) else str(value or "")
    return values


def completed_note(reply: Iq) -> str:
    """The note of a command that completed in this reply, with no form left to fill in."""
    assert reply["type"] == "result", reply
    assert reply["command"]["status"] == "completed", reply
    assert reply.xml.find(f"{{{NS}}}command/{{jabber:x:data}}x") is None, reply
    return "\n".join(text for _kind, text in reply["command"]["notes"])


def send(client: XmppClient, to: str, msg_id: str, body: str) -> None:
    client.send_raw(f"<message to='{to}' id='{msg_id}' type='chat'><body>{body}</body></message>")


async def error_condition(client: XmppClient, msg_id: str) -> str:
    def is_error(stanza: Any) -> bool:
        return isinstance(stanza, Message) and stanza["type"] == "error" and stanza["id"] == msg_id

    found = await client.expect(is_error)
    return str(found["error"]["condition"])


async def xep77_register(client: XmppClient, jid: str, fields: str = "") -> Iq:
    return await client.iq(
        f"<iq type='set' to='{jid}'><query xmlns='jabber:iq:register'>"
        f"<x xmlns='jabber:x:data' type='submit'>{fields}</x></query></iq>"
    )


# -- hooks from the config ---------------------------------------------------------------------


async def test_the_jids_a_config_hook_names_write_to_it_without_registering(world: World) -> None:
    alice, bob, eve = world.alice, await world.user("bob"), await world.user("eve")
    send(alice, BOT, "a1", "from the owner")
    send(bob, BOT, "b1", "from a target")
    received = await world.endpoint.wait_for(2)
    assert sorted(r.json["body"] for r in received) == ["from a target", "from the owner"]
    assert all(r.signature_ok for r in received)
    # Nobody registered for that; a JID the hook does not name may still not write.
    assert "example.org" not in world.gateway.cli("mappings", "list").stdout
    send(eve, BOT, "e1", "let me in")
    assert await error_condition(eve, "e1") == "forbidden"
    await eve.iq(f"<iq type='get' to='{HOOKS}'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert len(world.endpoint.received) == 2


async def test_other_hooks_still_need_registration(world: World) -> None:
    alice, carol = world.alice, await world.user("carol")
    started = await execute(alice, HOOKS, "portway-register")
    assert "registered with hooks.example.org" in completed_note(started)
    created = await submit(
        alice,
        HOOKS,
        await execute(alice, HOOKS, "webhook-create"),
        {"name": "mine", "deliver_to": "carol@example.org"},
    )
    assert "Created mine@hooks.example.org" in completed_note(created)
    # Carol is a target of alice's hook, not of a config hook: she must register first.
    send(carol, f"mine@{HOOKS}", "c1", "hello")
    assert await error_condition(carol, "c1") == "registration-required"
    assert (await xep77_register(carol, HOOKS))["type"] == "result"
    send(carol, f"mine@{HOOKS}", "c2", "hello")
    assert await error_condition(carol, "c2") == "service-unavailable"  # the hook has no url


# -- registration as a command -----------------------------------------------------------------


async def test_every_component_offers_register_as_a_command(world: World) -> None:
    alice = world.alice
    for jid in SECRETS:
        items = await alice.iq(
            f"<iq type='get' to='{jid}'><query xmlns='http://jabber.org/protocol/disco#items' "
            f"node='{NS}'/></iq>"
        )
        named = {item[1]: item[2] for item in items["disco_items"]["items"]}
        assert named.get("portway-register") == "Register", (jid, named)
        assert named.get("portway-unregister") == "Unregister", (jid, named)


async def test_register_command_validates_and_binds_as_xep77_does(world: World) -> None:
    alice, bob = world.alice, await world.user("bob")
    started = await execute(alice, MAIL, "portway-register")
    form = started["command"]["form"]
    assert form["title"] == "Register with Email"
    assert "Choose your email address at mail.example.org" in form["instructions"]
    assert prefilled(started)["address"] == "alice"

    # The transport's own checks: a role address is refused with the XEP-0077 reason.
    refused = await submit(alice, MAIL, started, {"address": "postmaster"})
    assert refused["type"] == "error", refused
    assert refused["error"]["condition"] == "not-allowed"
    assert "reserved for the domain's administrators" in refused["error"]["text"]
    assert "alice" not in world.gateway.cli("mappings", "list").stdout

    done = await submit(
        alice, MAIL, await execute(alice, MAIL, "portway-register"), {"address": "Alice.B"}
    )
    assert "alice.b@mail.example.org" in completed_note(done)
    await alice.expect_presence(from_=MAIL, type_="subscribe")  # XEP-0100, as after XEP-0077
    listed = world.gateway.cli("mappings", "list").stdout
    assert "alice@example.org" in listed and "alice.b" in listed
    xep77 = await alice.iq(f"<iq type='get' to='{MAIL}'><query xmlns='jabber:iq:register'/></iq>")
    assert xep77["register"]["registered"]

    # The address is taken: the same refusal through XEP-0077 and through the command.
    taken_77 = await xep77_register(
        bob, MAIL, "<field var='address'><value>alice.b</value></field>"
    )
    taken_cmd = await submit(
        bob, MAIL, await execute(bob, MAIL, "portway-register"), {"address": "alice.b"}
    )
    for taken in (taken_77, taken_cmd):
        assert taken["type"] == "error", taken
        assert taken["error"]["condition"] == "conflict"
        assert taken["error"]["text"] == taken_77["error"]["text"]
        assert taken["error"]["text"].endswith("alice.b is taken")
    missing = await submit(bob, MAIL, await execute(bob, MAIL, "portway-register"), {})
    assert missing["type"] == "error" and "please fill in" in missing["error"]["text"]
    assert "bob@example.org" not in world.gateway.cli("mappings", "list").stdout

    gone = await submit(
        alice, MAIL, await execute(alice, MAIL, "portway-unregister"), {"confirm": "1"}
    )
    assert "no longer registered" in completed_note(gone)
    assert "alice@example.org" not in world.gateway.cli("mappings", "list").stdout


# -- commands that only show -------------------------------------------------------------------


async def test_commands_that_only_show_complete_at_once(world: World) -> None:
    alice, admin = world.alice, await world.user("admin")
    not_yet = completed_note(await execute(alice, MAIL, "portway-status"))
    assert not_yet.startswith("You are not registered with mail.example.org")
    await submit(alice, MAIL, await execute(alice, MAIL, "portway-register"), {"address": "alice"})
    shown = completed_note(await execute(alice, MAIL, "portway-status"))
    assert "Your address there: alice@mail.example.org." in shown

    # IRC needs no registration, and does not say "You are not registered".
    irc = completed_note(await execute(alice, IRC, "portway-status"))
    assert "not registered" not in irc and "needs no registration" in irc

    listing = completed_note(await execute(admin, MAIL, "portway-registrations"))
    assert listing == "1 registered:\nalice@example.org  alice@mail.example.org"
    refused = await execute(alice, MAIL, "portway-registrations")
    assert refused["type"] == "error" and refused["error"]["condition"] == "forbidden"

    # Alice's hooks: the config hook she owns, although she never registered with hooks.
    hooks = completed_note(await execute(alice, HOOKS, "webhook-list"))
    assert "bot@hooks.example.org" in hooks and "(set by the admin)" in hooks
    assert TOKEN not in hooks
    nothing = completed_note(await execute(await world.user("eve"), HOOKS, "portway-status"))
    assert "eve" not in nothing and "hooks.example.org" in nothing


async def test_commands_with_nothing_to_choose_say_so(world: World) -> None:
    """Rotating or deleting with no hook of one's own: a plain answer, not an empty form."""
    alice = world.alice
    await execute(alice, HOOKS, "portway-register")
    for node in ("webhook-rotate", "webhook-delete"):
        note = completed_note(await execute(alice, HOOKS, node))
        assert "no hooks of your own" in note, (node, note)


# -- IRC server settings -----------------------------------------------------------------------


async def test_irc_settings_keep_only_what_the_user_changed(world: World, tmp_path: Path) -> None:
    alice = world.alice
    first = await execute(alice, IRC, "irc-server-settings")
    server = first["command"]["form"].get_fields()["server"]
    assert server["type"] == "list-single"
    assert sorted(option["value"] for option in server["options"]) == sorted(IRC_SERVERS)

    step2 = await submit_next(alice, first, {"server": "irc.localhost"})
    assert step2["command"]["form"]["title"] == "Settings for irc.localhost"
    values = prefilled(step2)
    assert values["encoding"] == "utf-8"
    # As a client does: every pre-filled field comes back, one of them changed.
    done = await submit(alice, IRC, step2, {**values, "nick": "alicia"})
    assert "saved" in completed_note(done)

    # The admin changes the server's encoding: alice never changed hers, so it reaches her.
    world.gateway.stop()
    again = GatewayProcess(
        world.gateway.workdir, settings(world.prosody, world.endpoint.url, "latin-1")
    )
    await again.astart()
    try:
        shown = prefilled(await execute(alice, f"irc.localhost@{IRC}", "irc-server-settings"))
        assert shown["nick"] == "alicia"
        assert shown["encoding"] == "latin-1"
        # Changing a field back to the admin's value follows the admin again.
        form = await execute(alice, f"irc.localhost@{IRC}", "irc-server-settings")
        done = await submit(alice, f"irc.localhost@{IRC}", form, {**shown, "nick": ""})
        assert "saved" in completed_note(done)
        cleared = prefilled(await execute(alice, f"irc.localhost@{IRC}", "irc-server-settings"))
        assert cleared["nick"] == "" and cleared["encoding"] == "latin-1"
    finally:
        again.stop()


async def submit_next(client: XmppClient, started: Iq, values: dict[str, str]) -> Iq:
    """Submit a first step whose answer is another form (``next``)."""
    fields = "".join(f"<field var='{k}'><value>{v}</value></field>" for k, v in values.items())
    reply = await client.iq(
        f"<iq type='set' to='{IRC}'><command xmlns='{NS}' node='irc-server-settings'"
        f" sessionid='{started['command']['sessionid']}' action='next'>"
        f"<x xmlns='jabber:x:data' type='submit'>{fields}</x></command></iq>"
    )
    assert reply["type"] == "result" and reply["command"]["status"] == "executing", reply
    return reply
