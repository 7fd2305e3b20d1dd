"""Where the gateway may connect on someone else's behalf.

A user who sets a hook's URL, or an IRC server to reach, chooses where the gateway connects.
Without a check, that is a way into the gateway's own network: its loopback services, the
cloud metadata address, the admin's private hosts. So every such connection is checked on the
address it is actually made to, after DNS resolution: a name that resolves to a public address
once and a private one later (DNS rebinding) is caught at the second connection, because it is
the socket's address that is checked, not the name.

Refused: loopback, private (RFC 1918, ``fc00::/7``), link-local, CGNAT, multicast, reserved,
documentation and unspecified addresses, also when wrapped in IPv6 (IPv4-mapped, 6to4, NAT64),
and Teredo and site-local IPv6, which nobody serves a public endpoint from. An admin may allow
networks (``allow_networks``) for destinations the admin chose.

A refusal says only that the address is not allowed: never whether something listens there.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64, RFC 6052 and 8215).
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
#: Not public, though this Python's tables may not say so: site-local (deprecated, RFC 3879)
#: and the IPv6 documentation prefix of RFC 9637.
_NOT_PUBLIC = (ipaddress.ip_network("fec0::/10"), ipaddress.ip_network("3fff::/20"))

REFUSED_TEXT = "the address is not allowed (private, loopback or otherwise not public)"


class RefusedDestination(OSError):
    """A destination the gateway will not connect to.

    An ``OSError``, so that an HTTP client reports it as a connection error of its own.
    """

    def __init__(self, text: str = REFUSED_TEXT) -> None:
        super().__init__(text)
        self.text = text


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """Networks from config strings (``10.1.2.0/24``, ``fd00::/8``, a single address)."""
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values)


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for, if it is one of the forms that wrap one.

    Teredo (``2001::/32``) is left out on purpose: it is refused whatever it wraps.
    """
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    for prefix in _NAT64:
        if address in prefix:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    # IPv4-compatible (::a.b.c.d, deprecated) but not :: and ::1
    if int(address) >> 32 == 0 and int(address) > 1:
        return ipaddress.IPv4Address(int(address))
    return None


def is_public(address: IPAddress) -> bool:
    """Whether the address is one anybody on the internet could reach."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            return is_public(inner)
        if any(address in network for network in _NOT_PUBLIC):
            return False
    return not (
        not address.is_global
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or address.is_loopback
        or address.is_link_local
        or address.is_private
    )


def is_allowed(address: str | IPAddress, allowed: Sequence[Network] = ()) -> bool:
    """Whether the gateway may connect to ``address``: public, or in an allowed network."""
    try:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
    if any(ip.version == network.version and ip in network for network in allowed):
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is not None and any(
            network.version == 4 and inner in network for network in allowed
        ):
            return True
    return is_public(ip)


def check_address(address: str | IPAddress, allowed: Sequence[Network] = ()) -> None:
    """Raise :class:`RefusedDestination` unless the gateway may connect to ``address``."""
    if not is_allowed(address, allowed):
        raise RefusedDestination()


def literal_address(host: str) -> IPAddress | None:
    """``host`` as an IP address when it is one (``[::1]`` included), else ``None``."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def resolve_allowed(
    host: str, port: int, allowed: Sequence[Network] = ()
) -> list[tuple[int, str]]:
    """``host``'s addresses as ``(family, address)``, every one of them allowed.

    A name with any refused address is refused as a whole: a client would otherwise be sent
    to whichever address happens to answer. Connect to these addresses, not to the name, so
    that what was checked is what is used.
    """
    literal = literal_address(host)
    if literal is not None:
        check_address(literal, allowed)
        return [(socket.AF_INET6 if literal.version == 6 else socket.AF_INET, str(literal))]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except socket.gaierror as error:
        raise OSError(f"cannot resolve {host}: {error.strerror}") from None
    addresses: list[tuple[int, str]] = []
    for family, _type, _proto, _name, sockaddr in infos:
        check_address(str(sockaddr[0]), allowed)
        if (family, str(sockaddr[0])) not in addresses:
            addresses.append((family, str(sockaddr[0])))
    return addresses


class GuardedResolver(AbstractResolver):
    """A resolver that refuses a name when any of its addresses is refused.

    Refusing the name as a whole (as :func:`resolve_allowed` does) keeps the outcome from
    depending on which address happens to be tried first, so a refusal reads the same however
    the name resolves. Each answer is checked afresh: a rebinding name is caught here as well
    as at the socket.
    """

    def __init__(self, allowed: Sequence[Network], inner: AbstractResolver | None = None) -> None:
        self._allowed = tuple(allowed)
        self._inner = inner or aiohttp.DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        for answer in answers:
            check_address(answer["host"], self._allowed)
        return answers

    async def close(self) -> None:
        await self._inner.close()


def guarded_connector(allowed: Sequence[Network] = (), **options: Any) -> aiohttp.TCPConnector:
    """An aiohttp connector that checks each address right before it connects a socket.

    The check sits in the socket factory, which sees the resolved address of every attempt
    (IP literals, each A/AAAA record, each Happy Eyeballs try), so no path around it is left;
    names are also checked as a whole when resolved (:class:`GuardedResolver`, which wraps a
    ``resolver`` given in ``options``). A refusal reaches the caller as
    ``aiohttp.ClientConnectorError`` whose ``os_error`` is a :class:`RefusedDestination`
    (see :func:`is_refusal`).
    """
    networks = tuple(allowed)

    def open_socket(addr_info: Any) -> socket.socket:
        family, sock_type, proto, _name, sockaddr = addr_info
        check_address(str(sockaddr[0]), networks)
        return socket.socket(family=family, type=sock_type, proto=proto)

    resolver = GuardedResolver(networks, options.pop("resolver", None))
    return aiohttp.TCPConnector(socket_factory=open_socket, resolver=resolver, **options)


def is_refusal(error: BaseException) -> bool:
    """Whether ``error`` (from an HTTP client on a guarded connector) is a refused destination."""
    if isinstance(error, aiohttp.ClientConnectorError):
        return isinstance(error.os_error, RefusedDestination)
    return isinstance(error, RefusedDestination)
