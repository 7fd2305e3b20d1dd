"""IRCv3 capability negotiation (CAP LS 302, REQ, ACK/NAK, NEW/DEL) and SASL PLAIN.

Every connection asks ``CAP LS 302`` before NICK/USER and requests, among what is offered,
the capabilities the gateway uses (``WANTED``), plus ``sasl`` when a SASL password is set.
A server without CAP ignores the command (or answers 421) and registers us all the same,
so ngIRCd and older servers keep working; nothing is required but SASL when asked for.
With ``cap-notify`` (implied by 302), CAP NEW and DEL keep the enabled set current after
registration, so a module loaded or unloaded on the server is followed.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from types import MappingProxyType

from transports.irc.limits import MAX_SHARED_SETS, SharedSets
from transports.irc.protocol import IrcLine

#: Enabled capabilities: the same few sets on every connection to a server, shared.
NOTHING_ENABLED: frozenset[str] = frozenset()
shared_caps = SharedSets()
#: What a server offers (CAP LS), once for every connection that was offered the same: a
#: dozen capabilities with their values are most of a KiB, for each user of a network.
NOTHING_OFFERED: Mapping[str, str] = MappingProxyType({})
_offers: dict[tuple[tuple[str, str], ...], Mapping[str, str]] = {}


def shared_offer(offered: dict[str, str]) -> Mapping[str, str]:
    """``offered`` as the read-only mapping every connection offered the same shares."""
    key = tuple(offered.items())
    found = _offers.get(key)
    if found is None:
        found = MappingProxyType(offered)
        if len(_offers) < MAX_SHARED_SETS:  # a server inventing offers gets them unshared
            _offers[key] = found
    return found


#: What the gateway uses, where offered (account-tag: the account on each message).
WANTED = frozenset(
    (
        "server-time",
        "message-tags",
        "echo-message",
        "multi-prefix",
        "away-notify",
        "extended-join",
        "account-notify",
        "account-tag",
        "chghost",
        "invite-notify",
        "batch",
        "cap-notify",
        "userhost-in-names",
    )
)
#: Room for capability names in one CAP REQ line (512 minus the command and CRLF).
_REQ_BYTES = 400
_SASL_CHUNK = 400


def sasl_plain(user: str, secret: str) -> list[str]:
    """The AUTHENTICATE arguments carrying PLAIN credentials (400-byte chunks, then ``+``
    if the last chunk was full, as the SASL spec says)."""
    payload = base64.b64encode(f"{user}\0{user}\0{secret}".encode()).decode()
    chunks = [payload[start : start + _SASL_CHUNK] for start in range(0, len(payload), _SASL_CHUNK)]
    if len(payload) % _SASL_CHUNK == 0:
        chunks.append("+")
    return chunks


def _no_failure(reason: str, final: bool) -> None:
    """A connection without SASL: no capability can fail its registration."""


def _requests(names: list[str]) -> list[str]:
    """Capability names packed into as few CAP REQ arguments as fit a line."""
    lines: list[str] = []
    for name in sorted(names):
        if lines and len(lines[-1]) + 1 + len(name) <= _REQ_BYTES:
            lines[-1] += " " + name
        else:
            lines.append(name)
    return lines


class Capabilities:
    """One connection's negotiation, and then its enabled capabilities.

    ``send`` writes a line past the throttle (the handshake cannot wait); ``fail`` ends the
    registration with a reason (``final``: retrying cannot help).
    """

    __slots__ = (  # one per connection
        "_fail",
        "_listing",
        "_negotiating",
        "_sasl_password",
        "_sasl_user",
        "_send",
        "enabled",
        "offered",
        "sasl_done",
    )

    def __init__(
        self,
        send: Callable[..., None],
        fail: Callable[[str, bool], None],
        *,
        sasl_user: str | None = None,
        sasl_password: str | None = None,
    ) -> None:
        self._send = send
        # Only SASL fails a negotiation: without it, ``fail`` (a bound method, 64 bytes per
        # connection) is not kept.
        self._fail = fail if sasl_password else _no_failure
        self._sasl_user = sasl_user
        self._sasl_password = sasl_password
        self.offered: Mapping[str, str] = NOTHING_OFFERED
        self.enabled: frozenset[str] = NOTHING_ENABLED
        self.sasl_done = False
        self._listing = False
        self._negotiating = False

    def start(self) -> None:
        self._listing = True
        self._negotiating = True
        self._send("CAP", "LS", "302")

    def has(self, name: str) -> bool:
        return name in self.enabled

    def on_line(self, line: IrcLine) -> bool:
        """Handle CAP, AUTHENTICATE and the SASL numerics; True when the line was ours."""
        command = line.command
        if command == "CAP":
            # CAP <target> <sub> [*] :<caps>
            more = line.param(2) == "*" and len(line.params) > 3
            names = line.param(len(line.params) - 1).split()
            self._cap(line.param(1).upper(), more, names)
            return True
        if not self._sasl_password:
            return False
        if command == "AUTHENTICATE" and line.param(0) == "+":
            for chunk in sasl_plain(self._sasl_user or "", self._sasl_password):
                self._send("AUTHENTICATE", chunk)
            return True
        if command == "903":
            self.sasl_done = True
            self._end()
            return True
        if command in ("902", "904", "905", "906"):
            last = line.param(len(line.params) - 1)
            said = "" if last.lower().startswith("sasl authentication failed") else f": {last}"
            account = self._sasl_user
            self._fail(f"SASL authentication failed for account {account!r}{said}", True)
            return True
        return command == "908"  # the mechanisms on offer; the 904 that follows says why

    def _cap(self, sub: str, more: bool, names: list[str]) -> None:
        if sub == "LS" and self._listing:
            offered = dict(self.offered)
            for item in names:
                name, _, value = item.partition("=")
                offered[name] = value
            self.offered = offered
            if not more:
                self.offered = shared_offer(offered)
                self._listing = False
                self._request_offered()
        elif sub == "NEW":
            offered = dict(self.offered)
            for item in names:
                name, _, value = item.partition("=")
                offered[name] = value
            self.offered = shared_offer(offered)
            wanted = [name.partition("=")[0] for name in names]
            for request in _requests([n for n in wanted if n in WANTED and not self.has(n)]):
                self._send("CAP", "REQ", request)
        elif sub == "DEL":
            gone = set(names)
            self.enabled = shared_caps(self.enabled - gone)
            self.offered = shared_offer(
                {name: value for name, value in self.offered.items() if name not in gone}
            )
        elif sub == "ACK":
            added = {n.lstrip("~=") for n in names if not n.startswith("-")}
            removed = {n[1:] for n in names if n.startswith("-")}
            self.enabled = shared_caps((self.enabled | added) - removed)
            if "sasl" in added and self._sasl_password and self._negotiating:
                self._send("AUTHENTICATE", "PLAIN")
        elif sub == "NAK":
            if "sasl" in names and self._sasl_password:
                self._fail("the server refused to start SASL (CAP NAK)", True)
            elif len(names) > 1:
                # REQ is all or nothing: ask for each alone, so one refusal costs one.
                for name in names:
                    self._send("CAP", "REQ", name)

    def _request_offered(self) -> None:
        """REQ what we want of the offer, then END, or, for SASL, AUTHENTICATE first.

        A server answers REQs before it reads the END after them, so nothing waits for
        the ACKs; ``sasl`` goes alone so that a refused extra cannot take SASL with it.
        """
        if self._sasl_password:
            mechanisms = self.offered.get("sasl")
            if mechanisms is None:
                self._fail("a SASL password is set, but the server does not offer SASL", True)
                return
            if mechanisms and "PLAIN" not in mechanisms.upper().split(","):
                self._fail(f"the server offers SASL only as {mechanisms}, not PLAIN", True)
                return
            self._send("CAP", "REQ", "sasl")
        for request in _requests([name for name in self.offered if name in WANTED]):
            self._send("CAP", "REQ", request)
        if not self._sasl_password:
            self._end()

    def _end(self) -> None:
        if self._negotiating:
            self._negotiating = False
            self._send("CAP", "END")
