"""IRC addresses in JIDs, biboumi style: ``#chan%server``, ``nick%server``, ``server``.

The local part is XEP-0106-unescaped first. With ``fixed_server`` set, the server is implied
and the forms are ``#chan`` and ``nick``. Validation happens here, once, so that nothing
that reaches an IRC line as a target can carry a space, a comma or a control character.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from slixmpp import JID
from slixmpp.jid import InvalidJID

from transports.base import AddressError
from transports.jid_escaping import EscapingError, escape_localpart, unescape_localpart

CHANNEL_PREFIXES = "#&+!"
MAX_CHANNEL_BYTES = 50
MAX_NICK_LENGTH = 64
_NICK = re.compile(r"^[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]*$")
_CHANNEL_FORBIDDEN = re.compile(r"[\s,\x00-\x1f\x7f]")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)

Kind = Literal["channel", "nick", "server"]


@dataclass(frozen=True)
class IrcAddress:
    """What a contact JID names on IRC; ``name`` is empty for a server."""

    kind: Kind
    server: str
    name: str = ""

    def __str__(self) -> str:
        """The canonical address string the component stores (always with the server)."""
        return f"{self.name}%{self.server}" if self.name else self.server

    @property
    def is_channel(self) -> bool:
        return self.kind == "channel"


def from_canonical(address: str) -> IrcAddress:
    """The canonical address string back into its parts (the inverse of ``str()``)."""
    name, sep, server = address.rpartition("%")
    if not sep:
        return IrcAddress("server", address)
    if name[:1] in "#&+!":
        return IrcAddress("channel", server, name)
    return IrcAddress("nick", server, name)


def is_channel_name(name: str) -> bool:
    return bool(name) and name[0] in CHANNEL_PREFIXES


def check_nick(nick: str) -> str:
    if not nick or len(nick) > MAX_NICK_LENGTH or not _NICK.fullmatch(nick):
        raise AddressError(f"not a valid IRC nick: {nick!r}")
    return nick


def check_channel(channel: str) -> str:
    if (
        len(channel) < 2
        or channel[0] not in CHANNEL_PREFIXES
        or len(channel.encode()) > MAX_CHANNEL_BYTES
        or _CHANNEL_FORBIDDEN.search(channel)
    ):
        raise AddressError(f"not a valid IRC channel name: {channel!r}")
    return channel


def check_server(server: str) -> str:
    if not _HOSTNAME.fullmatch(server):
        raise AddressError(f"not a valid IRC server name: {server!r}")
    return server.lower()


def parse_address(localpart: str, fixed_server: str | None = None) -> IrcAddress:
    """A contact JID's local part → :class:`IrcAddress`; raises AddressError (jid-malformed)."""
    text = unescape_localpart(localpart)
    if not text:
        raise AddressError("empty IRC address")
    if fixed_server:
        if "%" in text:
            raise AddressError(
                f"this gateway serves only {fixed_server}; write {text.split('%')[0]!r} alone"
            )
        name, server = text, fixed_server
    elif "%" in text:
        name, _, server = text.rpartition("%")
        if not name:
            raise AddressError(f"no channel or nick before '%' in {text!r}")
    else:
        return IrcAddress("server", check_server(text))
    server = check_server(server)
    if is_channel_name(name):
        return _nameable(IrcAddress("channel", server, check_channel(name).lower()), fixed_server)
    return _nameable(IrcAddress("nick", server, check_nick(name)), fixed_server)


def _nameable(address: IrcAddress, fixed_server: str | None) -> IrcAddress:
    """The address, if a JID can name it and come back to it (a typed prompt may not).

    JIDs pass through nodeprep, which refuses some characters (private use) and maps others
    (a full-width digit to an ASCII one): such a channel would be unreachable, or another.
    """
    local = format_address(address, fixed_server)
    try:
        prepared = JID(f"{local}@gateway.invalid").user
    except (InvalidJID, UnicodeError):
        prepared = None
    if prepared != local.lower():
        raise AddressError(f"{address.name!r} cannot be written in a JID")
    return address


def format_address(address: IrcAddress, fixed_server: str | None = None) -> str:
    """An :class:`IrcAddress` → a JID local part (XEP-0106-escaped)."""
    if fixed_server and address.server == fixed_server and address.name:
        text = address.name
    else:
        text = str(address)
    try:
        return escape_localpart(text)
    except EscapingError as exc:
        raise AddressError(str(exc)) from exc
