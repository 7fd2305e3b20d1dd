"""Registration of an IRC connection: CAP/SASL PLAIN, PASS, TLS, and which failures are final.

A scripted server on 127.0.0.1 answers each line the client sends, so ``connect()`` runs as
it does in production, socket and TLS included. The end-to-end tests against a real server
(tests/e2e/test_irc_tls_sasl.py) cover the happy paths; these cover the odd server answers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from support.certs import Certificates, make_certificates

from transports.irc.connection import ConnectOptions, IrcConnection, RegistrationFailed

Respond = Callable[[str], list[str]]
WELCOME = [":srv 001 me :Welcome"]


class ScriptedServer:
    """Answers each client line with ``respond(line)``; keeps what the client sent."""

    def __init__(self, respond: Respond, tls: ssl.SSLContext | None = None) -> None:
        self.respond = respond
        self.tls = tls
        self.received: list[str] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while raw := await reader.readline():
                line = raw.decode().rstrip("\r\n")
                self.received.append(line)
                for answer in self.respond(line):
                    writer.write(answer.encode() + b"\r\n")
                await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def serving(
    respond: Respond, tls: ssl.SSLContext | None = None
) -> AsyncIterator[ScriptedServer]:
    server = ScriptedServer(respond, tls)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def register(server: ScriptedServer, **options: Any) -> IrcConnection:
    """Connect to ``server`` and register (raises what ``connect()`` raises)."""
    settings: dict[str, Any] = {"tls": False, "burst": None, **options}
    conn = IrcConnection(
        ConnectOptions("127.0.0.1", server.port, "me", **settings),
        lambda _line: None,
        lambda _conn, _why: None,
    )
    await conn.connect(timeout=5)
    return conn


def sasl_server(caps: list[str], outcome: list[str]) -> Respond:
    """A server offering ``caps`` (one CAP LS line each), answering the SASL payload with
    ``outcome``, and welcoming after CAP END."""

    def respond(line: str) -> list[str]:
        if line.startswith("CAP LS"):
            return [f":srv CAP * LS * :{c}" for c in caps[:-1]] + [f":srv CAP * LS :{caps[-1]}"]
        if line == "CAP REQ sasl":
            return [":srv CAP * ACK :sasl"]
        if line == "AUTHENTICATE PLAIN":
            return ["AUTHENTICATE +"]
        if line.startswith("AUTHENTICATE "):
            return outcome
        if line == "CAP END":
            return WELCOME
        return []

    return respond


async def test_sasl_plain_found_in_a_multi_line_cap_ls() -> None:
    success = [":srv 900 me me!u@h acct :You are now logged in", ":srv 903 me :SASL successful"]
    respond = sasl_server(["sasl=PLAIN,EXTERNAL multi-prefix", "away-notify"], success)
    async with serving(respond) as server:
        conn = await register(server, username="acct", sasl_password="pw")
        assert conn.registered
        conn.close()
    sent = server.received
    payload = base64.b64encode(b"acct\0acct\0pw").decode()
    assert sent.index("CAP REQ sasl") < sent.index("AUTHENTICATE PLAIN")
    assert sent.index(f"AUTHENTICATE {payload}") < sent.index("CAP END")


async def test_a_wrong_sasl_password_is_final_and_says_so() -> None:
    refused = [
        ":srv 908 me PLAIN,EXTERNAL :are available SASL mechanisms",
        ":srv 904 me :SASL authentication failed",
    ]
    async with serving(sasl_server(["sasl"], refused)) as server:
        with pytest.raises(RegistrationFailed) as failed:
            await register(server, sasl_password="s3cret-pw")
    assert failed.value.final
    assert str(failed.value) == "SASL authentication failed for account 'me'"
    assert "CAP END" not in server.received


@pytest.mark.parametrize(
    ("caps", "expected"),
    [
        (["multi-prefix"], "the server does not offer SASL"),
        (["sasl=EXTERNAL"], "the server offers SASL only as EXTERNAL, not PLAIN"),
    ],
)
async def test_sasl_not_on_offer_is_final(caps: list[str], expected: str) -> None:
    async with serving(sasl_server(caps, [])) as server:
        with pytest.raises(RegistrationFailed) as failed:
            await register(server, sasl_password="pw")
    assert failed.value.final
    assert expected in str(failed.value)
    assert not any(line.startswith("AUTHENTICATE") for line in server.received)


async def test_a_server_without_cap_does_not_log_us_in_unauthenticated() -> None:
    def respond(line: str) -> list[str]:
        if line.startswith("CAP"):
            return [":srv 421 * CAP :Unknown command"]
        return WELCOME if line.startswith("USER") else []

    async with serving(respond) as server:
        with pytest.raises(RegistrationFailed) as failed:
            await register(server, sasl_password="pw")
    assert failed.value.final
    assert "does not do SASL" in str(failed.value)


async def test_the_server_password_goes_first_and_a_refusal_is_final() -> None:
    def respond(line: str) -> list[str]:
        if line.startswith("USER"):
            return [":srv 464 me :Password incorrect", "ERROR :Closing link"]
        return []

    async with serving(respond) as server:
        with pytest.raises(RegistrationFailed) as failed:
            await register(server, password="wrong-pw")
    assert failed.value.final
    assert str(failed.value) == "the server password (PASS) is wrong: Password incorrect"
    assert server.received[:2] == ["PASS wrong-pw", "NICK me"]


async def test_an_error_while_registering_is_not_final() -> None:
    def respond(line: str) -> list[str]:
        return ["ERROR :Trying to reconnect too fast"] if line.startswith("USER") else []

    async with serving(respond) as server:
        with pytest.raises(RegistrationFailed) as failed:
            await register(server)
    assert not failed.value.final
    assert "reconnect too fast" in str(failed.value)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


async def test_tls_certificate_checks(certs: Certificates, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certs.ca))

    def respond(line: str) -> list[str]:
        return WELCOME if line.startswith("USER") else []

    # Signed by the trusted CA: verified and in.
    async with serving(respond, server_context(certs.signed.cert, certs.signed.key)) as server:
        conn = await register(server, tls=True)
        assert conn.registered
        conn.close()
    # Self-signed: refused for good, in words, unless verification is off.
    stranger = server_context(certs.self_signed.cert, certs.self_signed.key)
    async with serving(respond, stranger) as server:
        with pytest.raises(RegistrationFailed) as failed:
            await register(server, tls=True)
        assert failed.value.final
        assert re.fullmatch(
            rf"TLS certificate verification failed for 127\.0\.0\.1:{server.port}: "
            "self.signed certificate",
            str(failed.value),
        ), failed.value
        conn = await register(server, tls=True, verify_cert=False)
        assert conn.registered
        conn.close()
