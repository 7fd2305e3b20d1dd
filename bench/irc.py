"""Benchmark: the IRC transport beside biboumi, everything on loopback (not a timed test).

Run: ``python bench/irc.py`` (about 5 minutes on 2 cores; ``--help`` for the knobs).

It starts a throwaway Prosody, an InspIRCd with its flood limits off (bench/inspircd.conf),
Portway (``portway run``) and biboumi (Debian's, with its per-server throttle off, see
bench/biboumi.cfg), all on 127.0.0.1, and measures in one run:

1. two ceilings: an XMPP client through Prosody to a component that only counts, and an IRC
   client through InspIRCd to another IRC client;
2. for each gateway, throughput XMPP→IRC and IRC→XMPP in messages per second, sustained
   over ``--messages`` messages with at most ``--window`` in flight (the median of
   ``--repeat`` runs, each of them printed);
3. for each gateway, p50 and p99 latency of each direction at a steady 50 msg/s;
4. for each gateway, its RSS (``VmRSS`` of /proc/<pid>/status) with 1, 100 and 1,000 users
   connected, each an XMPP account of its own in a channel of its own, and the growth per
   user. Each gateway is started afresh for this part and for the message part, which
   comes first for both, and each part waits until the servers are idle.

The clients are small raw ones (asyncio streams, expat), the same for every measurement, so
that the client costs little and costs the same everywhere. Accounts are written straight
into Prosody's internal storage (one small Lua file each, as ``prosodyctl register`` writes
them): under a second for 1,000, where ``prosodyctl register`` starts Lua for each, about 40 ms
an account here (40 s for 1,000).

It prints each Portway figure beside biboumi's, with the ratio and the issue's target:
throughput at least 1.2x biboumi's both ways, p99 no worse than biboumi's, RSS per connected
user at most 2x biboumi's.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import xml.parsers.expat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any, Protocol
from xml.sax.saxutils import escape, quoteattr

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from support.gateway import GatewayProcess  # noqa: E402
from support.ports import free_port, wait_for_ports  # noqa: E402
from support.process import ServerProcess, ServerStartError, tail  # noqa: E402
from support.prosody import Prosody  # noqa: E402

HOST = "127.0.0.1"
DOMAIN = "example.org"
IRC_SERVER = "irc.localhost"
PORTWAY_JID = "irc.example.org"
BIBOUMI_JID = "biboumi.example.org"
COUNTER_JID = "count.example.org"
SECRETS = {
    PORTWAY_JID: "portway-bench-secret",
    BIBOUMI_JID: "biboumi-bench-secret",
    COUNTER_JID: "counter-bench-secret",
}
PASSWORD = "bench-pw"
CHANNEL = "#bench"
LATENCY_RATE = 50

NS_CLIENT = "jabber:client"
NS_STREAM = "http://etherx.jabber.org/streams"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_MUC = "http://jabber.org/protocol/muc"


def now() -> float:
    return time.perf_counter()


# -- servers -----------------------------------------------------------------------------------


def ensure_packages() -> None:
    """Install InspIRCd and biboumi from Debian if they are missing."""
    missing = [
        pkg
        for pkg, exe in (("inspircd", "inspircd"), ("biboumi", "biboumi"))
        if not shutil.which(exe) and not Path(f"/usr/sbin/{exe}").exists()
    ]
    if not missing:
        return
    print(f"installing {' '.join(missing)} (apt-get)…", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)


def write_template(name: str, target: Path, **values: Any) -> Path:
    text = Template((BENCH / name).read_text()).substitute(**{k: str(v) for k, v in values.items()})
    target.write_text(text)
    return target


class Inspircd(ServerProcess):
    """InspIRCd 3 in the foreground, from bench/inspircd.conf."""

    name = "inspircd"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.port = free_port()

    def start(self, timeout: float = 15.0) -> None:
        (self.workdir / "motd.txt").write_text("Portway benchmark\n")
        config = write_template(
            "inspircd.conf",
            self.workdir / "inspircd.conf",
            server_name=IRC_SERVER,
            port=self.port,
            workdir=self.workdir,
        )
        exe = shutil.which("inspircd") or "/usr/sbin/inspircd"
        self._spawn([exe, "--nofork", "--runasroot", f"--config={config}"])
        if not wait_for_ports([self.port], timeout, alive=lambda: self.running):
            self.kill()
            raise ServerStartError(f"inspircd did not start:\n{tail(self.output_path)}")


class Biboumi(ServerProcess):
    """biboumi from bench/biboumi.cfg, its per-user server options written into its database."""

    name = "biboumi"

    def __init__(self, workdir: Path, component_port: int, irc_port: int) -> None:
        super().__init__(workdir)
        self.component_port = component_port
        self.irc_port = irc_port
        self.db = self.workdir / "biboumi.sqlite"

    def start(self, timeout: float = 15.0) -> None:
        config = write_template(
            "biboumi.cfg",
            self.workdir / "biboumi.cfg",
            domain=BIBOUMI_JID,
            secret=SECRETS[BIBOUMI_JID],
            component_port=self.component_port,
            workdir=self.workdir,
        )
        exe = shutil.which("biboumi") or "/usr/bin/biboumi"
        self._spawn([exe, str(config)])
        deadline = time.monotonic() + timeout
        while not self._has_table():
            if not self.running or time.monotonic() > deadline:
                self.kill()
                raise ServerStartError(f"biboumi did not start:\n{tail(self.output_path)}")
            time.sleep(0.05)

    def _has_table(self) -> bool:
        if not self.db.exists():
            return False
        with contextlib.closing(sqlite3.connect(self.db, timeout=10)) as db:
            row = db.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'ircserveroptions_'"
            ).fetchone()
            return row is not None

    def configure_users(self, users: list[str]) -> None:
        """The "configure" ad-hoc command's outcome for each user, written in one transaction:
        connect to 127.0.0.1 on the InspIRCd port, no TLS, throttle off (-1)."""
        rows = [
            (
                f"{user}@{DOMAIN}",
                IRC_SERVER,
                "",
                "",
                str(self.irc_port),
                "",
                "",
                0,
                "",
                "",
                "",
                20,
                HOST,
                "",
                "",
                -1,
            )
            for user in users
        ]
        with contextlib.closing(sqlite3.connect(self.db, timeout=30)) as db, db:
            db.executemany(
                "INSERT INTO ircserveroptions_ (owner_, server_, pass_, tlsports_, ports_,"
                " username_, realname_, verifycert_, trustedfingerprint_, encodingout_,"
                " encodingin_, maxhistorylength_, address_, nick_, saslpassword_,"
                " throttlelimit_) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )


def register_accounts(prosody: Prosody, users: list[str], password: str) -> None:
    """Accounts written as Prosody's internal storage does (data/<host>/accounts/<user>.dat),
    which is what ``prosodyctl register`` does, minus a Lua start-up per account."""
    prosody.write_config()
    folder = prosody.data_dir / prosody.domain.replace(".", "%2e") / "accounts"
    folder.mkdir(parents=True, exist_ok=True)
    quoted = password.replace("\\", "\\\\").replace('"', '\\"')
    for user in users:
        (folder / f"{user}.dat").write_text(f'return {{\n\t["password"] = "{quoted}";\n}};\n')


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def settle(pids: list[int], timeout: float = 60.0) -> None:
    """Wait until the servers are idle (under 5% of a core each over half a second), so that
    what one phase left behind (1,000 sessions closing) does not weigh on the next."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = [cpu_seconds(pid) for pid in pids]
        await asyncio.sleep(0.5)
        if all(cpu_seconds(pid) - b < 0.025 for pid, b in zip(pids, before, strict=True)):
            return


