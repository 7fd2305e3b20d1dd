"""Red-team checks of issue 10's promises, each against a real gateway on loopback.

Every test here runs an attack that worked (or might have) against the hardened gateway, and
fails if it works again. The email world is Prosody, the real ``portway run`` and its SMTP
listener (tests/support/mail_world.py), as in test_abuse_sizes.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
import yaml
from support.fixture_types import ConnectXmpp, MakeProsody
from support.gateway import GatewayProcess
from support.mail_world import (
    ALICE,
    JULIET,
    JULIET_JID,
    MAIL,
    SECRET,
    MailWorld,
    email_gateway,
    plain_mail,
    send_mail,
)
from support.ports import free_port
from support.smtp_sink import SmtpSink
from support.xmpp_client import XmppClient

from mappings.outbox import MAX_WAITING_PER_USER
from transports.email.inbox import MAX_ATTACHMENTS
from transports.email.smtp_admission import SMTP_LIMITS
from transports.webhook.directory import MAX_HOOK_TARGETS

pytestmark = pytest.mark.e2e


def many_attachments(count: int, message_id: str) -> bytes:
    """One multipart with ``count`` one-byte attachments: a single boundary, so the MIME
    nesting cap (64 boundaries) does not apply."""
    boundary = "b0undary"
    head = (
        f"From: Juliet <{JULIET}>\r\nTo: alice@{MAIL}\r\nSubject: parts\r\n"
        f"Message-ID: {message_id}\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nMany parts.\r\n"
    )
    part = (
        f"--{boundary}\r\nContent-Type: application/octet-stream\r\n"
        "Content-Disposition: attachment\r\n\r\nx\r\n"
    )
    return (head + part * count + f"--{boundary}--\r\n").encode()


def media_rows(gateway: GatewayProcess) -> int:
    """Files served; the table is created with the first one."""
    with sqlite3.connect(gateway.workdir / "portway.db") as db:
        tables = db.execute("SELECT name FROM sqlite_master WHERE name = 'media'").fetchall()
        return int(db.execute("SELECT count(*) FROM media").fetchone()[0]) if tables else 0


async def test_a_mail_of_20000_parts_is_taken_at_once_and_stalls_nobody(
    mail_world: MailWorld,
) -> None:
    """20,000 one-byte attachments in a 620 KB mail (one boundary, so the MIME nesting cap
    does not apply) took 57 s: 13 s of parsing, then 20,000 served files, one write each on
    the store every transport shares. Only its headers are read now: no part is parsed or
    stored (checked by what is kept, not by a clock, which a loaded machine would move)."""
    _prosody, gateway, alice, smtp_port = mail_world
    reply = await send_mail(smtp_port, many_attachments(20_000, "<parts@capulet.lit>"))
    assert reply.startswith("2"), reply
    assert media_rows(gateway) == 0
    got = await alice.expect_message(from_=JULIET_JID, contains="too many MIME parts", timeout=20)
    assert got["subject"] == "parts"
    reply = await send_mail(smtp_port, plain_mail("Short.", "<small@capulet.lit>"))
    assert reply.startswith("2"), reply
    await alice.expect_message(from_=JULIET_JID, contains="Short.", timeout=10)


async def test_a_mail_of_900_attachments_keeps_a_bounded_number_and_says_so(
    mail_world: MailWorld,
) -> None:
    """Under the parts cap, each attachment kept is a served file: a mail keeps at most
    MAX_ATTACHMENTS, and the user reads how many were not kept."""
    _prosody, gateway, alice, smtp_port = mail_world
    reply = await send_mail(smtp_port, many_attachments(900, "<900@capulet.lit>"))
    assert reply.startswith("2"), reply
    got = await alice.expect_message(from_=JULIET_JID, contains="Many parts.", timeout=20)
    assert f"[{900 - MAX_ATTACHMENTS} more attachments not kept" in got["body"], got["body"][-300:]
    assert media_rows(gateway) == MAX_ATTACHMENTS


# --- hooks: "Create a hook" run in parallel ---------------------------------------------------

HOOKS = "hooks.example.org"
HOOKS_SECRET = "hooks-component-s3cret"
COMMANDS = "http://jabber.org/protocol/commands"
MAX_HOOKS = 3


@pytest.fixture
async def hooks_world(
    tmp_path: Path, make_prosody: MakeProsody, xmpp_client: ConnectXmpp
) -> AsyncIterator[tuple[GatewayProcess, XmppClient]]:
    prosody = make_prosody(components={HOOKS: HOOKS_SECRET}, users={"mallory": "mallory-pw"})
    gateway = GatewayProcess(
        tmp_path / "gateway",
        {
            "xmpp": {"host": "127.0.0.1", "port": prosody.component_port},
            "allowed_domains": ["example.org"],
            "transports": {
                "webhook": {"jid": HOOKS, "secret": HOOKS_SECRET, "max_hooks_per_user": MAX_HOOKS}
            },
        },
    )
    await gateway.astart()
    mallory = await xmpp_client("mallory@example.org", "mallory-pw", prosody)
    registered = await mallory.iq(
        f"<iq type='set' to='{HOOKS}'><query xmlns='jabber:iq:register'>"
        "<x xmlns='jabber:x:data' type='submit'/></query></iq>"
    )
    assert registered["type"] == "result", registered
    yield gateway, mallory
    gateway.kill()


async def create_hook(client: XmppClient, name: str, first: Any) -> Any:
    return await client.iq(
        f"<iq type='set' to='{HOOKS}'><command xmlns='{COMMANDS}' node='webhook-create'"
        f" sessionid='{first['command']['sessionid']}'><x xmlns='jabber:x:data'"
        f" type='submit'><field var='name'><value>{name}</value></field></x></command></iq>",
        timeout=30,
    )


async def test_hooks_created_in_parallel_stay_within_max_hooks_per_user(hooks_world: Any) -> None:
    """The count was read, then the hook stored, with awaits between: 40 submits sent at once
    all read "fewer than the most allowed" before any was stored."""
    gateway, mallory = hooks_world
    opened = [
        await mallory.iq(
            f"<iq type='set' to='{HOOKS}'><command xmlns='{COMMANDS}' node='webhook-create'"
            " action='execute'/></iq>"
        )
        for _ in range(40)
    ]
    replies = await asyncio.gather(
        *(create_hook(mallory, f"race{index}", first) for index, first in enumerate(opened))
    )
    created = [reply for reply in replies if reply["type"] == "result"]
    refused = [reply for reply in replies if reply["type"] == "error"]
    assert len(created) == MAX_HOOKS, f"{len(created)} hooks created, at most {MAX_HOOKS} allowed"
    assert len(refused) == 40 - MAX_HOOKS
    assert all("the most allowed" in str(reply) for reply in refused), refused[0]
    with sqlite3.connect(gateway.workdir / "portway.db") as db:
        stored = db.execute("SELECT count(*) FROM webhook_hooks").fetchone()[0]
    assert stored == MAX_HOOKS


async def test_one_post_to_a_users_hook_cannot_fan_out_to_thousands(hooks_world: Any) -> None:
    """A user's hook could name any number of JIDs of the allowed domains: one post to a hook
    of 2,000 targets became 2,000 stored events and 2,000 stanzas (60 posts a minute per
    hook, 20 hooks per user). The targets of a user's hook are bounded now."""
    _gateway, mallory = hooks_world
    first = await mallory.iq(
        f"<iq type='set' to='{HOOKS}'><command xmlns='{COMMANDS}' node='webhook-create'"
        " action='execute'/></iq>"
    )
    many = "".join(f"<value>user{index}@example.org</value>" for index in range(2000))
    reply = await mallory.iq(
        f"<iq type='set' to='{HOOKS}'><command xmlns='{COMMANDS}' node='webhook-create'"
        f" sessionid='{first['command']['sessionid']}'><x xmlns='jabber:x:data'"
        " type='submit'><field var='name'><value>fanout</value></field>"
        f"<field var='deliver_to'>{many}</field></x></command></iq>",
        timeout=30,
    )
    assert reply["type"] == "error", "a hook of 2,000 targets was created"
    assert f"at most {MAX_HOOK_TARGETS} targets" in str(reply), reply


