"""biboumi-style scenarios: "send this stanza, expect that XPath", for Portway's e2e tests.

biboumi's end-to-end suite (tests/end_to_end in louiz/biboumi) writes each behaviour as a
list of `send_stanza(xml)` and `expect_stanza(xpath, ...)` steps. Issue 11 is accepted by
running those scenarios against Portway, so the ports keep that shape: the XML and XPaths
are biboumi's, only the domains change. Differences forced by the stack, and why:

- biboumi's harness *is* the XMPP server; here real clients log in to Prosody. A stanza's
  `from` picks the client that sends it (and is then dropped: Prosody stamps it).
- Every client's stanzas go into one inbox, as they all reached biboumi's one component
  stream; XPaths with `@to` tell them apart, as in biboumi.
- biboumi expects *the next* stanza; here `expect` takes the first matching one and keeps
  the others (the gateway's own server messages differ from biboumi's). Where biboumi
  relies on order, `expect_in_order` checks the order of arrival explicitly.
- lxml is not a dependency, so `xpath_matches` evaluates the small XPath subset biboumi's
  scenarios use (paths, `[@a='v']`, `[@a]`, `[text()='v']`, `[not(text())]`,
  `[re:test(text(), 'p')]`, `count(path)=N`, a leading `!` for "must not match").

`WireRecorder` is a loopback relay that keeps the bytes of the component stream, for the
few checks (stanza namespaces) that only the wire shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slixmpp.stanza import Iq, Message, Presence
from slixmpp.xmlstream import StanzaBase

from .fixture_types import ConnectIrc, ConnectXmpp, MakeNgircd, MakeProsody
from .gateway import GatewayProcess
from .irc_client import RawIrcClient
from .ngircd import Ngircd
from .ports import free_port
from .prosody import Prosody
from .xmpp_client import XmppClient

#: biboumi's prefixes (tests/end_to_end/functions.py); unprefixed names are jabber:client.
NAMESPACES: dict[str, str] = {
    "": "jabber:client",
    "client": "jabber:client",
    "muc_user": "http://jabber.org/protocol/muc#user",
    "muc_owner": "http://jabber.org/protocol/muc#owner",
    "muc_admin": "http://jabber.org/protocol/muc#admin",
    "muc": "http://jabber.org/protocol/muc",
    "disco_info": "http://jabber.org/protocol/disco#info",
    "muc_traffic": "http://jabber.org/protocol/muc#traffic",
    "disco_items": "http://jabber.org/protocol/disco#items",
    "commands": "http://jabber.org/protocol/commands",
    "dataform": "jabber:x:data",
    "version": "jabber:iq:version",
    "mam": "urn:xmpp:mam:2",
    "delay": "urn:xmpp:delay",
    "forward": "urn:xmpp:forward:0",
    "rsm": "http://jabber.org/protocol/rsm",
    "carbon": "urn:xmpp:carbons:2",
    "hints": "urn:xmpp:hints",
    "stanza": "urn:ietf:params:xml:ns:xmpp-stanzas",
    "stable_id": "urn:xmpp:sid:0",
    "ping": "urn:xmpp:ping",
}


#: The `from` attribute of a stanza's opening tag.
ROOT_FROM = re.compile(r"""^(<[\w:]+[^>]*?)\s+from=(['"])[^'"]*\2""")


class ScenarioError(AssertionError):
    """A step did not happen as the scenario says; the message shows what came instead."""


# -- the XPath subset ------------------------------------------------------------------------


def _split(text: str, sep: str) -> list[str]:
    """Split on `sep` outside quotes, brackets and parentheses."""
    parts: list[str] = []
    depth = 0
    quote = ""
    current = ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        elif char == sep and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += char
    parts.append(current)
    return parts


def _predicates(step: str) -> tuple[str, list[str]]:
    """`name[p1][p2]` → ("name", ["p1", "p2"])."""
    name, _, rest = step.partition("[")
    if not rest:
        return name, []
    found: list[str] = []
    depth = 0
    quote = ""
    current = ""
    for char in "[" + rest:
        if quote:
            quote = "" if char == quote else quote
            current += char
            continue
        if char in "'\"":
            quote = char
        if char == "[":
            depth += 1
            if depth == 1:
                current = ""
                continue
        elif char == "]":
            depth -= 1
            if depth == 0:
                found.append(current)
                continue
        current += char
    return name, found


def _qname(name: str) -> str:
    prefix, _, local = name.rpartition(":")
    try:
        return f"{{{NAMESPACES[prefix]}}}{local}"
    except KeyError:
        raise ValueError(f"unknown XPath prefix {prefix!r} in {name!r}") from None


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    raise ValueError(f"expected a quoted string, got {text!r}")


def _test(element: ET.Element, predicate: str) -> bool:
    predicate = predicate.strip()
    if predicate == "not(text())":
        return not (element.text or "")
    if predicate.startswith("re:test("):
        _, pattern = _split(predicate[len("re:test(") : -1], ",")
        return re.search(_unquote(pattern), element.text or "") is not None
    if predicate.startswith("text()="):
        return (element.text or "") == _unquote(predicate[len("text()=") :])
    if predicate.startswith("@"):
        name, eq, value = predicate[1:].partition("=")
        actual = element.get(name.strip())
        return actual is not None if not eq else actual == _unquote(value)
    raise ValueError(f"XPath predicate not supported here: [{predicate}]")


def select(root: ET.Element, path: str) -> list[ET.Element]:
    """The elements an absolute path (`/presence/muc_user:x/...`) selects from a stanza."""
    if not path.startswith("/"):
        raise ValueError(f"only absolute paths are supported: {path!r}")
    steps = _split(path[1:], "/")
    current = [root]
    for index, step in enumerate(steps):
        name, predicates = _predicates(step)
        if index == 0:
            candidates = [e for e in current if name == "*" or e.tag == _qname(name)]
        else:
            candidates = [
                child for e in current for child in e if name == "*" or child.tag == _qname(name)
            ]
        current = [e for e in candidates if all(_test(e, p) for p in predicates)]
    return current


def xpath_matches(root: ET.Element, xpath: str) -> bool:
    """True if the stanza matches one of biboumi's XPaths (`!xpath`: must not match)."""
    if xpath.startswith("!"):
        return not xpath_matches(root, xpath[1:])
    counted = re.fullmatch(r"count\((.+)\)\s*=\s*(\d+)", xpath)
    if counted:
        return len(select(root, counted.group(1))) == int(counted.group(2))
    return bool(select(root, xpath))


def all_match(root: ET.Element, xpaths: Iterable[str]) -> bool:
    return all(xpath_matches(root, xpath) for xpath in xpaths)


def text_at(root: ET.Element, path: str) -> str:
    """Text of the first element a path selects (biboumi's `extract_text`)."""
    found = select(root, path)
    if not found:
        raise ScenarioError(f"nothing at {path} in {ET.tostring(root, encoding='unicode')}")
    return found[0].text or ""


def attribute_at(root: ET.Element, path: str, name: str) -> str:
    """An attribute of the first element a path selects (biboumi's `extract_attribute`)."""
    found = select(root, path)
    if not found or found[0].get(name) is None:
        raise ScenarioError(f"no @{name} at {path} in {ET.tostring(root, encoding='unicode')}")
    return found[0].get(name) or ""


# -- the scenario runner ---------------------------------------------------------------------


@dataclass(eq=False)
class Received:
    """One stanza as it arrived, with its place in the order of arrival across clients."""

    order: int
    stanza: StanzaBase

    @property
    def xml(self) -> ET.Element:
        return self.stanza.xml

    def __str__(self) -> str:
        return str(self.stanza)


@dataclass
class Scenario:
    """Clients of one scenario, one shared inbox, and biboumi's `{placeholders}`."""

    replacements: dict[str, str]
    clients: dict[str, XmppClient] = field(default_factory=dict)
    inbox: list[Received] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    def format(self, text: str) -> str:
        return text.format_map(self.replacements)

    def add_client(self, client: XmppClient) -> None:
        """Route this client's incoming stanzas into the shared inbox."""
        self.clients[str(client.jid)] = client

        def record(stanza: StanzaBase) -> StanzaBase:
            if isinstance(stanza, Message | Presence | Iq):
                self.inbox.append(Received(next(self._counter), stanza))
                self._arrived.set()
            return stanza

        client.xmpp.add_filter("in", record)

    def send(self, xml: str) -> None:
        """biboumi's send_stanza: the `from` attribute picks the client, Prosody stamps it."""
        text = self.format(xml)
        element = ET.fromstring(text)
        sender = element.get("from")
        if sender is None or sender not in self.clients:
            raise ScenarioError(f"no logged-in client for from={sender!r} in {text}")
        # Drop `from` from the opening tag only; the rest goes byte for byte as written.
        raw = ROOT_FROM.sub(r"\1", text.strip(), count=1)
        self.clients[sender].send_raw(raw)

    async def expect(self, *xpaths: str, timeout: float = 15.0) -> Received:
        """biboumi's expect_stanza: the first received stanza matching every XPath."""
        wanted = [self.format(x) for x in xpaths]
        found = await self._take([wanted], timeout)
        return found[0]

    async def expect_unordered(
        self, *groups: Sequence[str], timeout: float = 15.0
    ) -> list[Received]:
        """biboumi's expect_unordered: one stanza for each group of XPaths, in any order."""
        wanted = [[self.format(x) for x in group] for group in groups]
        return await self._take(wanted, timeout)

    async def expect_in_order(
        self, *groups: Sequence[str], timeout: float = 15.0
    ) -> list[Received]:
        """One stanza per group, and they arrived in the order of the groups."""
        found = await self.expect_unordered(*groups, timeout=timeout)
        orders = [r.order for r in found]
        if orders != sorted(orders):
            listing = "\n".join(f"#{r.order}: {r}" for r in sorted(found, key=lambda r: r.order))
            raise ScenarioError(f"stanzas arrived out of order:\n{listing}")
        return found

    async def expect_nothing(self, *xpaths: str, within: float = 3.0) -> None:
        """No stanza matching every XPath arrives within `within` seconds (or is buffered)."""
        wanted = [self.format(x) for x in xpaths]
        await asyncio.sleep(within)
        for received in self.inbox:
            if all_match(received.xml, wanted):
                raise ScenarioError(f"unexpected stanza matching {wanted}:\n{received}")

    def drop_all(self) -> None:
        """Forget everything received so far, to start a step clean."""
        self.inbox.clear()

    async def _take(self, groups: list[list[str]], timeout: float) -> list[Received]:
        results: list[Received | None] = [None] * len(groups)
        deadline = time.monotonic() + timeout
        while True:
            for index, group in enumerate(groups):
                if results[index] is not None:
                    continue
                for received in self.inbox:
                    if all(received is not r for r in results) and all_match(received.xml, group):
                        results[index] = received
                        break
            taken = [r for r in results if r is not None]
            if len(taken) == len(groups):
                for done in taken:
                    self.inbox.remove(done)
                return taken
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                missing = [g for g, r in zip(groups, results, strict=True) if r is None]
                seen = "\n".join(str(r) for r in self.inbox[-15:]) or "(nothing)"
                raise ScenarioError(
                    f"no stanza within {timeout}s matching:\n{missing}\n"
                    f"last unmatched stanzas:\n{seen}"
                )
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)