def machine_busy_seconds() -> float:
    """CPU time processes have spent on the whole machine, from /proc/stat (interrupts left
    out: loopback traffic is handled there, and most of it is this benchmark's own)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system = fields[:3]
    return (user + nice + system) / os.sysconf("SC_CLK_TCK")


def own_busy_seconds() -> float:
    """CPU time of this process and of its children that have exited (every server here)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


# -- a raw XMPP client -------------------------------------------------------------------------


class XmppError(Exception):
    pass


@dataclass
class Stanza:
    name: str
    attrs: dict[str, str]
    body: str | None = None
    codes: list[str] = field(default_factory=list)
    error: bool = False


class XmppStream:
    """A logged-in XMPP client session: SASL PLAIN, bind, presence, groupchat; nothing more.

    Incoming stanzas are parsed with expat and handed to ``on_stanza``; waits in
    :meth:`expect` see them too.
    """

    def __init__(self, user: str, port: int, resource: str = "bench") -> None:
        self.user = user
        self.jid = f"{user}@{DOMAIN}"
        self.full_jid = f"{self.jid}/{resource}"
        self.resource = resource
        self.port = port
        self.on_stanza: Callable[[Stanza], None] | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._waiters: list[tuple[Callable[[Stanza], bool], asyncio.Future[Stanza]]] = []
        self._new_parser()

    def _new_parser(self) -> None:
        parser = xml.parsers.expat.ParserCreate()
        parser.buffer_text = True
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._chars
        self._parser = parser
        self._depth = 0
        self._stanza: Stanza | None = None
        self._text: list[str] | None = None

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        self._depth += 1
        local = name.rpartition(":")[2]
        if self._depth == 2:
            self._stanza = Stanza(local, attrs)
        elif self._stanza is not None:
            if local == "body" and self._depth == 3:
                self._text = []
            elif local == "status" and "code" in attrs:
                self._stanza.codes.append(attrs["code"])
            elif local == "error":
                self._stanza.error = True

    def _chars(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def _end(self, name: str) -> None:
        if self._depth == 3 and self._text is not None and self._stanza is not None:
            self._stanza.body = "".join(self._text)
            self._text = None
        self._depth -= 1
        if self._depth == 1 and self._stanza is not None:
            stanza, self._stanza = self._stanza, None
            if self.on_stanza is not None:
                self.on_stanza(stanza)
            if self._waiters:
                for entry in list(self._waiters):
                    predicate, future = entry
                    if not future.done() and predicate(stanza):
                        future.set_result(stanza)
                        self._waiters.remove(entry)

    async def _read(self) -> None:
        assert self._reader is not None
        try:
            while True:
                data = await self._reader.read(262144)
                if not data:
                    break
                self._parser.Parse(data, False)
        except (ConnectionError, xml.parsers.expat.ExpatError):
            pass
        finally:
            for _, future in self._waiters:
                if not future.done():
                    future.set_exception(XmppError(f"{self.jid}: stream closed"))

    async def expect(self, predicate: Callable[[Stanza], bool], timeout: float = 30.0) -> Stanza:
        future: asyncio.Future[Stanza] = asyncio.get_running_loop().create_future()
        entry = (predicate, future)
        self._waiters.append(entry)
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    def send(self, data: str) -> None:
        assert self._writer is not None
        self._writer.write(data.encode())

    async def drain(self) -> None:
        assert self._writer is not None
        await self._writer.drain()

    def _open(self) -> None:
        self.send(
            f"<?xml version='1.0'?><stream:stream xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAM}'"
            f" to='{DOMAIN}' version='1.0'>"
        )

    async def connect(self, timeout: float = 60.0) -> None:
        self._reader, self._writer = await asyncio.open_connection(HOST, self.port)
        self._task = asyncio.create_task(self._read())
        is_features: Callable[[Stanza], bool] = lambda s: s.name == "features"  # noqa: E731
        features = asyncio.ensure_future(self.expect(is_features, timeout))
        self._open()
        await features
        token = base64.b64encode(f"\0{self.user}\0{PASSWORD}".encode()).decode()
        outcome = asyncio.ensure_future(
            self.expect(lambda s: s.name in ("success", "failure"), timeout)
        )
        self.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{token}</auth>")
        if (await outcome).name != "success":
            raise XmppError(f"{self.jid}: authentication failed")
        # The stream restarts after SASL: a new document, so a new parser.
        self._new_parser()
        features = asyncio.ensure_future(self.expect(is_features, timeout))
        self._open()
        await features
        bound = asyncio.ensure_future(
            self.expect(lambda s: s.name == "iq" and s.attrs.get("id") == "bind", timeout)
        )
        self.send(
            f"<iq type='set' id='bind'><bind xmlns='{NS_BIND}'>"
            f"<resource>{self.resource}</resource></bind></iq>"
        )
        if (await bound).attrs.get("type") != "result":
            raise XmppError(f"{self.jid}: bind failed")
        self.send("<presence/>")

    async def join(self, room: str, nick: str, timeout: float = 60.0) -> None:
        """Join a MUC room; returns on the self-presence (110), raises on an error presence."""
        occupant = f"{room}/{nick}"

        def answered(s: Stanza) -> bool:
            return (
                s.name == "presence"
                and s.attrs.get("from", "").split("/")[0] == room
                and (s.attrs.get("type") == "error" or "110" in s.codes)
            )

        waiting = asyncio.ensure_future(self.expect(answered, timeout))
        self.send(
            f"<presence to={quoteattr(occupant)}><x xmlns='{NS_MUC}'>"
            "<history maxstanzas='0'/></x></presence>"
        )
        reply = await waiting
        if reply.attrs.get("type") == "error":
            raise XmppError(f"{self.jid} could not join {occupant}")

    def groupchat(self, room: str, body: str, ident: str) -> None:
        self.send(
            f"<message to={quoteattr(room)} type='groupchat' id={quoteattr(ident)}>"
            f"<body>{escape(body)}</body></message>"
        )

    async def close(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self.send("</stream:stream>")
                await asyncio.wait_for(self._writer.drain(), 5)
            self._writer.close()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 5)
            self._task.cancel()


class CountingComponent:
    """A XEP-0114 component that counts the message bodies it is sent, and does nothing else."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.count = 0
        self.changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        reader, writer = await asyncio.open_connection(HOST, self.port)
        self._writer = writer
        writer.write(
            f"<stream:stream xmlns='jabber:component:accept' xmlns:stream='{NS_STREAM}'"
            f" to='{COUNTER_JID}'>".encode()
        )
        head = b""
        while b"id=" not in head or b">" not in head.split(b"id=", 1)[1]:
            head += await reader.read(4096)
        quote = head.split(b"id=", 1)[1][:1]
        stream_id = head.split(b"id=" + quote, 1)[1].split(quote, 1)[0].decode()
        digest = hashlib.sha1((stream_id + SECRETS[COUNTER_JID]).encode()).hexdigest()
        writer.write(f"<handshake>{digest}</handshake>".encode())
        reply = b""
        while b"handshake" not in reply:
            chunk = await reader.read(4096)
            if not chunk:
                raise XmppError("counting component refused")
            reply += chunk
        self._task = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        carry = b""
        marker = b"</body>"
        while True:
            data = await reader.read(262144)
            if not data:
                return
            data = carry + data
            found = data.count(marker)
            carry = data[-(len(marker) - 1) :]
            if found:
                self.count += found
                self.changed.set()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._task is not None:
            self._task.cancel()


# -- a raw IRC client ---------------------------------------------------------------------------


class IrcPeer:
    """An IRC client: registers, joins, answers PING, hands PRIVMSG texts to ``on_text``."""

    def __init__(self, port: int, nick: str) -> None:
        self.port = port
        self.nick = nick
        self.on_text: Callable[[bytes], None] | None = None
        self._waiters: list[tuple[bytes, asyncio.Future[bytes]]] = []
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(HOST, self.port)
        self._task = asyncio.create_task(self._read())
        welcome = self.wait_for(b" 001 ")
        self.send(f"NICK {self.nick}\r\nUSER {self.nick} 0 * :bench\r\n")
        await asyncio.wait_for(welcome, 30)

    async def join(self, channel: str) -> None:
        done = self.wait_for(f" 366 {self.nick} {channel} ".encode())
        self.send(f"JOIN {channel}\r\n")
        await asyncio.wait_for(done, 30)

    def wait_for(self, needle: bytes) -> asyncio.Future[bytes]:
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiters.append((needle, future))
        return future

    def send(self, data: str) -> None:
        assert self._writer is not None
        self._writer.write(data.encode())

    async def drain(self) -> None:
        assert self._writer is not None
        await self._writer.drain()

    async def _read(self) -> None:
        assert self._reader is not None
        carry = b""
        while True:
            data = await self._reader.read(262144)
            if not data:
                return
            lines = (carry + data).split(b"\r\n")
            carry = lines.pop()
            for line in lines:
                if b" PRIVMSG " in line:
                    if self.on_text is not None:
                        self.on_text(line.split(b" :", 1)[1] if b" :" in line else b"")
                    continue
                if line.startswith(b"PING"):
                    self.send("PONG" + line[4:].decode() + "\r\n")
                if self._waiters:
                    for entry in list(self._waiters):
                        if entry[0] in line and not entry[1].done():
                            entry[1].set_result(line)
                            self._waiters.remove(entry)

    async def close(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self.send("QUIT :bye\r\n")
                await asyncio.wait_for(self._writer.drain(), 5)
            self._writer.close()
        if self._task is not None:
            self._task.cancel()


# -- measuring ---------------------------------------------------------------------------------


class Arrivals:
    """What a receiver has seen of one run: a count, and the arrival time of each message."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.count = 0
        self.times: dict[int, float] = {}
        self.changed = asyncio.Event()

    def seen(self, text: str) -> None:
        if not text.startswith(self.prefix):
            return
        try:
            index = int(text[len(self.prefix) :])
        except ValueError:
            return
        if index not in self.times:
            self.times[index] = now()
            self.count += 1
            self.changed.set()

    async def wait_count(self, count: int, timeout: float) -> None:
        deadline = now() + timeout
        while self.count < count:
            self.changed.clear()
            remaining = deadline - now()
            if remaining <= 0:
                raise TimeoutError(f"{self.prefix!r}: {self.count} of {count} arrived")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)