# --- the outbox: one user's messages to a destination that does not answer -------------------


@pytest.fixture
async def dead_hook_world(
    tmp_path: Path, make_prosody: MakeProsody, xmpp_client: ConnectXmpp
) -> AsyncIterator[tuple[GatewayProcess, XmppClient]]:
    """alice's hook posts to a loopback port nobody listens on: every post is retried."""
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    prosody = make_prosody(components={HOOKS: HOOKS_SECRET}, users={"alice": "alice-pw"})
    gateway = GatewayProcess(
        tmp_path / "gateway",
        {
            "xmpp": {"host": "127.0.0.1", "port": prosody.component_port},
            "allowed_domains": ["example.org"],
            "transports": {
                "webhook": {
                    "jid": HOOKS,
                    "secret": HOOKS_SECRET,
                    "allow_networks": ["127.0.0.0/8"],
                    "hooks": [
                        {
                            "name": "dead",
                            "owner": ALICE,
                            "token": "dead-hook-token-0123456789",
                            "url": f"http://127.0.0.1:{held.getsockname()[1]}/",
                        }
                    ],
                }
            },
        },
    )
    await gateway.astart()
    alice = await xmpp_client(ALICE, "alice-pw", prosody)
    registered = await alice.iq(
        f"<iq type='set' to='{HOOKS}'><query xmlns='jabber:iq:register'>"
        "<x xmlns='jabber:x:data' type='submit'/></query></iq>"
    )
    assert registered["type"] == "result", registered
    try:
        yield gateway, alice
    finally:
        gateway.kill()
        held.close()