# -- the wire --------------------------------------------------------------------------------


class WireRecorder:
    """A loopback TCP relay that keeps every byte the gateway sends its XMPP server.

    The gateway connects to `port`; the relay connects on to `target_port`. Only what only
    the wire shows is checked with it (e.g. the namespace of stanzas on the component
    stream, which Prosody normalises before any client sees them).
    """

    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.target_port = target_port
        self.port = free_port()
        self.sent = bytearray()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        for source, sink, keep in ((reader, up_writer, True), (up_reader, writer, False)):
            task = asyncio.create_task(self._pipe(source, sink, keep))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, keep: bool
    ) -> None:
        try:
            while data := await source.read(65536):
                if keep:
                    self.sent.extend(data)
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            sink.close()

    def text(self) -> str:
        return self.sent.decode("utf-8", errors="replace")

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)


def placeholders(
    gateway: str, irc_host: str, domain: str, extra: Mapping[str, str]
) -> dict[str, str]:
    """biboumi's common_replacements, on Portway's domains."""
    values = {
        "irc_server_one": f"{irc_host}@{gateway}",
        "irc_host_one": irc_host,
        "biboumi_host": gateway,
        "resource_one": "resource1",
        "resource_two": "resource2",
        "nick_one": "Nick",
        "nick_two": "Nick2",
        "nick_three": "Nick3",
        "lower_nick_one": "nick",
        "lower_nick_two": "nick2",
        "jid_one": f"first@{domain}",
        "jid_two": f"second@{domain}",
    }
    values.update(extra)
    return values


