"""A slixmpp-based XMPP user for end-to-end tests.

It plays the person at the keyboard: logs in to the throwaway Prosody over plain TCP on
loopback, and records every stanza it receives so a test can wait for the one it cares
about (`expect`) without losing the others, which stay buffered for later expects.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any, Literal

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.stanza import Iq, Message, Presence
from slixmpp.xmlstream import StanzaBase

Stanza = StanzaBase
Predicate = Callable[[StanzaBase], bool]
MessageType = Literal["chat", "error", "groupchat", "headline", "normal"]

#: Plugins the gateway's tests talk to: disco, forms, registration, ad-hoc commands, ping,
#: version, MUC, receipts, OOB, MAM and stanza ids.
PLUGINS = (
    "xep_0030",
    "xep_0004",
    "xep_0077",
    "xep_0050",
    "xep_0199",
    "xep_0092",
    "xep_0045",
    "xep_0184",
    "xep_0066",
    "xep_0313",
    "xep_0359",
)

CLIENT_NS = "jabber:client"


class XmppConnectError(RuntimeError):
    """Login did not reach session_start; the message says what happened instead."""


def _jid_matches(actual: Any, wanted: str) -> bool:
    """Compare a stanza address with a wanted one: full JID if it has a resource, else bare."""
    wanted_jid = slixmpp.JID(wanted)
    actual_jid = slixmpp.JID(str(actual))
    if wanted_jid.resource:
        return actual_jid.full == wanted_jid.full
    return actual_jid.bare == wanted_jid.bare


def _qualify(element: ET.Element, ns: str = CLIENT_NS) -> None:
    """Put un-namespaced elements of hand-written XML into jabber:client, as a stream would."""
    if not element.tag.startswith("{"):
        element.tag = f"{{{ns}}}{element.tag}"
        for child in element:
            _qualify(child, ns)


class XmppClient:
    """One logged-in XMPP account with a buffered inbox of received stanzas."""

    def __init__(self, jid: str, password: str, host: str = "127.0.0.1", port: int = 5222) -> None:
        self.jid = slixmpp.JID(jid)
        self.password = password
        self.host = host
        self.port = port
        self.xmpp = slixmpp.ClientXMPP(
            jid,
            password,
            plugin_config={
                # No TLS on loopback: allow PLAIN and SCRAM over the unencrypted stream.
                "feature_mechanisms": {"unencrypted_plain": True, "unencrypted_scram": True},
            },
        )
        # Connect straight over TCP: no direct TLS, no STARTTLS, no SRV lookup.
        self.xmpp.enable_direct_tls = False
        self.xmpp.enable_starttls = False
        self.xmpp.enable_plaintext = True
        for plugin in PLUGINS:
            self.xmpp.register_plugin(plugin)
        #: Every message, presence and iq received, in order, matched or not.
        self.received: list[StanzaBase] = []
        self._queue: asyncio.Queue[StanzaBase] = asyncio.Queue()
        self._pending: list[StanzaBase] = []
        self.xmpp.add_filter("in", self._record)
        # slixmpp replaces xmpp.disconnected with a new future on every disconnect, so a
        # test awaiting it late can miss it; this event stays set until the next login.
        self._down = asyncio.Event()
        self.xmpp.add_event_handler("session_start", self._on_session_start)
        self.xmpp.add_event_handler("disconnected", self._on_disconnected)

    def _on_session_start(self, _event: Any) -> None:
        self._down.clear()

    def _on_disconnected(self, _event: Any) -> None:
        self._down.set()

    def _record(self, stanza: StanzaBase) -> StanzaBase:
        """Incoming filter: copy each stanza to the inbox, leaving slixmpp's handling alone."""
        if isinstance(stanza, Message | Presence | Iq):
            self.received.append(stanza)
            self._queue.put_nowait(stanza)
        return stanza

    # -- session -------------------------------------------------------------------------------

    async def connect(self, timeout: float = 15.0) -> None:
        """Log in, send initial presence and fetch the roster, as a real client does."""
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[str] = loop.create_future()

        def settle(result: str) -> Callable[[Any], None]:
            def handler(event: Any) -> None:
                if not outcome.done():
                    outcome.set_result(f"{result}: {event}")

            return handler

        handlers = {
            "session_start": settle("ok"),
            "failed_all_auth": settle("authentication failed"),
            "connection_failed": settle("connection failed"),
            "stream_error": settle("stream error"),
            "disconnected": settle("disconnected"),
        }
        for event, handler in handlers.items():
            self.xmpp.add_event_handler(event, handler, disposable=True)
        try:
            self.xmpp.connect(host=self.host, port=self.port)
            try:
                result = await asyncio.wait_for(outcome, timeout)
            except TimeoutError:
                result = f"timeout after {timeout}s"
        finally:
            for event, handler in handlers.items():
                self.xmpp.del_event_handler(event, handler)
        if not result.startswith("ok"):
            self.xmpp.cancel_connection_attempt()
            self.xmpp.abort()
            raise XmppConnectError(
                f"{self.jid} could not log in to {self.host}:{self.port}: {result}"
            )
        self.xmpp.send_presence()
        await self.xmpp.get_roster(timeout=timeout)

    async def disconnect(self, timeout: float = 5.0) -> None:
        """Close the stream politely; abort the socket if the server does not answer."""
        self.xmpp.cancel_connection_attempt()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.xmpp.disconnect(wait=min(timeout, 2.0)), timeout)
        self.xmpp.abort()

    @property
    def connected(self) -> bool:
        """True while the TCP stream is up."""
        return self.xmpp.transport is not None

    async def wait_disconnected(self, timeout: float = 10.0) -> None:
        """Wait until the stream has dropped (e.g. after the server was killed)."""
        try:
            await asyncio.wait_for(self._down.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(f"{self.jid} still connected after {timeout}s") from None

    # -- sending -------------------------------------------------------------------------------

    def send_message(self, to: str, body: str, mtype: MessageType = "chat") -> Message:
        """Send a message with a body; returned so a test can read its id."""
        msg = self.xmpp.make_message(mto=to, mbody=body, mtype=mtype)
        msg.send()
        return msg

    def send_raw(self, xml: str) -> None:
        """Send hand-written XML as is, for stanzas slixmpp has no helper for."""
        self.xmpp.send_raw(xml)

    async def iq(self, stanza: Iq | str, timeout: float = 10.0) -> Iq:
        """Send an iq and return the reply, an error reply included (no IqError raised).

        `stanza` is an Iq (e.g. from `self.xmpp.make_iq_get()`) or its XML text; elements
        without a namespace are put in jabber:client, and a missing id is filled in.
        """
        if isinstance(stanza, str):
            element = ET.fromstring(stanza)
            _qualify(element)
            stanza = Iq(self.xmpp, xml=element)
        if not stanza["id"]:
            stanza["id"] = self.xmpp.new_id()
        try:
            reply = await stanza.send(timeout=timeout)
        except IqError as exc:
            reply = exc.iq
        except IqTimeout as exc:
            raise TimeoutError(f"no reply to iq {stanza['id']} within {timeout}s") from exc
        assert isinstance(reply, Iq)
        return reply

    # -- receiving -----------------------------------------------------------------------------

    async def expect(self, predicate: Predicate, timeout: float = 10.0) -> StanzaBase:
        """Wait for a received stanza that matches; others stay buffered for later expects.

        Stanzas already buffered are checked first, oldest first, so the order of expects
        does not have to follow the order of arrival.
        """
        for index, stanza in enumerate(self._pending):
            if predicate(stanza):
                return self._pending.pop(index)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                stanza = await asyncio.wait_for(self._queue.get(), remaining)
            except TimeoutError:
                break
            if predicate(stanza):
                return stanza
            self._pending.append(stanza)
        waiting = "\n".join(str(s) for s in self._pending[-10:]) or "(nothing)"
        raise TimeoutError(
            f"{self.jid}: no matching stanza within {timeout}s; last unmatched stanzas:\n{waiting}"
        )

    async def expect_message(
        self,
        from_: str | None = None,
        body: str | None = None,
        *,
        contains: str | None = None,
        regex: str | re.Pattern[str] | None = None,
        type_: str | None = None,
        with_body: bool = True,
        timeout: float = 10.0,
    ) -> Message:
        """Wait for a message by sender (bare or full JID), exact body, substring or regex.

        By default only messages with a body count, so chat states and receipts are skipped
        (they stay buffered); pass with_body=False to match those too.
        """
        pattern = re.compile(regex) if isinstance(regex, str) else regex

        def matches(stanza: StanzaBase) -> bool:
            if not isinstance(stanza, Message):
                return False
            text = stanza["body"]
            return (
                (not with_body or bool(text))
                and (from_ is None or _jid_matches(stanza["from"], from_))
                and (body is None or text == body)
                and (contains is None or contains in text)
                and (pattern is None or pattern.search(text) is not None)
                and (type_ is None or stanza["type"] == type_)
            )

        found = await self.expect(matches, timeout)
        assert isinstance(found, Message)
        return found

    async def expect_presence(
        self,
        from_: str | None = None,
        type_: str | None = None,
        *,
        timeout: float = 10.0,
    ) -> Presence:
        """Wait for a presence by sender and type ('available', 'unavailable', 'subscribe'…)."""

        def matches(stanza: StanzaBase) -> bool:
            return (
                isinstance(stanza, Presence)
                and (from_ is None or _jid_matches(stanza["from"], from_))
                and (type_ is None or stanza["type"] == type_)
            )

        found = await self.expect(matches, timeout)
        assert isinstance(found, Presence)
        return found

    def drain(self) -> list[StanzaBase]:
        """Drop and return everything received but not yet expected, to start a step clean."""
        while not self._queue.empty():
            self._pending.append(self._queue.get_nowait())
        pending, self._pending = self._pending, []
        return pending
