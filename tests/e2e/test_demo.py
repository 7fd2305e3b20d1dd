"""The quick start, as a new user runs it: ``./demo/run`` on free ports, driven by a script.

The demo is the first thing a user tries, so it is run whole: the real script, its Prosody,
ngIRCd, smarthost, Twilio simulator and hook endpoint, and Portway from ``.demo/venv`` (made on
the first run, reused after). The script follows the banner's own instructions (its password,
its ``curl`` lines), so a banner that lies fails here too. Ctrl-C is a SIGINT to the demo's
process group, as a terminal sends it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import smtplib
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as email_policy
from pathlib import Path

import aiohttp
import pytest
from slixmpp.stanza import Presence
from slixmpp.xmlstream import StanzaBase
from support.irc_client import RawIrcClient
from support.ports import free_port, port_open
from support.xmpp_client import XmppClient

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "demo" / "run"
PORT_VARS = (
    "DEMO_C2S_PORT",
    "DEMO_COMPONENT_PORT",
    "DEMO_IRC_PORT",
    "DEMO_HTTP_PORT",
    "DEMO_SMTP_PORT",
    "DEMO_SMARTHOST_PORT",
    "DEMO_TWILIO_PORT",
    "DEMO_PHONE_PORT",
    "DEMO_HOOK_PORT",
)
#: The first run builds .demo/venv (pip install); later runs start in seconds.
BANNER_TIMEOUT = 900 if not (ROOT / ".demo" / "venv" / ".demo-stamp").exists() else 90
ROOM = "#portway%irc.localhost@irc.localhost"
MAIL_FRIEND = "friend\\40example.org@mail.localhost"
PHONE_FRIEND = "+15557654321@sms.localhost"
HOOK = "demo@hooks.localhost"


def free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


class Demo:
    """``./demo/run`` in a session of its own, its output (both streams) in one file."""

    def __init__(self, workdir: Path) -> None:
        self.state = workdir / "state"
        self.output_path = workdir / "demo-output.txt"
        self.ports = dict(zip(PORT_VARS, free_ports(len(PORT_VARS)), strict=True))
        self.env = {**os.environ, "DEMO_DIR": str(self.state)}
        self.env.update({name: str(port) for name, port in self.ports.items()})
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, through_tee: bool = False) -> None:
        """Start it; ``through_tee``: its output piped through ``tee``, as a terminal user
        keeping a copy would (closing the terminal then also closes the demo's output)."""
        # env --default-signal: a runner that ignores SIGINT would pass that on, and bash
        # cannot trap a signal ignored at its start.
        command = ["env", "--default-signal=INT", str(DEMO)]
        if through_tee:
            command = ["bash", "-c", f"{shlex.join(command)} 2>&1 | tee /dev/null"]
        with self.output_path.open("wb") as output:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def banner(self) -> str:
        deadline = time.monotonic() + BANNER_TIMEOUT
        while "Ctrl-C stops everything." not in self.output():
            assert self.running(), f"the demo stopped before its banner:\n{self.output()}"
            assert time.monotonic() < deadline, f"no banner in {BANNER_TIMEOUT}s:\n{self.output()}"
            await asyncio.sleep(0.2)
        return self.output()

    async def ended(self, timeout: float = 60.0) -> int:
        assert self.process is not None
        code = await asyncio.to_thread(self.process.wait, timeout)
        return code

    def interrupt(self) -> None:
        """Ctrl-C: SIGINT to the whole process group, as the terminal sends it."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGINT)

    def kill_everything(self) -> None:
        """After a failed test: SIGTERM lets the script stop its parts; SIGKILL if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def listening(self) -> list[str]:
        return [name for name, port in self.ports.items() if port_open(port)]


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    running = Demo(tmp_path)
    try:
        yield running
    finally:
        running.kill_everything()


def banner_value(banner: str, pattern: str) -> str:
    found = re.search(pattern, banner, re.MULTILINE)
    assert found, f"{pattern!r} is not in the banner:\n{banner}"
    return found.group(1)


def curl_line(banner: str, url_part: str) -> tuple[list[str], str]:
    """The banner's curl line that goes to ``url_part``: its options and its URL."""
    line = banner_value(banner, rf"^\s*(curl .*{re.escape(url_part)}\S*)$")
    words = shlex.split(line)
    return words[1:-1], words[-1]


def option_values(options: list[str], name: str) -> list[str]:
    return [options[i + 1] for i, word in enumerate(options) if word == name]


async def eventually(found: Callable[[], str | None], what: str, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while (result := found()) is None:
        assert time.monotonic() < deadline, f"{what} within {timeout}s"
        await asyncio.sleep(0.1)
    return result


def line_with(path: Path, text: str) -> str | None:
    if not path.exists():
        return None
    return next((line for line in path.read_text().splitlines() if text in line), None)


def mail_with(folder: Path, text: str) -> str | None:
    for path in sorted(folder.glob("*.eml")):
        mail = BytesParser(policy=email_policy).parsebytes(path.read_bytes())
        assert isinstance(mail, EmailMessage)
        body = mail.get_body(("plain",))
        if body is not None and text in body.get_content():
            return str(mail["To"])
    return None


def self_presence(room_jid: str) -> Callable[[StanzaBase], bool]:
    def matches(stanza: StanzaBase) -> bool:
        return (
            isinstance(stanza, Presence)
            and str(stanza["from"]) == room_jid
            and stanza.xml.find(".//{http://jabber.org/protocol/muc#user}status[@code='110']")
            is not None
        )

    return matches


@pytest.fixture
async def connected(demo: Demo) -> AsyncIterator[tuple[XmppClient, RawIrcClient, str]]:
    """The demo running, the demo user logged in with the banner's password, an IRC peer."""
    demo.start()
    banner = await demo.banner()
    password = banner_value(banner, r"^\s*password\s+(\S+)$")
    user = XmppClient("demo@localhost", password, port=demo.ports["DEMO_C2S_PORT"])
    await user.connect()
    peer = RawIrcClient("127.0.0.1", demo.ports["DEMO_IRC_PORT"], "ircfriend")
    await peer.connect()
    try:
        yield user, peer, banner
    finally:
        await peer.close()
        await user.disconnect()


def descendant_commands(demo: Demo) -> list[list[str]]:
    """The command lines of the demo's processes (its children, theirs, …): the interpreter
    first."""
    assert demo.process is not None
    root = demo.process.pid
    parents: dict[int, int] = {}
    commands: dict[int, list[str]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        parents[int(proc.name)] = int(stat.rpartition(")")[2].split()[1])
        commands[int(proc.name)] = [a.decode() for a in cmdline.rstrip(b"\0").split(b"\0")]

    def below_demo(pid: int) -> bool:
        while pid > 1:
            pid = parents.get(pid, 0)
            if pid == root:
                return True
        return False

    return [command for pid, command in commands.items() if below_demo(pid)]


async def test_one_message_each_way_on_each_network_then_a_clean_ctrl_c(
    demo: Demo, connected: tuple[XmppClient, RawIrcClient, str]
) -> None:
    user, peer, banner = connected

    # IRC: the room the banner names, with a peer in #portway.
    await peer.join("#portway")
    user.send_raw(
        f"<presence to='{ROOM}/demo'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
    )
    await user.expect(self_presence(f"{ROOM}/demo"), timeout=20)
    user.send_message(ROOM, "hello IRC, from XMPP", mtype="groupchat")
    await peer.expect(r"^:demo!\S+ PRIVMSG #portway :hello IRC, from XMPP$")
    await peer.privmsg("#portway", "hello XMPP, from IRC")
    await user.expect_message(from_=f"{ROOM}/ircfriend", body="hello XMPP, from IRC")

    # Email: out through the catch-all smarthost into the mailbox folder, in by SMTP.
    user.send_message(MAIL_FRIEND, "hello mail, from XMPP")
    to = await eventually(
        lambda: mail_with(demo.state / "mailbox", "hello mail, from XMPP"),
        "the mail in the demo's mailbox folder",
    )
    assert to == "friend@example.org"
    assert "[smarthost] mail from demo@mail.localhost to friend@example.org" in demo.output()
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "friend@example.org", "demo@mail.localhost", "Hi"
    mail.set_content("hello XMPP, from mail")
    with smtplib.SMTP("127.0.0.1", demo.ports["DEMO_SMTP_PORT"], timeout=10) as smtp:
        await asyncio.to_thread(smtp.send_message, mail)
    await user.expect_message(from_=MAIL_FRIEND, contains="hello XMPP, from mail")

    # Webhooks: the banner's curl line posts into the client; the hook's url gets a signed POST.
    options, url = curl_line(banner, "/hooks/demo")
    headers = dict(h.split(": ", 1) for h in option_values(options, "-H"))
    (data,) = option_values(options, "-d")
    async with aiohttp.ClientSession() as http, http.post(url, data=data, headers=headers) as r:
        assert r.status == 202, await r.text()
    await user.expect_message(from_=HOOK, contains=json.loads(data)["text"])
    user.send_message(HOOK, "hello hook, from XMPP")
    posted = await eventually(
        lambda: line_with(demo.state / "hooks" / "received.log", "hello hook, from XMPP"),
        "the hook endpoint's record of the post",
    )
    assert json.loads(posted)["signature_ok"] is True
    assert "[hook endpoint] POST (signature ok)" in demo.output()

    # SMS: the banner's pretend phone texts the user; the user's answer reaches the phone.
    options, url = curl_line(banner, "/text")
    fields = dict(f.split("=", 1) for f in option_values(options, "--data-urlencode"))
    async with aiohttp.ClientSession() as http, http.post(url, data=fields) as r:
        assert r.status == 200, await r.text()
    await user.expect_message(from_=f"{fields['From']}@sms.localhost", body=fields["Body"])
    user.send_message(PHONE_FRIEND, "hello phone, from XMPP")
    texted = await eventually(
        lambda: line_with(demo.state / "phone" / "texts.log", "hello phone, from XMPP"),
        "the pretend phone's record of the text",
    )
    assert texted.startswith("+15557654321 got a text from +15550001111")

    # Portway runs from the demo's own virtualenv, not from the system's Python.
    commands = descendant_commands(demo)
    portway = [cmd for cmd in commands if "run" in cmd and any(a.endswith("/portway") for a in cmd)]
    assert len(portway) == 1, commands
    assert portway[0][0].startswith(str(ROOT / ".demo" / "venv" / "bin") + "/"), portway

    demo.interrupt()
    code = await demo.ended()
    output = demo.output()
    assert code == 0, output
    assert "Traceback" not in output
    portway_log = (demo.state / "portway.log").read_text()
    assert "Traceback" not in portway_log, portway_log
    assert demo.listening() == [], "parts still listen after Ctrl-C"


async def test_a_taken_port_is_named_before_anything_starts(demo: Demo) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", demo.ports["DEMO_C2S_PORT"]))
        taken.listen()
        demo.start()
        code = await demo.ended(timeout=30)
    output = demo.output()
    assert code == 1, output
    port = demo.ports["DEMO_C2S_PORT"]
    assert f"port {port} (DEMO_C2S_PORT) is taken" in output
    assert "Prosody's client port" in output
    assert not (demo.state / "prosody").exists(), "something was set up despite the taken port"


async def test_the_same_port_twice_is_refused(demo: Demo) -> None:
    demo.env["DEMO_HOOK_PORT"] = demo.env["DEMO_PHONE_PORT"]
    demo.start()
    assert await demo.ended(timeout=30) == 1
    assert "is given to both DEMO_PHONE_PORT and DEMO_HOOK_PORT" in demo.output()


async def test_a_part_that_dies_stops_the_demo_with_an_error_naming_it(demo: Demo) -> None:
    demo.start()
    await demo.banner()
    conf = str(demo.state / "ngircd" / "ngircd.conf")
    (ngircd,) = [
        int(pid.name)
        for pid in Path("/proc").iterdir()
        if pid.name.isdigit() and conf.encode() in _cmdline(pid)
    ]
    os.kill(ngircd, signal.SIGKILL)
    code = await demo.ended()
    output = demo.output()
    assert code == 1, output
    assert "demo: ngIRCd stopped with exit code 137" in output
    assert "Traceback" not in output
    assert demo.listening() == [], "the other parts still listen after ngIRCd died"


async def test_a_closed_terminal_stops_every_part(demo: Demo) -> None:
    """SIGHUP (the terminal window closed): each part runs in a session of its own, so
    without the demo stopping them they would outlive it."""
    demo.start(through_tee=True)
    await demo.banner()
    assert demo.process is not None
    os.killpg(demo.process.pid, signal.SIGHUP)
    await demo.ended()  # the shell that ran the pipeline: the demo may still be stopping
    deadline = time.monotonic() + 40
    while demo.listening() and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    assert "Traceback" not in demo.output()
    assert demo.listening() == [], "parts still listen after the demo's terminal closed"


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:  # gone meanwhile
        return b""


def test_help_documents_every_demo_variable() -> None:
    scripts = (DEMO, ROOT / "demo" / "configs.sh")
    used = {v for s in scripts for v in re.findall(r"\bDEMO_[A-Z0-9_]+", s.read_text())}
    shown = subprocess.run([str(DEMO), "--help"], capture_output=True, text=True, check=True)
    documented = set(re.findall(r"^\s+(DEMO_[A-Z0-9_]+)\s", shown.stdout, re.MULTILINE))
    assert used == documented >= set(PORT_VARS)