# -- the stack: Prosody, ngIRCd and `portway run`, with biboumi's names ------------------------

GATEWAY = "irc.gw"
IRC_HOST = "irc.localhost"
DOMAIN = "example.org"
SECRET = "biboumi-scenarios-s3cret"
PASSWORDS = {"first": "first-pw", "second": "second-pw"}
#: slixmpp xep_0045's stanza handlers, removed from scenario clients (see Stack.login).
MUC_PLUGIN_HANDLERS = (
    "MUCPresence",
    "MUCPresenceError",
    "MUCError",
    "MUCMessage",
    "MUCSubject",
    "MUCConfig",
    "MUCInvite",
)


@dataclass
class Stack:
    """Everything a ported scenario talks to; clients log in on first use (`login`)."""

    prosody: Prosody
    ngircd: Ngircd
    gateway: GatewayProcess
    scenario: Scenario
    connect_xmpp: ConnectXmpp
    connect_irc: ConnectIrc
    recorder: WireRecorder | None = None
    irc_recorder: WireRecorder | None = None

    async def login(self, full_jid: str) -> XmppClient:
        """Log in `{jid_one}/{resource_one}` (placeholders allowed) and route its stanzas."""
        jid = self.scenario.format(full_jid)
        local = jid.split("@", 1)[0]
        client = await self.connect_xmpp(jid, PASSWORDS[local], self.prosody)
        # biboumi's harness reads stanzas raw; slixmpp's MUC plugin would act on them (and
        # answer some room presences with an error of its own), so its handlers are off.
        for handler in MUC_PLUGIN_HANDLERS:
            client.xmpp.remove_handler(handler)
        self.scenario.add_client(client)
        return client

    async def irc(self, nick: str) -> RawIrcClient:
        """A plain IRC user on the same ngIRCd, to see what the gateway puts on the wire."""
        return await self.connect_irc(self.ngircd, nick)