async def sustained(
    send: Callable[[int], None],
    drain: Callable[[], Awaitable[None]],
    arrived: Callable[[], int],
    changed: asyncio.Event,
    total: int,
    window: int,
    timeout: float = 600.0,
) -> float:
    """Messages per second from the first send to the last arrival, ≤ ``window`` in flight."""
    started = now()
    sent = 0
    deadline = started + timeout
    while arrived() < total:
        room = min(total - sent, window - (sent - arrived()))
        for _ in range(room):
            send(sent)
            sent += 1
        if room:
            await drain()
        changed.clear()
        if arrived() >= total:
            break
        remaining = deadline - now()
        if remaining <= 0:
            raise TimeoutError(f"{arrived()} of {total} arrived in {timeout:.0f}s")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), min(remaining, 30))
    return total / (now() - started)


async def paced(
    send: Callable[[int], None],
    drain: Callable[[], Awaitable[None]],
    arrivals: Arrivals,
    rate: int,
    seconds: float,
) -> list[float]:
    """Send at a steady rate; return each message's latency in ms, sorted."""
    total = int(rate * seconds)
    sent_at: dict[int, float] = {}
    start = now()
    for index in range(total):
        delay = start + index / rate - now()
        if delay > 0:
            await asyncio.sleep(delay)
        sent_at[index] = now()
        send(index)
        await drain()
    with contextlib.suppress(TimeoutError):
        await arrivals.wait_count(total, 30)
    lost = total - arrivals.count
    if lost:
        print(f"    ({lost} of {total} messages did not arrive within 30 s)")
    return sorted((arrivals.times[i] - sent_at[i]) * 1000 for i in arrivals.times if i in sent_at)


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(len(values) * fraction))]