async def test_one_user_cannot_fill_the_outbox(dead_hook_world: Any) -> None:
    """Nothing bounded what one user kept queued: messages to a hook (or a number) that does
    not answer are retried for a day, and a client can send as fast as its server relays.
    Past MAX_WAITING_PER_USER waiting messages, the user gets an error instead."""
    gateway, alice = dead_hook_world
    extra = 20
    for index in range(MAX_WAITING_PER_USER + extra):
        alice.send_message(f"dead@{HOOKS}", f"message {index} " + "x" * 200)
    error = await alice.expect(
        lambda stanza: stanza.name == "message" and stanza["type"] == "error", timeout=60
    )
    assert "resource-constraint" in str(error), error
    assert "messages waiting" in str(error), error
    await asyncio.sleep(2)
    with sqlite3.connect(gateway.workdir / "portway.db") as db:
        queued = db.execute(
            "SELECT count(*) FROM outbox WHERE user_jid = ? AND state IN ('pending', 'sending')",
            (ALICE,),
        ).fetchone()[0]
    assert queued == MAX_WAITING_PER_USER


# --- SMTP: many sessions held open in the middle of DATA --------------------------------------


def rss_mib(gateway: GatewayProcess) -> float:
    assert gateway.process is not None
    status = Path(f"/proc/{gateway.process.pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


async def held_data(
    smtp_port: int, megabytes: int, source: str = "127.0.0.1"
) -> tuple[asyncio.StreamWriter, str]:
    """A session from ``source`` that sends ``megabytes`` of a mail's DATA and then stays."""
    reader, writer = await asyncio.open_connection("127.0.0.1", smtp_port, local_addr=(source, 0))
    greeting = (await reader.readline()).decode()
    if not greeting.startswith("220"):
        writer.close()
        return writer, greeting
    for command in ("EHLO attacker.example", f"MAIL FROM:<{JULIET}>", f"RCPT TO:<alice@{MAIL}>"):
        writer.write(command.encode() + b"\r\n")
        while (await reader.readline())[3:4] == b"-":  # the lines of a multi-line reply
            pass
    writer.write(b"DATA\r\n")
    reply = (await reader.readline()).decode()
    chunk = f"From: {JULIET}\r\n\r\n".encode() + (b"x" * 998 + b"\r\n") * 1024
    for _ in range(megabytes):
        writer.write(chunk)
        await writer.drain()
    return writer, reply


async def test_sessions_held_in_data_cannot_grow_memory_without_bound(
    mail_world: MailWorld,
) -> None:
    """A stranger needs only a bound address: each SMTP session in DATA kept what it had been
    sent (up to max_message_bytes, 10 MB) for as long as a byte came every 299 s, and nothing
    bounded the number of sessions. 40 sessions of 8 MB (from 40 addresses) grew the gateway
    by 347 MiB."""
    _prosody, _gateway, _alice, smtp_port = mail_world
    gateway = _gateway
    before = rss_mib(gateway)
    held = [await held_data(smtp_port, 8, f"127.0.0.{10 + index}") for index in range(40)]
    await asyncio.sleep(1)
    grown = rss_mib(gateway) - before
    in_data = sum(reply.startswith("354") for _writer, reply in held)
    for writer, _reply in held:
        writer.close()
    print("grown", grown, "in data", in_data)
    assert in_data <= SMTP_LIMITS.sessions
    assert grown < SMTP_LIMITS.sessions * 8 * 1.5 + 30, f"the gateway grew by {grown:.0f} MiB"
    reply = await send_mail(smtp_port, plain_mail("After.", "<after@capulet.lit>"))
    assert reply.startswith("2"), reply


# --- logs: the smarthost's password ---------------------------------------------------------

SMARTHOST_PASSWORD = "smarthost-pw-Zk41qd"


async def test_the_smarthost_password_reaches_no_log(
    tmp_path: Path, make_prosody: MakeProsody, xmpp_client: ConnectXmpp
) -> None:
    """At DEBUG, nothing of the SMTP AUTH exchange with the relay may be logged: neither the
    password nor its base64 forms (AUTH PLAIN, AUTH LOGIN)."""
    prosody = make_prosody(components={MAIL: SECRET}, users={"alice": "alice-pw"})
    async with SmtpSink(auth=("portway", SMARTHOST_PASSWORD)) as sink:
        gateway = email_gateway(tmp_path / "gateway", prosody, free_port(), sink.port)
        transport = gateway.config["transports"]["email"]
        transport["smarthost"].update(username="portway", password=SMARTHOST_PASSWORD)
        gateway.config_path.write_text(yaml.safe_dump(gateway.config))
        assert gateway.cli("mappings", "add", "email", ALICE, "alice").returncode == 0
        await gateway.astart()
        try:
            alice = await xmpp_client(ALICE, "alice-pw", prosody)
            alice.send_message(JULIET_JID, "Hello over an authenticated relay.")
            (received,) = await sink.wait_for(1)
            assert received.login == "portway"
        finally:
            gateway.kill()
    log = gateway.log()
    forms = {
        SMARTHOST_PASSWORD,
        base64.b64encode(f"\0portway\0{SMARTHOST_PASSWORD}".encode()).decode(),
        base64.b64encode(SMARTHOST_PASSWORD.encode()).decode(),
    }
    assert "DEBUG" in log
    assert not [form for form in forms if form in log]


# --- email registration: the domain's role addresses ------------------------------------------


@pytest.mark.parametrize("address", ["postmaster", "Admin", "hostmaster", "webmaster", "abuse"])
async def test_a_user_cannot_register_the_domains_role_addresses(
    mail_world: MailWorld, address: str
) -> None:
    """Any registered user could choose postmaster@, admin@ or hostmaster@ the gateway's mail
    domain, and so receive what is sent there: certificate authorities send their domain
    validation mail to admin@, administrator@, webmaster@, hostmaster@ and postmaster@
    (CA/B Forum Baseline Requirements 3.2.2.4.4). The admin can still bind them (CLI)."""
    _prosody, gateway, alice, _smtp_port = mail_world
    refused = await alice.iq(
        f"<iq type='set' to='{MAIL}'><query xmlns='jabber:iq:register'>"
        "<x xmlns='jabber:x:data' type='submit'>"
        f"<field var='address'><value>{address}</value></field></x></query></iq>"
    )
    assert refused["type"] == "error", f"{ALICE} registered {address}@{MAIL}"
    assert "reserved" in refused["error"]["text"], refused
    listed = gateway.cli("mappings", "list").stdout
    assert f"email\t{ALICE}\talice" in listed
    by_admin = gateway.cli("mappings", "add", "email", "bob@example.org", address)
    assert by_admin.returncode == 0, by_admin.stderr


# --- HTTP: requests whose headers never end ----------------------------------------------------


async def held_headers(port: int, kib: int, header_bytes: int) -> asyncio.StreamWriter:
    """A request that sends ``kib`` KiB of headers of ``header_bytes`` each, and never ends
    them."""
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    for index in range(kib * 1024 // header_bytes):
        writer.write(b"X-Pad-%d: " % index + b"a" * header_bytes + b"\r\n")
    # The gateway may refuse the request (a header too long) or the connection (over the
    # cap) while we still write: that is the defence working, not a failure of the attack.
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    return writer


async def settled_rss_mib(gateway: GatewayProcess, timeout: float = 10.0) -> float:
    """The gateway's RSS once it stops moving (two readings half a second apart within
    1 MiB): a single reading caught the gateway mid-way through a burst of connections."""
    last = rss_mib(gateway)
    for _ in range(int(timeout * 2)):
        await asyncio.sleep(0.5)
        now = rss_mib(gateway)
        if abs(now - last) < 1:
            return now
        last = now
    return last


@pytest.mark.parametrize(
    ("header_bytes", "kib"), [(4000, 120), (8000, 1000)], ids=["held", "refused"]
)
async def test_http_requests_whose_headers_never_end_are_bounded(
    mail_world: MailWorld, header_bytes: int, kib: int
) -> None:
    """Anyone who reaches http.listen can open connections that send headers and never
    finish them. aiohttp has no header timeout, and the gateway's runner kept an idle
    connection for an hour: 300 such connections grew the gateway by hundreds of MiB.

    "held": 30 headers of 4,000 bytes, within the limits, so each connection stays until the
    idle timeout; only the cap on connections bounds them. The cap's own cost is what 128 of
    them hold, about 32 MiB (31 measured here); 600 uncapped held 145 MiB.
    "refused": 1 MiB of headers of 8,000 bytes, each over the limit. aiohttp went on reading
    such a connection until its 400 was sent, each read kept by the refusal it queued: 600 of
    them grew the gateway by 110 to 220 MiB, which the allocator did not give back. Paused at
    the refusal, 600 cost 4 to 20 MiB here. The bound allows twice the cap's cost."""
    _prosody, gateway, _alice, _smtp_port = mail_world
    before = await settled_rss_mib(gateway)
    held = [await held_headers(gateway.http_port, kib, header_bytes) for _ in range(600)]
    after = await settled_rss_mib(gateway)
    for writer in held:
        writer.close()
    grown = after - before
    assert grown < 64, f"the gateway grew by {grown:.0f} MiB for 600 unfinished requests"


async def test_one_client_holding_sessions_does_not_shut_out_other_senders(
    mail_world: MailWorld,
) -> None:
    """With only a cap on sessions, one client holding them all (a byte every 299 s keeps a
    session) stopped all mail. One address may hold a few; other senders still get in."""
    _prosody, _gateway, alice, smtp_port = mail_world
    held = [await held_data(smtp_port, 0) for _ in range(SMTP_LIMITS.sessions)]
    in_data = sum(reply.startswith("354") for _writer, reply in held)
    assert in_data == SMTP_LIMITS.sessions_per_client
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=smtp_port, start_tls=False, source_address=("127.0.0.2", 0)
    )
    async with client:
        _, reply = await client.sendmail(
            JULIET, [f"alice@{MAIL}"], plain_mail("Other.", "<other@capulet.lit>")
        )
    for writer, _reply in held:
        writer.close()
    assert reply.startswith("2"), reply
    await alice.expect_message(from_=JULIET_JID, contains="Other.", timeout=10)


async def flood(port: int, until: float, answers: Counter[str], source: str) -> None:
    """Connect from ``source``, read the first line, hang up; again until ``until``."""
    loop = asyncio.get_running_loop()
    while loop.time() < until:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        try:
            line = await asyncio.wait_for(reader.readline(), max(0.1, until - loop.time()))
            answers[line[:3].decode("ascii", "replace")] += 1
        except TimeoutError:
            answers["waiting"] += 1
        writer.close()


async def flooded(smtp_port: int, sources: list[str], seconds: float) -> tuple[Counter[str], str]:
    """A flood from ``sources`` (a connection at a time each) for ``seconds``, and meanwhile
    a mail from another sender: what the flood was answered, and the mail's reply."""
    answers: Counter[str] = Counter()
    until = asyncio.get_running_loop().time() + seconds
    flooding = asyncio.gather(*(flood(smtp_port, until, answers, source) for source in sources))
    await asyncio.sleep(1.0)
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=smtp_port, start_tls=False, source_address=("127.0.0.2", 0)
    )
    async with client:
        _, reply = await client.sendmail(
            JULIET, [f"alice@{MAIL}"], plain_mail("During.", "<during@capulet.lit>")
        )
    await flooding
    print("answers", dict(answers))
    return answers, reply