def gateway_settings(xmpp_port: int, ngircd: Ngircd, irc_port: int) -> dict[str, Any]:
    """The IRC transport on `irc.gw`, one server `irc.localhost`, throttle off for tests."""
    return {
        "xmpp": {"host": "127.0.0.1", "port": xmpp_port, "reconnect_max_seconds": 1},
        "allowed_domains": [DOMAIN],
        "transports": {
            "irc": {
                "jid": GATEWAY,
                "secret": SECRET,
                "servers": {
                    IRC_HOST: {
                        "host": ngircd.host,
                        "port": irc_port,
                        "tls": False,
                        "throttle": None,
                    }
                },
                "reconnect_delay": 0.3,
                "reconnect_max_delay": 1.0,
            }
        },
    }


@contextlib.asynccontextmanager
async def running_stack(
    workdir: Path,
    make_prosody: MakeProsody,
    make_ngircd: MakeNgircd,
    connect_xmpp: ConnectXmpp,
    connect_irc: ConnectIrc,
    *,
    record_wire: bool = False,
    record_irc: bool = False,
) -> AsyncIterator[Stack]:
    """Start Prosody, ngIRCd and the gateway, optionally through WireRecorders.

    `record_wire` keeps what the gateway sends Prosody; `record_irc`, what it sends ngIRCd.
    """
    prosody = make_prosody(components={GATEWAY: SECRET}, users=PASSWORDS)
    ngircd = make_ngircd(server_name=IRC_HOST)
    recorder = WireRecorder(prosody.component_port) if record_wire else None
    irc_recorder = WireRecorder(ngircd.port) if record_irc else None
    for relay in (recorder, irc_recorder):
        if relay is not None:
            await relay.start()
    settings = gateway_settings(
        recorder.port if recorder is not None else prosody.component_port,
        ngircd,
        irc_recorder.port if irc_recorder is not None else ngircd.port,
    )
    gateway = GatewayProcess(workdir / "gateway", settings)
    await gateway.astart()
    scenario = Scenario(placeholders(GATEWAY, IRC_HOST, DOMAIN, {}))
    try:
        yield Stack(
            prosody, ngircd, gateway, scenario, connect_xmpp, connect_irc, recorder, irc_recorder
        )
    finally:
        await gateway.astop()
        for relay in (recorder, irc_recorder):
            if relay is not None:
                await relay.stop()