# -- the ceilings ------------------------------------------------------------------------------


async def xmpp_ceiling(prosody: Prosody, total: int, window: int) -> float:
    counter = CountingComponent(prosody.component_port)
    await counter.connect()
    client = XmppStream("ceiling", prosody.c2s_port)
    await client.connect()
    room = f"room@{COUNTER_JID}"
    try:
        return await sustained(
            lambda n: client.groupchat(room, f"c {n}", f"c{n}"),
            client.drain,
            lambda: counter.count,
            counter.changed,
            total,
            window,
        )
    finally:
        await client.close()
        await counter.close()


async def irc_ceiling(ircd: Inspircd, total: int, window: int) -> float:
    sender, receiver = IrcPeer(ircd.port, "ceilsend"), IrcPeer(ircd.port, "ceilrecv")
    for peer in (sender, receiver):
        await peer.connect()
        await peer.join("#ceiling")
    arrivals = Arrivals("c ")
    receiver.on_text = lambda text: arrivals.seen(text.decode())
    try:
        return await sustained(
            lambda n: sender.send(f"PRIVMSG #ceiling :c {n}\r\n"),
            sender.drain,
            lambda: arrivals.count,
            arrivals.changed,
            total,
            window,
        )
    finally:
        await sender.close()
        await receiver.close()


