"""Abuse of the HTTP endpoints, of the files the gateway keeps, and of its logs.

A real `portway run` with a real Prosody: each test runs an attack from issue 10 and fails
if it works. The HTTP tests speak raw HTTP/1.1 over a socket, because what matters is *when*
the gateway answers: before it has read a body it must not read, and without buffering a
body past its route's cap.
"""

from __future__ import annotations

import asyncio
import os
import stat
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from support.fixture_types import ConnectXmpp, MakeNgircd, MakeProsody
from support.gateway import GatewayProcess
from support.prosody import Prosody
from support.xmpp_client import XmppClient

from transports.sms.webhooks import MAX_BODY_BYTES as TWILIO_MAX_BODY
from transports.webhook.signing import signature_headers

pytestmark = pytest.mark.e2e

SMS = "sms.example.org"
HOOKS = "hooks.example.org"
IRC = "irc.example.org"
COMPONENTS = {SMS: "sms-component-s3cret", HOOKS: "hooks-component-s3cret"}
USERS = {"alice": "alice-pw"}
TOKEN = "alerts-token-0123456789"
MAX_HOOK_BODY = 4096
HUGE = 32 * 1024 * 1024
#: The gateway must answer within this; it would wait for the body forever if it read it.
PROMPT = 5.0


@dataclass
class World:
    prosody: Prosody
    gateway: GatewayProcess

    @property
    def port(self) -> int:
        return self.gateway.http_port


@pytest.fixture
async def world(tmp_path: Path, make_prosody: MakeProsody) -> AsyncIterator[World]:
    prosody = make_prosody(components=COMPONENTS, users=USERS)
    async with FakeTwilio() as twilio:
        gateway = GatewayProcess(
            tmp_path / "gateway",
            {
                # In a directory the gateway creates, so that its mode is the gateway's doing.
                "database": f"sqlite:///{tmp_path / 'gateway' / 'state' / 'portway.db'}",
                "xmpp": {"host": "127.0.0.1", "port": prosody.component_port},
                "allowed_domains": ["example.org"],
                "transports": {
                    "sms": {
                        "jid": SMS,
                        "secret": COMPONENTS[SMS],
                        "account_sid": ACCOUNT_SID,
                        "auth_token": AUTH_TOKEN,
                        "api_base_url": twilio.base_url,
                        "default_region": "US",
                    },
                    "webhook": {
                        "jid": HOOKS,
                        "secret": COMPONENTS[HOOKS],
                        "max_body_bytes": MAX_HOOK_BODY,
                        "hooks": [{"name": "alerts", "owner": "alice@example.org", "token": TOKEN}],
                    },
                },
            },
        )
        await gateway.astart()
        try:
            yield World(prosody, gateway)
        finally:
            gateway.kill()


def request_head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def status_of(reader: asyncio.StreamReader) -> int:
    line = await reader.readline()
    assert line.startswith(b"HTTP/1.1 "), line
    return int(line.split()[1])


