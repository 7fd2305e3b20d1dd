"""Ad-hoc commands on contact JIDs: ``Command.on_contact``, and the IRC server settings on
``server@irc.gw`` (bound to that server, one step) beside the gateway-JID variant (two)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from component.commands import offered_on
from mappings.store import Store
from transports.base import AddressError, Command, CommandResult, Form, GatewayError
from transports.irc.settings import IrcSettings
from transports.irc.transport import IrcTransport

ALICE = "alice@example.org"


async def _done(_user: str, _values: dict[str, Any]) -> CommandResult:
    return CommandResult("done")


def test_commands_without_on_contact_stay_on_the_gateway() -> None:
    plain = Command("plain", "Plain", Form("Plain", ""), _done)
    assert plain.on_contact is None  # what sms, email and webhook commands are
    bound = Command("per-contact", "For x", Form("x", ""), _done)

    def only_x(address: str) -> Command | None:
        return bound if address == "x" else None

    both = Command("per-contact", "Per contact", Form("any", ""), _done, on_contact=only_x)
    assert offered_on([plain, both], "x") == [bound]
    assert offered_on([plain, both], "y") == []
    assert offered_on([plain], "x") == []


class FakeHost:
    """Just what the settings command touches: the domain and the store."""

    def __init__(self, store: Store) -> None:
        self.domain = "irc.example.org"
        self.store = store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    yield opened
    await opened.close()


def irc(store: Store, **settings: Any) -> IrcTransport:
    config = IrcSettings.model_validate(
        {
            "jid": "irc.example.org",
            "secret": "a-long-enough-component-secret",
            "servers": {"irc.localhost": {"host": "127.0.0.1", "port": 6667, "tls": False}},
            **settings,
        }
    )
    return IrcTransport(config, FakeHost(store))  # type: ignore[arg-type]


def settings_command(transport: IrcTransport) -> Command:
    (command,) = transport.commands()
    return command


async def form_of(command: Command, user: str = ALICE) -> Form:
    assert not isinstance(command.form, Form)
    return await command.form(user)


async def test_on_a_server_jid_the_command_is_bound_to_that_server(store: Store) -> None:
    transport = irc(store)
    command = settings_command(transport)
    assert command.on_contact is not None
    bound = command.on_contact(transport.parse_address("irc.localhost"))
    assert bound is not None and bound.node == command.node
    form = await form_of(bound)
    assert form.title == "Settings for irc.localhost"
    assert "server" not in {f.var for f in form.fields}

    result = await bound.run(ALICE, {"nick": "alicia", "persistent_rooms": "#Persist"})
    assert result.next_form is None and "irc.localhost" in result.text
    stored = await store.settings.get("irc", ALICE, "server:irc.localhost")
    assert stored["nick"] == "alicia" and stored["persistent_rooms"] == ["#persist"]
    nick = next(f for f in (await form_of(bound)).fields if f.var == "nick")
    assert nick.value == "alicia"


async def test_bad_values_on_a_server_jid_store_nothing(store: Store) -> None:
    transport = irc(store, user_settable=["nick", "port"])
    on_contact = settings_command(transport).on_contact
    assert on_contact is not None
    bound = on_contact(transport.parse_address("irc.localhost"))
    assert bound is not None
    with pytest.raises(AddressError):
        await bound.run(ALICE, {"nick": "bad nick"})
    with pytest.raises(GatewayError) as refused:
        await bound.run(ALICE, {"nick": "alicia", "port": "99999"})
    assert refused.value.condition == "bad-request"
    assert await store.settings.get("irc", ALICE, "server:irc.localhost") == {}


async def test_only_served_server_jids_offer_it(store: Store) -> None:
    transport = irc(store)
    command = settings_command(transport)
    assert command.on_contact is not None
    for localpart in ("bob%irc.localhost", "#test%irc.localhost", "irc.elsewhere.example"):
        assert command.on_contact(transport.parse_address(localpart)) is None, localpart
    open_transport = irc(store, allow_other_servers=True)
    opened = settings_command(open_transport).on_contact
    assert opened is not None
    assert opened(open_transport.parse_address("irc.elsewhere.example")) is not None


async def test_the_gateway_jid_variant_still_asks_for_the_server(store: Store) -> None:
    transport = irc(store)
    command = settings_command(transport)
    first = await form_of(command)
    assert [f.var for f in first.fields] == ["server"]
    step = await command.run(ALICE, {"server": "irc.localhost"})
    assert step.next_form is not None and step.next_form.fields[0].var == "server"
    await command.run(ALICE, {"server": "irc.localhost", "nick": "alicia"})
    assert (await store.settings.get("irc", ALICE, "server:irc.localhost"))["nick"] == "alicia"
    with pytest.raises(GatewayError):
        await command.run(ALICE, {"server": "irc.elsewhere.example"})


async def test_with_a_fixed_server_no_jid_names_a_server(store: Store) -> None:
    transport = irc(store, fixed_server="irc.localhost")
    command = settings_command(transport)
    assert command.on_contact is not None
    assert command.on_contact(transport.parse_address("bob")) is None
    assert command.on_contact(transport.parse_address("#test")) is None