# -- the gateways ------------------------------------------------------------------------------


class Gateway(Protocol):
    label: str
    domain: str

    @property
    def pid(self) -> int: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class PortwayGateway:
    label = "Portway"
    domain = PORTWAY_JID

    def __init__(self, workdir: Path, prosody: Prosody, ircd: Inspircd) -> None:
        self.workdir = workdir
        self.prosody = prosody
        self.ircd = ircd
        self.runs = 0
        self.process: GatewayProcess | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None and self.process.process is not None
        return self.process.process.pid

    async def start(self) -> None:
        self.runs += 1
        self.process = GatewayProcess(
            self.workdir / f"portway{self.runs}",
            {
                "xmpp": {"host": HOST, "port": self.prosody.component_port},
                "allowed_domains": [DOMAIN],
                "log_level": "WARNING",
                "transports": {
                    "irc": {
                        "jid": PORTWAY_JID,
                        "secret": SECRETS[PORTWAY_JID],
                        "servers": {
                            IRC_SERVER: {
                                "host": HOST,
                                "port": self.ircd.port,
                                "tls": False,
                                "throttle": None,
                            }
                        },
                    }
                },
            },
        )
        await self.process.astart(timeout=60)

    async def stop(self) -> None:
        if self.process is not None:
            await self.process.astop()


class BiboumiGateway:
    label = "biboumi"
    domain = BIBOUMI_JID

    def __init__(self, workdir: Path, prosody: Prosody, ircd: Inspircd, users: list[str]) -> None:
        self.server = Biboumi(workdir / "biboumi", prosody.component_port, ircd.port)
        self.users = users
        self.configured = False
        self.prosody = prosody

    @property
    def pid(self) -> int:
        assert self.server.pid is not None
        return self.server.pid

    async def start(self) -> None:
        await asyncio.to_thread(self.server.start)
        if not self.configured:
            await asyncio.to_thread(self.server.configure_users, self.users)
            self.configured = True
        await wait_for_component(self.prosody, BIBOUMI_JID)

    async def stop(self) -> None:
        await asyncio.to_thread(self.server.stop)