async def test_a_client_connecting_in_a_loop_is_slowed_and_others_get_in(
    mail_world: MailWorld,
) -> None:
    """Eight connections at a time from one address, each hanging up after the first line
    and coming back at once: the listener built a session or wrote a 421 for each, 4,000
    times a second, and held the gateway's core (bench/smtp_flood.py: 9.9 CPU-seconds in
    10 s). Each client has a connection rate now, past which its connections wait their
    turn; another sender gets in meanwhile."""
    _prosody, _gateway, alice, smtp_port = mail_world
    seconds = 3.0
    answers, reply = await flooded(smtp_port, ["127.0.0.1"] * 8, seconds)
    assert reply.startswith("2"), reply
    assert answers["220"] <= SMTP_LIMITS.burst + seconds * SMTP_LIMITS.per_second + 1, answers
    assert answers["421"] <= SMTP_LIMITS.answers_per_second * (seconds + 1), answers
    await alice.expect_message(from_=JULIET_JID, contains="During.", timeout=10)


async def test_a_client_with_many_addresses_gets_no_more_and_others_get_in(
    mail_world: MailWorld,
) -> None:
    """The same from 64 addresses, each within its own rate: the listener answers so many
    connections a second in all, and a sender among the flood's connections gets a place
    (with 100 addresses, 1 mail in 50 got through before, 15 in 15 now)."""
    _prosody, _gateway, alice, smtp_port = mail_world
    seconds = 3.0
    sources = [f"127.1.0.{index}" for index in range(1, 65)]
    answers, reply = await flooded(smtp_port, sources, seconds)
    assert reply.startswith("2"), reply
    # Sessions that waited for a place start when one frees up, past the accept's bound.
    bound = (SMTP_LIMITS.answers_per_second + SMTP_LIMITS.waiting) * (seconds + 1)
    assert answers["220"] + answers["421"] <= bound, answers
    await alice.expect_message(from_=JULIET_JID, contains="During.", timeout=10)


async def test_a_sender_past_its_connection_rate_waits_and_is_served(
    mail_world: MailWorld,
) -> None:
    """A busy sending server, one session after another, is slowed down to the rate and
    never told 421 for it: a server told 421 queues its mail for later, one that waits for
    the greeting (RFC 5321 gives five minutes) delivers it now."""
    _prosody, _gateway, _alice, smtp_port = mail_world
    count = SMTP_LIMITS.burst + 30
    loop = asyncio.get_running_loop()
    started = loop.time()
    greetings = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", smtp_port)
        greetings.append(await asyncio.wait_for(reader.readline(), 30))
        writer.write(b"QUIT\r\n")
        await reader.readline()
        writer.close()
        await writer.wait_closed()
    elapsed = loop.time() - started
    assert all(line.startswith(b"220 ") for line in greetings), set(greetings)
    # A bucket of SMTP_LIMITS.burst refilling at SMTP_LIMITS.per_second: however fast the
    # machine, the last of them cannot be greeted sooner than this.
    assert elapsed >= (count - SMTP_LIMITS.burst) / SMTP_LIMITS.per_second - 0.05, elapsed