async def answer_to_partial(port: int, path: str, headers: dict[str, str], sent: bytes) -> int:
    """Send the head and ``sent`` (less than the head announces), then wait for the status.

    The gateway answers only if it decides without the rest of the body: had it waited for
    the body, the status would never come and this raises TimeoutError.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request_head(path, headers) + sent)
        await writer.drain()
        return await asyncio.wait_for(status_of(reader), PROMPT)
    finally:
        writer.close()


async def flood(
    port: int, path: str, headers: dict[str, str], *, chunked: bool
) -> tuple[int, float]:
    """Send a whole 32 MiB body whatever the answer; return (status, seconds to the status)."""
    framing = {"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(HUGE)}
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    answer = asyncio.create_task(status_of(reader))
    try:
        writer.write(request_head(path, {**headers, **framing}))
        piece = b"x" * (256 * 1024)
        try:
            for _ in range(HUGE // len(piece)):
                writer.write(chunk(piece) if chunked else piece)
                await writer.drain()
            if chunked:
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        except ConnectionError:
            pass  # the gateway may close once it has answered: the attack is over
        status = await asyncio.wait_for(answer, 30)
        return status, time.monotonic() - started
    finally:
        answer.cancel()
        writer.close()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def peak_rss_while(pid: int, work: Any) -> tuple[Any, int]:
    """Run ``work``; return its result and the largest RSS (KiB) seen meanwhile."""
    peak = rss_kib(pid)
    task = asyncio.ensure_future(work)
    while not task.done():
        peak = max(peak, rss_kib(pid))
        await asyncio.sleep(0.01)
    return task.result(), max(peak, rss_kib(pid))


UNSIGNED_TWILIO = {
    "Content-Type": "application/x-www-form-urlencoded",
    "X-Twilio-Signature": "Zm9yZ2VkLXNpZ25hdHVyZQ==",
}


async def test_huge_unsigned_twilio_posts_are_refused_at_the_cap(world: World) -> None:
    """Issue 10: four unsigned 32 MiB posts to /sms/inbound grew the gateway by 270 MB."""
    assert world.gateway.process is not None
    pid = world.gateway.process.pid
    before = rss_kib(pid)
    attacks = asyncio.gather(
        *(
            flood(world.port, path, UNSIGNED_TWILIO, chunked=chunked)
            for path, chunked in (
                ("/sms/inbound", False),
                ("/sms/inbound", True),
                ("/sms/inbound", False),
                ("/sms/status", True),
            )
        )
    )
    results, peak = await peak_rss_while(pid, attacks)
    assert peak - before < 20 * 1024, f"RSS grew by {(peak - before) // 1024} MB"
    assert [status for status, _ in results] == [413] * 4
    assert all(seconds < PROMPT for _, seconds in results), results


async def test_twilio_caps_are_decided_before_the_body_arrives(world: World) -> None:
    # Content-Length over the cap: 413 at once, no byte of the body needed.
    status = await answer_to_partial(
        world.port, "/sms/inbound", {**UNSIGNED_TWILIO, "Content-Length": str(HUGE)}, b"Body=x"
    )
    assert status == 413
    # Chunked: the gateway stops reading past the cap, it does not wait for the end.
    status = await answer_to_partial(
        world.port,
        "/sms/inbound",
        {**UNSIGNED_TWILIO, "Transfer-Encoding": "chunked"},
        chunk(b"x" * (TWILIO_MAX_BODY + 1)),
    )
    assert status == 413
    # No signature at all: refused before the body is read.
    status = await answer_to_partial(
        world.port,
        "/sms/inbound",
        {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": "2000"},
        b"Body=x",
    )
    assert status == 403


async def test_hook_token_is_checked_before_the_body_is_read(world: World) -> None:
    wrong = {"Authorization": "Bearer not-the-token", "Content-Type": "text/plain"}
    for length in (HUGE, MAX_HOOK_BODY - 10):
        status = await answer_to_partial(
            world.port, "/hooks/alerts", {**wrong, "Content-Length": str(length)}, b"hello"
        )
        assert status == 401, length
    anonymous = {"Content-Type": "text/plain", "Content-Length": str(MAX_HOOK_BODY - 10)}
    assert await answer_to_partial(world.port, "/hooks/alerts", anonymous, b"hello") == 401
    # An unknown hook reads nothing either.
    for length in (HUGE, MAX_HOOK_BODY - 10):
        status = await answer_to_partial(
            world.port, "/hooks/nosuchhook", {**wrong, "Content-Length": str(length)}, b"hello"
        )
        assert status == 404, length


async def test_oversize_hook_bodies_get_413_before_they_are_read(world: World) -> None:
    right = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/plain"}
    status = await answer_to_partial(
        world.port, "/hooks/alerts", {**right, "Content-Length": str(HUGE)}, b"hello"
    )
    assert status == 413
    status = await answer_to_partial(
        world.port,
        "/hooks/alerts",
        {**right, "Transfer-Encoding": "chunked"},
        chunk(b"x" * (MAX_HOOK_BODY + 1)),
    )
    assert status == 413
    # A signed post needs its body for the HMAC: read only up to the cap.
    signed = {**signature_headers(TOKEN, "msg_1", int(time.time()), b"x"), **right}
    del signed["Authorization"]
    status = await answer_to_partial(
        world.port, "/hooks/alerts", {**signed, "Content-Length": str(HUGE)}, b"x"
    )
    assert status == 413
    status = await answer_to_partial(
        world.port,
        "/hooks/alerts",
        {**signed, "Transfer-Encoding": "chunked"},
        chunk(b"x" * (MAX_HOOK_BODY + 1)),
    )
    assert status == 413
    # Flooding a real hook with the right token stays cheap too.
    assert world.gateway.process is not None
    pid = world.gateway.process.pid
    before = rss_kib(pid)
    results, peak = await peak_rss_while(
        pid,
        asyncio.gather(
            flood(world.port, "/hooks/alerts", right, chunked=True),
            flood(world.port, "/hooks/alerts", right, chunked=False),
        ),
    )
    assert [status for status, _ in results] == [413, 413]
    assert peak - before < 20 * 1024, f"RSS grew by {(peak - before) // 1024} MB"


async def test_a_normal_hook_post_still_goes_through(world: World) -> None:
    body = b"deploy finished"
    headers = {
        "Authorization": f"Bearer {TOKEN}",
        "Content-Type": "text/plain",
        "Content-Length": str(len(body)),
    }
    assert await answer_to_partial(world.port, "/hooks/alerts", headers, body) == 202


async def test_database_is_private_to_the_gateway_user(world: World) -> None:
    database = world.gateway.workdir / "state" / "portway.db"
    assert stat.S_IMODE(database.parent.stat().st_mode) == 0o700
    files = [database, *(Path(f"{database}{suffix}") for suffix in ("-wal", "-shm"))]
    for path in files:
        assert path.exists(), path
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_check_config_warns_about_a_readable_config_with_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = GatewayProcess(
        tmp_path / "gateway",
        {
            "allowed_domains": ["example.org"],
            "transports": {"webhook": {"jid": HOOKS, "secret": "hooks-component-s3cret"}},
        },
    )
    path = gateway.config_path
    os.chmod(path, 0o644)
    checked = gateway.cli("check-config")
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr == (
        f"{path}: warning: readable by other users (mode 0644) and holds secrets; "
        f"chmod 600 {path}\n"
    )
    assert "hooks-component-s3cret" not in checked.stderr + checked.stdout
    os.chmod(path, 0o640)
    assert "(mode 0640)" in gateway.cli("check-config").stderr
    os.chmod(path, 0o600)
    checked = gateway.cli("check-config")
    assert (checked.returncode, checked.stderr) == (0, "")

    # Secrets taken from the environment are not in the file: nothing to warn about.
    path.write_text(path.read_text().replace("hooks-component-s3cret", "${HOOKS_SECRET}"))
    os.chmod(path, 0o644)
    monkeypatch.setenv("HOOKS_SECRET", "hooks-component-s3cret")
    checked = gateway.cli("check-config")
    assert (checked.returncode, checked.stderr) == (0, ""), checked.stderr


# Secrets in the log: hook secrets shown once by ad-hoc commands, and a user's IRC passwords.

NS_COMMANDS = "http://jabber.org/protocol/commands"
IRC_PASSWORD = "irc-server-pw-Qm27xv"
SASL_PASSWORD = "sasl-pw-Rt58yk"


async def run_command(
    client: XmppClient, to: str, node: str, fields: dict[str, str], types: dict[str, str]
) -> Any:
    first = await client.iq(
        f"<iq type='set' to='{to}'><command xmlns='{NS_COMMANDS}' node='{node}' "
        "action='execute'/></iq>"
    )
    assert first["type"] == "result", first
    values = "".join(
        f"<field var='{var}'{types.get(var, '')}><value>{value}</value></field>"
        for var, value in fields.items()
    )
    return await client.iq(
        f"<iq type='set' to='{to}'><command xmlns='{NS_COMMANDS}' node='{node}' "
        f"sessionid='{first['command']['sessionid']}'>"
        f"<x xmlns='jabber:x:data' type='submit'>{values}</x></command></iq>"
    )


async def test_no_secret_reaches_the_debug_log(
    tmp_path: Path,
    make_prosody: MakeProsody,
    make_ngircd: MakeNgircd,
    xmpp_client: ConnectXmpp,
) -> None:
    prosody = make_prosody(components={HOOKS: "hooks-s3cret", IRC: "irc-s3cret"}, users=USERS)
    ngircd = make_ngircd()
    gateway = GatewayProcess(
        tmp_path / "gateway",
        {
            "xmpp": {"host": "127.0.0.1", "port": prosody.component_port},
            "allowed_domains": ["example.org"],
            "log_level": "DEBUG",
            "transports": {
                "webhook": {"jid": HOOKS, "secret": "hooks-s3cret"},
                "irc": {
                    "jid": IRC,
                    "secret": "irc-s3cret",
                    "servers": {
                        "irc.localhost": {"host": "127.0.0.1", "port": ngircd.port, "tls": False}
                    },
                },
            },
        },
    )
    await gateway.astart()
    try:
        alice = await xmpp_client("alice@example.org", USERS["alice"], prosody)
        registered = await alice.iq(
            f"<iq type='set' to='{HOOKS}'><query xmlns='jabber:iq:register'>"
            "<x xmlns='jabber:x:data' type='submit'/></query></iq>"
        )
        assert registered["type"] == "result", registered
        created = await run_command(alice, HOOKS, "webhook-create", {"name": "deploys"}, {})
        notes = "\n".join(text for _kind, text in created["command"]["notes"])
        secret = notes.split("Secret: ")[1].split()[0]
        rotated = await run_command(alice, HOOKS, "webhook-rotate", {"name": "deploys"}, {})
        notes = "\n".join(text for _kind, text in rotated["command"]["notes"])
        new_secret = notes.split("deploys@hooks.example.org: ")[1].split()[0]
        assert secret.startswith("whsec_") and new_secret.startswith("whsec_")

        # Clients differ: some echo the field's type in the submitted form, some do not.
        for types in ({}, {"password": " type='text-private'", "sasl_password": ""}):
            await run_command(
                alice,
                f"irc.localhost@{IRC}",
                "irc-server-settings",
                {"nick": "alicia", "password": IRC_PASSWORD, "sasl_password": SASL_PASSWORD},
                types,
            )
        # XEP-0077 in-band registration carries a <password> element.
        await alice.iq(
            f"<iq type='set' to='{IRC}'><query xmlns='jabber:iq:register'>"
            f"<username>alice</username><password>{SASL_PASSWORD}x</password></query></iq>"
        )
    finally:
        gateway.stop()
    log = gateway.log()
    assert "deploys" in log and "irc-server-settings" in log, "DEBUG stanza logging is off"
    for leaked in (secret, new_secret, IRC_PASSWORD, SASL_PASSWORD):
        assert leaked not in log, f"{leaked} is in the log"