async def wait_for_component(prosody: Prosody, domain: str, timeout: float = 30.0) -> None:
    """Until a disco#info to ``domain`` is answered (the component is attached)."""
    client = XmppStream("probe", prosody.c2s_port, resource=f"probe{time.monotonic_ns()}")
    await client.connect()
    try:
        deadline = now() + timeout
        while now() < deadline:
            ident = f"disco{time.monotonic_ns()}"

            def answers(stanza: Stanza, ident: str = ident) -> bool:
                return stanza.name == "iq" and stanza.attrs.get("id") == ident

            reply = asyncio.ensure_future(client.expect(answers, 5))
            client.send(
                f"<iq type='get' to='{domain}' id='{ident}'>"
                "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
            )
            with contextlib.suppress(TimeoutError):
                if (await reply).attrs.get("type") == "result":
                    return
            await asyncio.sleep(0.2)
        raise TimeoutError(f"{domain} did not attach within {timeout}s")
    finally:
        await client.close()


@dataclass
class Figures:
    x2i: float = float("nan")
    i2x: float = float("nan")
    x2i_latency: list[float] = field(default_factory=list)
    i2x_latency: list[float] = field(default_factory=list)
    rss: dict[int, int] = field(default_factory=dict)


async def message_runs(
    gateway: Gateway,
    prosody: Prosody,
    ircd: Inspircd,
    figures: Figures,
    total: int,
    window: int,
    latency_seconds: float,
    repeat: int,
    profile: Path | None,
) -> None:
    """Throughput (the median of ``repeat`` runs) and latency both ways through one gateway,
    with one user in one channel."""
    tag = gateway.label.lower()
    peer = IrcPeer(ircd.port, f"{tag}peer")
    await peer.connect()
    await peer.join(CHANNEL)
    client = XmppStream("bench", prosody.c2s_port)
    await client.connect()
    room = f"{CHANNEL}%{IRC_SERVER}@{gateway.domain}"
    nick = f"{tag}x"
    joined = peer.wait_for(f":{nick}!".encode())
    await client.join(room, nick)
    await asyncio.wait_for(joined, 30)
    await settle([pid for pid in (prosody.pid, ircd.pid, gateway.pid) if pid is not None])

    # What each side receives goes to the run under way on that side (the gateway echoes a
    # user's own room messages back to XMPP: those must not count as arrivals).
    at_irc: list[Arrivals] = [Arrivals("-")]
    at_xmpp: list[Arrivals] = [Arrivals("-")]

    def on_stanza(stanza: Stanza) -> None:
        if stanza.body is not None:
            at_xmpp[0].seen(stanza.body)

    def on_text(text: bytes) -> None:
        at_irc[0].seen(text.decode("utf-8", "replace"))

    client.on_stanza = on_stanza
    peer.on_text = on_text

    def counter(sink: list[Arrivals]) -> Callable[[], int]:
        return lambda: sink[0].count

    def to_irc(prefix: str) -> Callable[[int], None]:
        return lambda n: client.groupchat(room, f"{prefix}{n}", f"{prefix.strip()}{n}")

    def to_xmpp(prefix: str) -> Callable[[int], None]:
        return lambda n: peer.send(f"PRIVMSG {CHANNEL} :{prefix}{n}\r\n")

    spy: subprocess.Popen[bytes] | None = None
    try:
        # A short warm-up each way, not counted.
        for prefix, sink, send, drain in (
            ("w2i ", at_irc, to_irc("w2i "), client.drain),
            ("w2x ", at_xmpp, to_xmpp("w2x "), peer.drain),
        ):
            sink[0] = Arrivals(prefix)
            await sustained(send, drain, counter(sink), sink[0].changed, 300, window)

        runs: dict[str, list[float]] = {"x2i": [], "i2x": []}
        for attempt in range(repeat):
            for key, sink, send, drain in (
                ("x2i", at_irc, to_irc(f"x2i{attempt} "), client.drain),
                ("i2x", at_xmpp, to_xmpp(f"i2x{attempt} "), peer.drain),
            ):
                sink[0] = Arrivals(f"{key}{attempt} ")
                if profile is not None:
                    spy = start_py_spy(gateway.pid, profile.with_name(f"{profile.name}-{key}"))
                runs[key].append(
                    await sustained(send, drain, counter(sink), sink[0].changed, total, window)
                )
                if spy is not None:
                    stop_py_spy(spy)
                    spy = None
        figures.x2i = statistics.median(runs["x2i"])
        figures.i2x = statistics.median(runs["i2x"])
        for key, label in (("x2i", "XMPP→IRC"), ("i2x", "IRC→XMPP")):
            each = ", ".join(f"{r:.0f}" for r in runs[key])
            print(f"  {gateway.label} {label}: {each} msg/s", flush=True)

        at_irc[0] = Arrivals("lx ")
        figures.x2i_latency = await paced(
            to_irc("lx "), client.drain, at_irc[0], LATENCY_RATE, latency_seconds
        )
        at_xmpp[0] = Arrivals("li ")
        figures.i2x_latency = await paced(
            to_xmpp("li "), peer.drain, at_xmpp[0], LATENCY_RATE, latency_seconds
        )
        print(
            f"  {gateway.label} latency at {LATENCY_RATE}/s: XMPP→IRC p50"
            f" {percentile(figures.x2i_latency, 0.5):.1f} p99"
            f" {percentile(figures.x2i_latency, 0.99):.1f} ms; IRC→XMPP p50"
            f" {percentile(figures.i2x_latency, 0.5):.1f} p99"
            f" {percentile(figures.i2x_latency, 0.99):.1f} ms",
            flush=True,
        )
    finally:
        if spy is not None:
            stop_py_spy(spy)
        await client.close()
        await peer.close()


