"""The "Register" ad-hoc command on the SMS component, end to end.

profanity has no XEP-0077 form, so on SMS a self-service user binds their Twilio number with
the command: a real Prosody, a slixmpp user, ``portway run`` and the local Twilio server
(tests/support/fake_twilio.py), which answers whether the account owns the number. What the
form takes must bind exactly as ``portway mappings add`` would (the number normalised), and a
number that is not one, or not the account's, must say why and bind nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e.test_commands import completed_note, execute, prefilled, submit
from support.fake_twilio import FakeTwilio, sms_section
from support.fixture_types import ConnectXmpp, MakeProsody
from support.gateway import GatewayProcess
from support.prosody import Prosody
from support.xmpp_client import XmppClient

pytestmark = pytest.mark.e2e

SMS = "sms.example.org"
SECRET = "sms-component-s3cret"
OWNED = "+15550001111"  # one of the fake account's numbers
NOT_OWNED = "+15550009999"
FRIEND = "+15557654321"
REGISTER = "portway-register"


@dataclass
class World:
    prosody: Prosody
    gateway: GatewayProcess
    twilio: FakeTwilio
    alice: XmppClient
    connect: ConnectXmpp

    def mappings(self) -> str:
        listed = self.gateway.cli("mappings", "list", "--transport", "sms")
        assert listed.returncode == 0, listed.stderr
        return listed.stdout


@pytest.fixture
async def world(
    tmp_path: Path, make_prosody: MakeProsody, xmpp_client: ConnectXmpp
) -> AsyncIterator[World]:
    prosody = make_prosody(components={SMS: SECRET}, users={"alice": "alice-pw", "bob": "bob-pw"})
    async with FakeTwilio() as twilio:
        gateway = GatewayProcess(
            tmp_path / "gateway",
            {
                "xmpp": {"host": "127.0.0.1", "port": prosody.component_port},
                "allowed_domains": ["example.org"],
                "transports": {
                    "sms": sms_section(twilio, SMS, SECRET, self_service=True),
                },
            },
        )
        await gateway.astart()
        alice = await xmpp_client("alice@example.org", "alice-pw", prosody)
        try:
            yield World(prosody, gateway, twilio, alice, xmpp_client)
        finally:
            gateway.stop()


async def test_register_command_binds_the_number_typed_in_the_form(world: World) -> None:
    alice = world.alice
    started = await execute(alice, SMS, REGISTER)
    form = started["command"]["form"]
    assert form["title"] == "Register with SMS"
    assert "Enter the Twilio number" in form["instructions"]
    assert prefilled(started) == {"number": ""}  # nothing bound yet
    assert "alice@example.org" not in world.mappings()

    # Typed as people type it: national form with punctuation, normalised to +E.164.
    done = await submit(alice, SMS, started, {"number": "(555) 000-1111"})
    assert f"You are registered with {SMS}." in completed_note(done), done
    await alice.expect_presence(from_=SMS, type_="subscribe")  # XEP-0100, as after XEP-0077
    listed = world.mappings()
    assert "alice@example.org" in listed and OWNED in listed, listed

    # Bound for real: a text alice sends now goes out from that number.
    alice.send_message(f"{FRIEND}@{SMS}", "hi from the command", mtype="chat")
    (sent,) = await world.twilio.wait_for_messages(1)
    assert (sent.from_, sent.to, sent.body) == (OWNED, FRIEND, "hi from the command")

    # The form shows the bound number the next time.
    assert prefilled(await execute(alice, SMS, REGISTER)) == {"number": OWNED}


@pytest.mark.parametrize(
    ("typed", "condition", "says"),
    [
        ("call me maybe", "jid-malformed", "'call me maybe' is not a phone number"),
        ("+1555", "jid-malformed", "'+1555' is not a valid phone number: it is too short"),
        (NOT_OWNED, "item-not-found", f"{NOT_OWNED} is not a number of this gateway's Twilio"),
    ],
)
async def test_a_bad_number_is_refused_with_the_reason_and_binds_nothing(
    world: World, typed: str, condition: str, says: str
) -> None:
    alice = world.alice
    refused = await submit(alice, SMS, await execute(alice, SMS, REGISTER), {"number": typed})
    assert refused["type"] == "error", refused
    assert refused["error"]["condition"] == condition, refused
    assert says in refused["error"]["text"], refused
    assert "alice@example.org" not in world.mappings()


async def test_a_number_bound_to_another_user_is_refused(world: World) -> None:
    alice, bob = world.alice, await world.connect("bob@example.org", "bob-pw", world.prosody)
    done = await submit(alice, SMS, await execute(alice, SMS, REGISTER), {"number": OWNED})
    assert "registered" in completed_note(done)
    taken = await submit(bob, SMS, await execute(bob, SMS, REGISTER), {"number": OWNED})
    assert taken["type"] == "error", taken
    assert taken["error"]["condition"] == "conflict"
    assert f"{OWNED} is already in use by another user" in taken["error"]["text"]
    assert "bob@example.org" not in world.mappings()
