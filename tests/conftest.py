"""Shared fixtures: factories for throwaway real servers and connected test clients.

The server classes live in tests/support; this file only wires them to pytest's lifetimes
(a fresh Prosody/ngIRCd per test, one PostgreSQL per session) and guarantees teardown.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from support.certs import make_certificates
from support.fixture_types import ConnectIrc, ConnectXmpp, MakeNgircd, MakeProsody
from support.inspircd import ATHEME, INSPIRCD, IrcNetwork, MakeIrcNetwork
from support.irc_client import RawIrcClient
from support.mail_world import MailWorld, running_mail_world
from support.ngircd import Ngircd
from support.postgres import PG_BIN, Postgres, binaries_present
from support.prosody import Prosody
from support.scenario import Stack, running_stack
from support.xmpp_client import XmppClient


@pytest.fixture
def make_prosody(tmp_path: Path) -> Iterator[MakeProsody]:
    """Factory: `make_prosody(components={jid: secret}, users={name: password}, privileged=[jid])`.

    Returns a started Prosody (users registered first); every one made is stopped at
    teardown. Extra keyword arguments go to `Prosody` (domain, muc, admins, ...).
    """
    made: list[Prosody] = []
    counter = itertools.count()

    def make(
        components: Mapping[str, str] | None = None,
        users: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        privileged: Iterable[str] = (),
        **kwargs: Any,
    ) -> Prosody:
        server = Prosody(
            tmp_path / f"prosody{next(counter)}",
            components=components,
            privileged_components=privileged,
            **kwargs,
        )
        pairs = users.items() if isinstance(users, Mapping) else (users or ())
        for user, password in pairs:
            server.register(user, password)
        made.append(server)
        server.start()
        return server

    yield make
    for server in reversed(made):
        server.stop()


@pytest.fixture
def make_ngircd(tmp_path: Path) -> Iterator[MakeNgircd]:
    """Factory: `make_ngircd(server_name=...)` returns a started ngIRCd, stopped at teardown."""
    made: list[Ngircd] = []
    counter = itertools.count()

    def make(**kwargs: Any) -> Ngircd:
        server = Ngircd(tmp_path / f"ngircd{next(counter)}", **kwargs)
        made.append(server)
        server.start()
        return server

    yield make
    for server in reversed(made):
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of one PostgreSQL started for the whole session (database and user `portway`).

    A missing server is a failure, not a skip: the store's PostgreSQL mode would otherwise
    go untested without anyone noticing.
    """
    if not binaries_present():
        pytest.fail(
            f"PostgreSQL 15 is not installed ({PG_BIN} has no initdb/postgres); "
            ".ci/run installs it: apt-get install postgresql",
            pytrace=False,
        )
    server = Postgres(tmp_path_factory.mktemp("postgres"))
    server.start()
    try:
        yield server.url
    finally:
        server.cleanup()


@pytest.fixture
async def xmpp_client(make_prosody: MakeProsody) -> AsyncIterator[ConnectXmpp]:
    """Factory: `await xmpp_client(jid, password, prosody)` gives a logged-in XmppClient.

    Depends on make_prosody so that clients disconnect before their server stops.
    """
    clients: list[XmppClient] = []

    async def connect(jid: str, password: str, prosody: Prosody) -> XmppClient:
        client = XmppClient(jid, password, "127.0.0.1", prosody.c2s_port)
        clients.append(client)
        await client.connect()
        return client

    yield connect
    for client in reversed(clients):
        await client.disconnect()


@pytest.fixture
async def irc_client(make_ngircd: MakeNgircd) -> AsyncIterator[ConnectIrc]:
    """Factory: `await irc_client(ngircd, nick)` gives a registered RawIrcClient."""
    clients: list[RawIrcClient] = []

    async def connect(server: Ngircd, nick: str) -> RawIrcClient:
        client = RawIrcClient(server.host, server.port, nick)
        clients.append(client)
        await client.connect()
        return client

    yield connect
    for client in reversed(clients):
        await client.close()


@pytest.fixture
async def stack(
    tmp_path: Path,
    make_prosody: MakeProsody,
    make_ngircd: MakeNgircd,
    xmpp_client: ConnectXmpp,
    irc_client: ConnectIrc,
) -> AsyncIterator[Stack]:
    """biboumi's scenario harness (tests/support/scenario.py): Prosody, ngIRCd, the gateway."""
    async with running_stack(tmp_path, make_prosody, make_ngircd, xmpp_client, irc_client) as s:
        yield s


@pytest.fixture
async def mail_world(
    tmp_path: Path, make_prosody: MakeProsody, xmpp_client: ConnectXmpp
) -> AsyncIterator[MailWorld]:
    """Prosody and the gateway's email transport, Alice bound (tests/support/mail_world.py)."""
    async with running_mail_world(tmp_path, make_prosody, xmpp_client) as world:
        yield world


@pytest.fixture
def make_irc_network(tmp_path: Path) -> Iterator[MakeIrcNetwork]:
    """Factory: `make_irc_network()` returns a started InspIRCd + Atheme with TLS, PASS, SASL.

    Certificates (a test CA, one server certificate it signed, one self-signed) are made
    fresh in the test's directory; see tests/support/inspircd.py for the ports. A missing
    server binary is a failure, not a skip: .ci/run installs inspircd and atheme-services.
    """
    for binary in (INSPIRCD, ATHEME):
        if not Path(binary).exists():
            pytest.fail(
                f"{binary} is not installed; .ci/run installs it: "
                "apt-get install inspircd atheme-services",
                pytrace=False,
            )
    made: list[IrcNetwork] = []
    counter = itertools.count()

    def make() -> IrcNetwork:
        workdir = tmp_path / f"ircnet{next(counter)}"
        network = IrcNetwork(workdir, make_certificates(workdir / "certs"))
        made.append(network)
        network.start()
        return network

    yield make
    for network in reversed(made):
        network.stop()