def start_py_spy(pid: int, out: Path) -> subprocess.Popen[bytes]:
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            "py-spy",
            "record",
            "-p",
            str(pid),
            "-r",
            "200",
            "-f",
            "raw",
            "-o",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_py_spy(spy: subprocess.Popen[bytes]) -> None:
    spy.send_signal(2)  # SIGINT: py-spy writes its output and exits
    try:
        spy.wait(30)
    except subprocess.TimeoutExpired:
        spy.kill()


async def rss_runs(
    gateway: Gateway, prosody: Prosody, figures: Figures, steps: list[int], tag: str
) -> None:
    """RSS with 0 users, then with each step's number of users, each in a channel of its own."""
    await asyncio.sleep(2)
    figures.rss[0] = rss_kib(gateway.pid)
    clients: list[XmppStream] = []
    limit = asyncio.Semaphore(25)

    async def one(index: int) -> XmppStream:
        async with limit:
            client = XmppStream(f"r{index:04d}", prosody.c2s_port)
            await client.connect()
            room = f"#r{index:04d}%{IRC_SERVER}@{gateway.domain}"
            await client.join(room, f"{tag}{index:04d}", timeout=120)
            return client

    try:
        for step in steps:
            started = now()
            clients += await asyncio.gather(*(one(i) for i in range(len(clients), step)))
            took = now() - started
            await asyncio.sleep(3)
            figures.rss[step] = rss_kib(gateway.pid)
            print(
                f"  {gateway.label}: {step} users ({took:.1f}s to join),"
                f" RSS {figures.rss[step] / 1024:.1f} MiB",
                flush=True,
            )
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
        await asyncio.sleep(1)


# -- report ------------------------------------------------------------------------------------


def per_user(rss: dict[int, int], low: int, high: int) -> float:
    if low not in rss or high not in rss:
        return float("nan")
    return (rss[high] - rss[low]) / (high - low)


def report(
    args: argparse.Namespace,
    ceilings: tuple[float, float],
    portway: Figures,
    biboumi: Figures | None,
) -> None:
    b = biboumi or Figures()
    print()
    print(
        f"IRC benchmark ({os.cpu_count()} cores; {args.messages} messages a run, at most"
        f" {args.window} in flight, median of {args.repeat} runs; latency at {LATENCY_RATE}"
        f" msg/s for {args.latency_seconds:g} s each way; RSS with each user an XMPP account"
        " of its own, in a channel of its own)"
    )
    foreign = args.foreign_cpu
    print(
        f"  other work on the machine meanwhile: {foreign:.0f} CPU-seconds, about"
        f" {foreign / args.elapsed / (os.cpu_count() or 1):.0%} of its capacity (it skews every"
        " figure; rerun when this is near 0)"
    )
    print(f"  ceiling: XMPP client → Prosody → counting component  {ceilings[0]:8.0f} msg/s")
    print(f"  ceiling: IRC client → InspIRCd → IRC client           {ceilings[1]:8.0f} msg/s")
    print()
    head = f"  {'':34} {'Portway':>9} {'biboumi':>9} {'ratio':>7}  target"
    print(head)

    def row(name: str, ours: float, theirs: float, target: str, ok: bool | None) -> None:
        ratio = ours / theirs if theirs and theirs == theirs and ours == ours else float("nan")
        verdict = "" if ok is None else ("met" if ok else "NOT MET")
        print(f"  {name:34} {ours:9.1f} {theirs:9.1f} {ratio:7.2f}  {target} {verdict}")

    def cmp(value: bool) -> bool | None:
        return value if biboumi is not None else None

    row("XMPP→IRC throughput (msg/s)", portway.x2i, b.x2i, "≥1.20", cmp(portway.x2i >= 1.2 * b.x2i))
    row("IRC→XMPP throughput (msg/s)", portway.i2x, b.i2x, "≥1.20", cmp(portway.i2x >= 1.2 * b.i2x))
    for label, ours, theirs in (
        ("XMPP→IRC", portway.x2i_latency, b.x2i_latency),
        ("IRC→XMPP", portway.i2x_latency, b.i2x_latency),
    ):
        row(f"{label} latency p50 (ms)", percentile(ours, 0.5), percentile(theirs, 0.5), "", None)
        p99, their_p99 = percentile(ours, 0.99), percentile(theirs, 0.99)
        row(f"{label} latency p99 (ms)", p99, their_p99, "≤1.00", cmp(p99 <= their_p99))
    steps = sorted(portway.rss)
    for step in steps:
        row(
            f"RSS, {step} users (MiB)",
            portway.rss[step] / 1024,
            b.rss.get(step, float("nan")) / 1024,
            "",
            None,
        )
    top = max(steps) if steps else 0
    for low, high in ((1, 100), (1, top)):
        if high <= low or high not in portway.rss:
            continue
        growth, their_growth = per_user(portway.rss, low, high), per_user(b.rss, low, high)
        is_target = high == top
        row(
            f"RSS per user, {low}→{high} users (KiB)",
            growth,
            their_growth,
            "≤2.00" if is_target else "",
            cmp(growth <= 2 * their_growth) if is_target else None,
        )


