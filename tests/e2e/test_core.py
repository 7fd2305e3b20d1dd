"""The gateway core against a real Prosody: disco, iq:gateway, registration, outages, CLI.

One process runs all four components here, as a production deployment would.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sqlite3
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from slixmpp import Iq
from support.fixture_types import ConnectXmpp, MakeProsody
from support.gateway import GatewayProcess
from support.ports import free_port
from support.prosody import Prosody
from support.xmpp_client import XmppClient

pytestmark = pytest.mark.e2e

SECRETS = {
    "irc.example.org": "irc-component-s3cret",
    "sms.example.org": "sms-component-s3cret",
    "mail.example.org": "mail-component-s3cret",
    "hooks.example.org": "hooks-component-s3cret",
}
HOOK_TOKEN = "hook-token-0123456789"
USERS = {"alice": "alice-pw", "bob": "bob-pw"}


def settings(prosody: Prosody) -> dict[str, Any]:
    return {
        "xmpp": {"host": "127.0.0.1", "port": prosody.component_port, "reconnect_max_seconds": 2},
        "admins": ["admin@example.org"],
        "allowed_domains": ["example.org"],
        "transports": {
            "irc": {
                "jid": "irc.example.org",
                "secret": SECRETS["irc.example.org"],
                "servers": {"irc.localhost": {"port": free_port(), "tls": False}},
            },
            "sms": {
                "jid": "sms.example.org",
                "secret": SECRETS["sms.example.org"],
                "account_sid": "AC" + "0" * 32,
                "auth_token": "twilio-auth-token-123",
                "api_base_url": f"http://127.0.0.1:{free_port()}",
                "default_region": "US",
            },
            "email": {
                "jid": "mail.example.org",
                "secret": SECRETS["mail.example.org"],
                "domain": "mail.example.org",
                "smtp_listen": f"127.0.0.1:{free_port()}",
                "smarthost": {"host": "127.0.0.1", "port": free_port(), "starttls": False},
            },
            "webhook": {
                "jid": "hooks.example.org",
                "secret": SECRETS["hooks.example.org"],
                "hooks": [
                    {
                        "name": "alerts",
                        "owner": "alice@example.org",
                        "token": HOOK_TOKEN,
                        "deliver_to": ["alice@example.org"],
                    }
                ],
            },
        },
    }


@pytest.fixture
async def world(tmp_path: Path, make_prosody: MakeProsody, xmpp_client: ConnectXmpp) -> Any:
    prosody = make_prosody(components=SECRETS, users=USERS)
    gateway = GatewayProcess(tmp_path / "gateway", settings(prosody))
    await gateway.astart()
    alice = await xmpp_client("alice@example.org", "alice-pw", prosody)
    yield prosody, gateway, alice
    gateway.stop()


@pytest.fixture
async def privileged_world(
    tmp_path: Path, make_prosody: MakeProsody, xmpp_client: ConnectXmpp
) -> Any:
    """The hooks component with XEP-0356 roster access, and alice has received one post."""
    prosody = make_prosody(components=SECRETS, users=USERS, privileged=["hooks.example.org"])
    gateway = GatewayProcess(tmp_path / "gateway", settings(prosody))
    await gateway.astart()
    alice = await xmpp_client("alice@example.org", "alice-pw", prosody)
    await asyncio.sleep(0.5)  # the server advertises the privileges right after attaching
    assert post_hook(gateway, "hello roster")[0] == 202
    await alice.expect_message(from_="alerts@hooks.example.org", body="hello roster")
    yield prosody, gateway, alice
    gateway.stop()


def post_hook(gateway: GatewayProcess, body: str, token: str = HOOK_TOKEN) -> tuple[int, str]:
    request = urllib.request.Request(
        f"{gateway.base_url}/hooks/alerts",
        data=body.encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


async def until_confirmed(gateway: GatewayProcess, timeout: float = 10) -> None:
    def unconfirmed() -> int:
        with sqlite3.connect(gateway.workdir / "portway.db") as db:
            return int(
                db.execute("SELECT COUNT(*) FROM inbound WHERE state != 'delivered'").fetchone()[0]
            )

    for _ in range(int(timeout * 10)):
        if await asyncio.to_thread(unconfirmed) == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the gateway never confirmed what it delivered")


GATEWAY_NS = "jabber:iq:gateway"


def gateway_jid(reply: Iq) -> str | None:
    return reply.xml.findtext(f"{{{GATEWAY_NS}}}query/{{{GATEWAY_NS}}}jid")


async def iq(client: XmppClient, xml: str) -> Iq:
    return await client.iq(xml)


async def test_each_component_answers_disco_ping_and_version(world: Any) -> None:
    _prosody, _gateway, alice = world
    expected = {
        "irc.example.org": "irc",
        "sms.example.org": "sms",
        "mail.example.org": "smtp",
        "hooks.example.org": "http-ws",
    }
    for jid, gateway_type in expected.items():
        reply = await iq(
            alice,
            f"<iq type='get' to='{jid}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
        )
        assert reply["type"] == "result", reply
        identities = {(i[0], i[1]) for i in reply["disco_info"]["identities"]}
        assert ("gateway", gateway_type) in identities
        features = set(reply["disco_info"]["features"])
        for feature in (
            "jid\\20escaping",
            "jabber:iq:gateway",
            "jabber:iq:register",
            "http://jabber.org/protocol/commands",
            "urn:xmpp:ping",
            "jabber:iq:version",
        ):
            assert feature in features, (jid, feature)
        if gateway_type != "irc":
            assert "http://jabber.org/protocol/muc" not in features, jid
        ping = await iq(alice, f"<iq type='get' to='{jid}'><ping xmlns='urn:xmpp:ping'/></iq>")
        assert ping["type"] == "result"
        version = await iq(
            alice, f"<iq type='get' to='{jid}'><query xmlns='jabber:iq:version'/></iq>"
        )
        assert version["software_version"]["name"] == "Portway"


async def test_iq_gateway_translates_addresses(world: Any) -> None:
    _prosody, _gateway, alice = world
    prompt = await iq(
        alice, "<iq type='get' to='mail.example.org'><query xmlns='jabber:iq:gateway'/></iq>"
    )
    assert prompt.xml.findtext(f"{{{GATEWAY_NS}}}query/{{{GATEWAY_NS}}}prompt")
    assert prompt.xml.findtext(f"{{{GATEWAY_NS}}}query/{{{GATEWAY_NS}}}desc")

    def ask(jid: str, text: str) -> str:
        return (
            f"<iq type='set' to='{jid}'><query xmlns='jabber:iq:gateway'>"
            f"<prompt>{text}</prompt></query></iq>"
        )

    email = await iq(alice, ask("mail.example.org", "juliet@capulet.lit"))
    assert gateway_jid(email) == "juliet\\40capulet.lit@mail.example.org"
    sms = await iq(alice, ask("sms.example.org", "(555) 765-4321"))
    assert gateway_jid(sms) == "+15557654321@sms.example.org"
    for jid, bad in (("mail.example.org", "not an address"), ("sms.example.org", "12")):
        refused = await iq(alice, ask(jid, bad))
        assert refused["type"] == "error"
        assert refused["error"]["condition"] == "jid-malformed"
        assert refused["error"]["text"]


REGISTER_GET = "<iq type='get' to='mail.example.org'><query xmlns='jabber:iq:register'/></iq>"
REGISTER_SET = (
    "<iq type='set' to='mail.example.org'><query xmlns='jabber:iq:register'>"
    "<x xmlns='jabber:x:data' type='submit'>"
    "<field var='address'><value>{address}</value></field>"
    "<field var='name'><value>Alice</value></field></x></query></iq>"
)


async def test_registration_survives_a_gateway_restart(
    world: Any, xmpp_client: ConnectXmpp
) -> None:
    prosody, gateway, alice = world
    form = await iq(alice, REGISTER_GET)
    assert form["type"] == "result"
    assert not form["register"]["registered"]
    assert form["register"]["form"].get_fields()["address"].get_value() == "alice"

    done = await iq(alice, REGISTER_SET.format(address="alice"))
    assert done["type"] == "result", done
    # XEP-0100: the gateway then asks for the user's presence.
    await alice.expect_presence(from_="mail.example.org", type_="subscribe")

    # Someone else cannot take the same address.
    bob = await xmpp_client("bob@example.org", "bob-pw", prosody)
    taken = await iq(bob, REGISTER_SET.format(address="alice"))
    assert taken["error"]["condition"] == "conflict"

    await gateway.arestart()
    again = await iq(alice, REGISTER_GET)
    assert again["register"]["registered"]
    listed = gateway.cli("mappings", "list")
    assert "email\talice@example.org\talice" in listed.stdout

    # Unregistering removes the user's data.
    removed = await iq(
        alice,
        "<iq type='set' to='mail.example.org'><query xmlns='jabber:iq:register'>"
        "<remove/></query></iq>",
    )
    assert removed["type"] == "result"
    assert "alice@example.org" not in gateway.cli("mappings", "list").stdout


async def test_users_of_other_domains_are_refused(
    tmp_path: Path, make_prosody: MakeProsody, xmpp_client: ConnectXmpp
) -> None:
    prosody = make_prosody(components=SECRETS, users=USERS)
    config = settings(prosody)
    config["allowed_domains"] = ["elsewhere.org"]  # alice@example.org is now an outsider
    gateway = GatewayProcess(tmp_path / "gateway", config)
    await gateway.astart()
    try:
        alice = await xmpp_client("alice@example.org", "alice-pw", prosody)
        refused = await iq(alice, REGISTER_SET.format(address="alice"))
        assert refused["error"]["condition"] == "forbidden"
        alice.send_message("juliet\\40capulet.lit@mail.example.org", "let me relay")
        error = await alice.expect_message(
            from_="juliet\\40capulet.lit@mail.example.org", with_body=False
        )
        assert error["type"] == "error" and error["error"]["condition"] == "forbidden"
        assert "alice@example.org" not in gateway.cli("mappings", "list").stdout
    finally:
        gateway.stop()


async def test_reattaches_after_prosody_restart_and_delivers_queued_in_order(
    world: Any, xmpp_client: ConnectXmpp
) -> None:
    prosody, gateway, alice = world
    status, _ = post_hook(gateway, "before the outage")
    assert status == 202
    await alice.expect_message(from_="alerts@hooks.example.org", body="before the outage")
    # Wait until the server has confirmed it (the answer to the ping after it): a batch the
    # server never confirmed is sent again after the outage, by design (at least once).
    await until_confirmed(gateway)

    await prosody.akill()
    await asyncio.sleep(0.5)
    code, health = await asyncio.to_thread(gateway.health)
    assert code == 503
    assert health["components"]["hooks.example.org"] in ("disconnected", "connecting")
    for n in range(5):
        status, _ = post_hook(gateway, f"queued {n}")
        assert status == 202
    await prosody.astart()
    await gateway.wait_health(attached=True, timeout=20)

    alice = await xmpp_client("alice@example.org", "alice-pw", prosody)
    bodies = []
    for _ in range(5):
        message = await alice.expect_message(from_="alerts@hooks.example.org", timeout=20)
        bodies.append(message["body"])
    assert bodies == [f"queued {n}" for n in range(5)]
    await asyncio.sleep(1)
    assert not [
        s for s in alice.drain() if s.name == "message" and s["body"].startswith("queued")
    ], "a queued message was delivered twice"
    with urllib.request.urlopen(f"{gateway.base_url}/metrics", timeout=10) as response:
        metrics = response.read().decode()
    assert 'portway_component_connected{transport="webhook"} 1.0' in metrics
    delivered = re.search(r'portway_inbound_delivered_total\{transport="webhook"\} (\S+)', metrics)
    assert delivered and float(delivered.group(1)) >= 6  # the posts, and the hook's presence
    assert 'portway_component_reconnects_total{transport="webhook"}' in metrics
    # One log line per attempt, and a line saying we are back.
    log = gateway.log()
    assert "attached again" in log
    assert log.count("reconnecting to") < 20


async def test_wrong_secret_is_fatal_and_clear(tmp_path: Path, make_prosody: MakeProsody) -> None:
    prosody = make_prosody(components=SECRETS, users=USERS)
    config = settings(prosody)
    config["transports"] = {"irc": dict(config["transports"]["irc"], secret="not-the-secret")}
    gateway = GatewayProcess(tmp_path / "gateway", config)
    gateway.start()
    assert gateway.process is not None
    code = await asyncio.to_thread(gateway.process.wait, 20)
    assert code == 1
    log = gateway.log()
    assert "the XMPP server refused the component secret for irc.example.org" in log
    assert "not-the-secret" not in log
    assert log.count("reconnecting to") == 0


async def test_sigterm_sends_unavailable_and_exits_cleanly(world: Any) -> None:
    _prosody, gateway, alice = world
    alice.send_raw("<presence to='hooks.example.org'/>")
    await alice.expect_presence(from_="hooks.example.org")
    assert gateway.process is not None
    gateway.process.send_signal(signal.SIGTERM)
    await alice.expect_presence(from_="hooks.example.org", type_="unavailable")
    assert await asyncio.to_thread(gateway.process.wait, 10) == 0


async def test_cli_round_trip(world: Any, tmp_path: Path) -> None:
    _prosody, gateway, _alice = world
    added = gateway.cli("mappings", "add", "sms", "alice@example.org", "(555) 000-1111")
    assert added.returncode == 0, added.stderr
    assert "+15550001111" in added.stdout
    assert gateway.cli("mappings", "add", "email", "bob@example.org", "bob").returncode == 0

    taken = gateway.cli("mappings", "add", "sms", "bob@example.org", "+15550001111")
    assert taken.returncode == 1
    assert "already bound to alice@example.org" in taken.stderr
    unknown = gateway.cli("mappings", "add", "fax", "alice@example.org", "123")
    assert unknown.returncode == 1 and "unknown transport 'fax'" in unknown.stderr
    outsider = gateway.cli("mappings", "add", "sms", "eve@evil.example", "+15550002222")
    assert outsider.returncode == 1 and "not in allowed_domains" in outsider.stderr
    invalid = gateway.cli("mappings", "add", "sms", "bob@example.org", "12")
    assert invalid.returncode == 1

    listed = gateway.cli("mappings", "list").stdout
    assert "sms\talice@example.org\t+15550001111" in listed
    assert "email\tbob@example.org\tbob" in listed

    exported = gateway.cli("mappings", "export")
    assert exported.returncode == 0
    records = [json.loads(line) for line in exported.stdout.splitlines()]
    assert {(r["transport"], r["user_jid"], r["address"]) for r in records} >= {
        ("sms", "alice@example.org", "+15550001111"),
        ("email", "bob@example.org", "bob"),
    }

    for transport, user in (("sms", "alice@example.org"), ("email", "bob@example.org")):
        assert gateway.cli("mappings", "remove", transport, user).returncode == 0
    assert "alice@example.org" not in gateway.cli("mappings", "list").stdout
    imported = gateway.cli("mappings", "import", stdin=exported.stdout)
    assert imported.returncode == 0, imported.stderr
    assert gateway.cli("mappings", "list").stdout == listed

    broken = gateway.cli("mappings", "import", stdin='{"type": "registration"}\nnot json\n')
    assert broken.returncode == 1 and "line 1" in broken.stderr


async def test_new_contacts_are_pushed_into_the_roster_where_privileged(
    privileged_world: Any,
) -> None:
    """XEP-0356: with mod_privilege the contact appears in the roster, with no request."""
    _prosody, _gateway, alice = privileged_world
    # The server pushed the new item to the client (roster versioning makes a fresh get
    # answer "no change", so look at the client's roster as the pushes built it).
    roster = alice.xmpp.client_roster
    assert "alerts@hooks.example.org" in roster, list(roster)
    assert roster["alerts@hooks.example.org"]["subscription"] == "both"
    assert not [s for s in alice.drain() if s.name == "presence" and s["type"] == "subscribe"], (
        "asked for a subscription although the roster push worked"
    )


COMMANDS_NS = "http://jabber.org/protocol/commands"


async def run_command(
    client: XmppClient, jid: str, node: str, fields: dict[str, str] | None = None
) -> Iq:
    """Execute an ad-hoc command; with ``fields``, submit its form in a second step."""
    first = await iq(
        client,
        f"<iq type='set' to='{jid}'><command xmlns='{COMMANDS_NS}' node='{node}' "
        "action='execute'/></iq>",
    )
    if fields is None or first["type"] == "error":
        return first
    session = first.xml.find(f"{{{COMMANDS_NS}}}command").get("sessionid")
    values = "".join(
        f"<field var='{var}'><value>{value}</value></field>" for var, value in fields.items()
    )
    return await iq(
        client,
        f"<iq type='set' to='{jid}'><command xmlns='{COMMANDS_NS}' node='{node}' "
        f"sessionid='{session}' action='complete'><x xmlns='jabber:x:data' type='submit'>"
        f"{values}</x></command></iq>",
    )


def note(reply: Iq) -> str:
    return reply.xml.findtext(f"{{{COMMANDS_NS}}}command/{{{COMMANDS_NS}}}note") or ""


async def test_every_component_has_core_ad_hoc_commands(world: Any) -> None:
    _prosody, gateway, alice = world
    for jid in SECRETS:
        items = await iq(
            alice,
            f"<iq type='get' to='{jid}'><query xmlns='http://jabber.org/protocol/disco#items' "
            f"node='{COMMANDS_NS}'/></iq>",
        )
        nodes = {item[1] for item in items["disco_items"]["items"]}
        assert {"portway-status", "portway-unregister"} <= nodes, (jid, nodes)

    # it only shows, so it completes at once, with no form to submit
    before = await run_command(alice, "mail.example.org", "portway-status")
    assert before.xml.find(f"{{{COMMANDS_NS}}}command").get("status") == "completed"
    assert "not registered" in note(before)
    assert (await iq(alice, REGISTER_SET.format(address="alice")))["type"] == "result"
    after = await run_command(alice, "mail.example.org", "portway-status")
    assert "Your address there: alice@mail.example.org" in note(after)

    kept = await run_command(alice, "mail.example.org", "portway-unregister", {"confirm": "0"})
    assert note(kept) == "Nothing changed."
    gone = await run_command(alice, "mail.example.org", "portway-unregister", {"confirm": "1"})
    assert "no longer registered" in note(gone)
    assert "alice@example.org" not in gateway.cli("mappings", "list").stdout

    refused = await run_command(alice, "mail.example.org", "portway-registrations")
    assert refused["type"] == "error" and refused["error"]["condition"] == "forbidden"


async def test_cli_remove_forgets_what_the_transport_keeps(world: Any) -> None:
    """`portway mappings remove` unregisters as XMPP does: a user's own hooks go too."""
    _prosody, gateway, alice = world
    registered = await iq(
        alice,
        "<iq type='set' to='hooks.example.org'><query xmlns='jabber:iq:register'/></iq>",
    )
    assert registered["type"] == "result", registered
    created = await run_command(alice, "hooks.example.org", "webhook-create", {"name": "mine"})
    secret = note(created).split("Secret: ")[1].split()[0]
    request = urllib.request.Request(
        f"{gateway.base_url}/hooks/mine",
        data=b"still here",
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "text/plain"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202

    removed = gateway.cli("mappings", "remove", "webhook", "alice@example.org")
    assert removed.returncode == 0, removed.stderr
    with pytest.raises(urllib.error.HTTPError) as gone:
        urllib.request.urlopen(request, timeout=10)
    assert gone.value.code == 404
    again = gateway.cli("mappings", "remove", "webhook", "alice@example.org")
    assert again.returncode == 1 and "not registered" in again.stderr


async def test_a_contact_renamed_in_the_roster_keeps_its_name(
    privileged_world: Any, xmpp_client: ConnectXmpp
) -> None:
    prosody, gateway, alice = privileged_world
    renamed = await iq(
        alice,
        "<iq type='set'><query xmlns='jabber:iq:roster'>"
        "<item jid='alerts@hooks.example.org' name='Pager'/></query></iq>",
    )
    assert renamed["type"] == "result"
    await alice.disconnect()
    await xmpp_client("alice@example.org", "alice-pw", prosody)  # comes online again
    for _ in range(50):
        listed = gateway.cli("mappings", "list", "--contacts").stdout
        if "contact alerts\tPager" in listed:
            break
        await asyncio.sleep(0.1)
    assert "webhook\talice@example.org\tcontact alerts\tPager" in listed