# -- main --------------------------------------------------------------------------------------


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=5000, help="messages per throughput run")
    parser.add_argument("--window", type=int, default=100, help="messages in flight at most")
    parser.add_argument("--repeat", type=int, default=3, help="throughput runs (median)")
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--users", default="1,100,1000", help="RSS steps (users connected)")
    parser.add_argument("--only", choices=("portway", "biboumi"), help="measure one gateway")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--skip-messages", action="store_true")
    parser.add_argument(
        "--py-spy", type=Path, help="record Portway's throughput runs: PATH-x2i, PATH-i2x (raw)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    steps = sorted({int(s) for s in args.users.split(",") if s.strip()})

    ensure_packages()
    busy_before, own_before = machine_busy_seconds(), own_busy_seconds()
    workdir = Path(tempfile.mkdtemp(prefix="portway-bench-irc-"))
    prosody = Prosody(workdir / "prosody", components=SECRETS, muc=False, log_level="warn")
    users = ["bench", "ceiling", "probe"] + [f"r{i:04d}" for i in range(max(steps, default=0))]
    started = now()
    register_accounts(prosody, users, PASSWORD)
    print(f"{len(users)} accounts written in {now() - started:.2f}s", flush=True)
    ircd = Inspircd(workdir / "inspircd")
    gateways: list[tuple[Gateway, Figures, str]] = []
    try:
        await prosody.astart()
        await ircd.astart()
        ceilings = (
            await xmpp_ceiling(prosody, args.messages, args.window),
            await irc_ceiling(ircd, args.messages, args.window),
        )
        print(f"  ceilings: {ceilings[0]:.0f} msg/s (XMPP), {ceilings[1]:.0f} msg/s (IRC)")
        if args.only != "biboumi":
            gateways.append((PortwayGateway(workdir, prosody, ircd), Figures(), "p"))
        if args.only != "portway":
            gateways.append((BiboumiGateway(workdir, prosody, ircd, users), Figures(), "b"))
        # Messages first, for both gateways: 1,000 sessions opened and closed leave Prosody
        # with garbage to collect, and its pauses would show in the latencies.
        servers = [pid for pid in (prosody.pid, ircd.pid) if pid is not None]
        for gateway, figures, _ in gateways if not args.skip_messages else []:
            await settle(servers)
            await gateway.start()
            try:
                await message_runs(
                    gateway,
                    prosody,
                    ircd,
                    figures,
                    args.messages,
                    args.window,
                    args.latency_seconds,
                    args.repeat,
                    args.py_spy if gateway.label == "Portway" else None,
                )
            finally:
                await gateway.stop()
        for gateway, figures, tag in gateways if not args.skip_rss and steps else []:
            await settle(servers)
            await gateway.start()
            try:
                await rss_runs(gateway, prosody, figures, steps, tag)
            finally:
                await gateway.stop()
    finally:
        for gateway, _, _ in gateways:
            with contextlib.suppress(Exception):
                await gateway.stop()
        ircd.stop()
        prosody.stop()
        if args.keep:
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    args.elapsed = now() - started
    args.foreign_cpu = max(
        0.0, machine_busy_seconds() - busy_before - (own_busy_seconds() - own_before)
    )
    by_label = {gateway.label: figures for gateway, figures, _ in gateways}
    report(args, ceilings, by_label.get("Portway", Figures()), by_label.get("biboumi"))
    print(f"\n(total {now() - started:.0f} s)")


if __name__ == "__main__":
    asyncio.run(main())
