"""Where the gateway may connect on a user's behalf (transports/egress.py).

The connection tests run real sockets on loopback. ``127.0.0.2`` stands for a public server:
tests allow ``127.0.0.2/32`` the way an admin allows a network, and a listener on
``127.0.0.1`` stands for the internal service an attacker aims at. It counts connections, so
a test fails if even one reaches it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from support.inside_service import InsideService, http_answer

from component.config import ConfigError, parse_config
from transports.base import DeliveryFailed, GatewayError
from transports.egress import (
    REFUSED_TEXT,
    RefusedDestination,
    check_address,
    guarded_connector,
    is_allowed,
    is_refusal,
    parse_networks,
    resolve_allowed,
)
from transports.webhook.directory import check_destination
from transports.webhook.outbound import REFUSED_URL, HookClient

PUBLIC_STAND_IN = "127.0.0.2"
ALLOWED = parse_networks([f"{PUBLIC_STAND_IN}/32"])

REFUSED = [
    "127.0.0.1",
    "127.255.255.254",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # CGNAT
    "0.0.0.0",
    "0.1.2.3",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.1",
    "198.51.100.7",
    "203.0.113.9",
    "198.18.0.1",
    "::",
    "::1",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "fe80::1%1",
    "fec0::1",  # site-local
    "ff02::1",
    "2001:db8::1",
    "3fff::1",  # documentation, RFC 9637
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",  # IPv4-compatible
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "not an address",
    "",
]
PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "2606:4700:4700::1111",
    "::ffff:8.8.8.8",
    "2002:808:808::1",
    "64:ff9b::808:808",
]


@pytest.mark.parametrize("address", REFUSED)
def test_addresses_that_are_not_public_are_refused(address: str) -> None:
    assert not is_allowed(address)
    with pytest.raises(RefusedDestination) as refused:
        check_address(address)
    assert str(refused.value) == REFUSED_TEXT


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_allowed(address)
    check_address(address)


def test_allowed_networks_open_exactly_what_they_name() -> None:
    allowed = parse_networks(["10.1.2.0/24", "fd00:1::/64"])
    assert is_allowed("10.1.2.3", allowed)
    assert is_allowed("::ffff:10.1.2.3", allowed)  # the same host, written in IPv6
    assert is_allowed("fd00:1::5", allowed)
    assert not is_allowed("10.1.3.1", allowed)
    assert not is_allowed("127.0.0.1", allowed)
    assert not is_allowed("169.254.169.254", allowed)
    assert not is_allowed("fd00:2::5", allowed)


def test_parse_networks() -> None:
    assert [str(n) for n in parse_networks([" 10.1.2.0/24", "10.9.9.9", "fd00::/8"])] == [
        "10.1.2.0/24",
        "10.9.9.9/32",
        "fd00::/8",
    ]
    for bad in ("10.1.2.0/33", "localhost", "10.1.2", ""):
        with pytest.raises(ValueError):
            parse_networks([bad])


def fake_getaddrinfo(answers: dict[str, list[str]]) -> Any:
    async def getaddrinfo(host: str, port: int, **_options: Any) -> list[Any]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (
                socket.AF_INET6 if ":" in address else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (address, port),
            )
            for address in answers[host]
        ]

    return getaddrinfo


async def test_resolve_allowed_checks_every_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    monkeypatch.setattr(
        loop,
        "getaddrinfo",
        fake_getaddrinfo(
            {
                "public.test": ["93.184.216.34", "2606:4700::1"],
                "mixed.test": ["93.184.216.34", "10.0.0.5"],
                "inside.test": ["::1", "127.0.0.1"],
            }
        ),
    )
    assert await resolve_allowed("public.test", 80) == [
        (socket.AF_INET, "93.184.216.34"),
        (socket.AF_INET6, "2606:4700::1"),
    ]
    for refused in ("mixed.test", "inside.test", "127.0.0.1", "[::ffff:127.0.0.1]"):
        with pytest.raises(RefusedDestination):
            await resolve_allowed(refused, 80)
    assert await resolve_allowed("[::ffff:10.0.0.5]", 80, parse_networks(["10.0.0.0/8"])) == [
        (socket.AF_INET6, str(ipaddress.ip_address("::ffff:10.0.0.5")))
    ]
    with pytest.raises(OSError, match=r"cannot resolve nowhere\.test"):
        await resolve_allowed("nowhere.test", 80)


@pytest.fixture
async def internal() -> AsyncIterator[InsideService]:
    listener = InsideService(answer=http_answer(b"secret"))
    await listener.start()
    yield listener
    await listener.stop()


@pytest.fixture
async def public_site(internal: InsideService) -> AsyncIterator[str]:
    """A "public" web server (on 127.0.0.2) with a page and a redirect into the inside."""

    async def page(_request: web.Request) -> web.Response:
        return web.Response(text="public page")

    async def bounce(_request: web.Request) -> web.Response:
        raise web.HTTPFound(f"http://127.0.0.1:{internal.port}/internal/admin")

    app = web.Application()
    app.router.add_get("/page", page)
    app.router.add_get("/bounce", bounce)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, PUBLIC_STAND_IN, 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"{PUBLIC_STAND_IN}:{port}"
    await runner.cleanup()


async def get(url: str, connector: aiohttp.TCPConnector, **options: Any) -> str:
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(url, **options) as response,
    ):
        return await response.text()


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "[::ffff:127.0.0.1]", "localhost", "[::1]", "0.0.0.0"]
)
async def test_the_connector_refuses_before_connecting(internal: InsideService, host: str) -> None:
    with pytest.raises(aiohttp.ClientConnectorError) as refused:
        await get(f"http://{host}:{internal.port}/internal/admin", guarded_connector(ALLOWED))
    assert is_refusal(refused.value)
    assert internal.connections == 0


async def test_the_refusal_is_the_same_for_an_open_and_a_closed_port(
    internal: InsideService,
) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]  # bound, not listening: a connection would be refused
    texts = []
    try:
        for port in (internal.port, closed_port):
            with pytest.raises(aiohttp.ClientConnectorError) as refused:
                await get(f"http://127.0.0.1:{port}/", guarded_connector())
            assert is_refusal(refused.value)
            texts.append(str(refused.value.os_error))
    finally:
        closed.close()
    assert texts == [REFUSED_TEXT, REFUSED_TEXT]
    assert internal.connections == 0


async def test_an_allowed_network_is_reached(public_site: str) -> None:
    assert await get(f"http://{public_site}/page", guarded_connector(ALLOWED)) == "public page"


class Rebinding(AbstractResolver):
    """A DNS answer that changes: the stand-in public address first, then a private one."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.asked = 0

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        address = self.answers[min(self.asked, len(self.answers) - 1)]
        self.asked += 1
        return [
            ResolveResult(
                hostname=host, host=address, port=port, family=socket.AF_INET, proto=0, flags=0
            )
        ]

    async def close(self) -> None:
        pass


async def test_dns_rebinding_is_refused(public_site: str) -> None:
    port = int(public_site.rpartition(":")[2])
    # the same URL, once the name points inside
    inside = InsideService("127.0.0.1", port, answer=http_answer(b"secret"))
    await inside.start()
    resolver = Rebinding(PUBLIC_STAND_IN, "127.0.0.1")
    connector = guarded_connector(ALLOWED, resolver=resolver, use_dns_cache=False, force_close=True)
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.get(f"http://rebind.test:{port}/page") as first:
                assert await first.text() == "public page"
            with pytest.raises(aiohttp.ClientConnectorError) as refused:
                await session.get(f"http://rebind.test:{port}/page")
    finally:
        await inside.stop()
    assert is_refusal(refused.value)
    assert resolver.asked == 2
    assert inside.connections == 0


@pytest.mark.parametrize(
    "answers", [(PUBLIC_STAND_IN, "127.0.0.1"), ("127.0.0.1", PUBLIC_STAND_IN)]
)
async def test_a_name_with_any_refused_answer_is_refused(
    internal: InsideService, answers: tuple[str, str]
) -> None:
    """Refused whatever the order of the answers, so that the error does not vary with it."""

    class Mixed(Rebinding):
        async def resolve(
            self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
        ) -> list[ResolveResult]:
            return [
                ResolveResult(
                    hostname=host, host=a, port=port, family=socket.AF_INET, proto=0, flags=0
                )
                for a in self.answers
            ]

    connector = guarded_connector(ALLOWED, resolver=Mixed(*answers))
    with pytest.raises(aiohttp.ClientConnectorError) as refused:
        await get(f"http://mixed.test:{internal.port}/", connector)
    assert is_refusal(refused.value)
    assert internal.connections == 0


async def test_a_followed_redirect_is_checked_again(
    public_site: str, internal: InsideService
) -> None:
    with pytest.raises(aiohttp.ClientConnectorError) as refused:
        await get(f"http://{public_site}/bounce", guarded_connector(ALLOWED))
    assert is_refusal(refused.value)
    assert internal.connections == 0


def test_is_refusal_tells_refusals_from_other_failures() -> None:
    assert is_refusal(RefusedDestination())
    assert not is_refusal(ConnectionRefusedError())
    assert not is_refusal(aiohttp.ClientError("x"))


# -- hooks: what a user is told -----------------------------------------------------------------


async def test_a_hook_cannot_scan_the_inside(internal: InsideService) -> None:
    """A refused address is a final error, in the same words for an open and a closed port."""
    client = HookClient(timeout_seconds=3)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    reasons = []
    try:
        for port in (internal.port, closed.getsockname()[1]):
            with pytest.raises(DeliveryFailed) as failed:
                await client.post(f"http://127.0.0.1:{port}/internal/admin", b"{}", {})
            reasons.append(failed.value.reason)
    finally:
        closed.close()
        await client.close()
    assert reasons == [REFUSED_URL, REFUSED_URL]
    assert internal.connections == 0


async def test_a_hook_reaches_a_network_the_admin_allows(internal: InsideService) -> None:
    client = HookClient(3, parse_networks(["127.0.0.0/8"]))
    try:
        answer = await client.post(f"http://127.0.0.1:{internal.port}/x", b"{}", {})
    finally:
        await client.close()
    assert (answer.status, answer.body) == (200, b"secret")
    assert internal.connections == 1


# -- config: the networks an admin allows --------------------------------------------------------

WEBHOOK_CONFIG = """
xmpp: {host: 127.0.0.1, port: 5347}
allowed_domains: [example.org]
transports:
  webhook:
    jid: hooks.example.org
    secret: component-s3cret-value
"""
LOOPBACK_HOOK = (
    "    hooks: [{name: bot, owner: a@example.org, token: bot-token-value,"
    " url: 'http://%s:8080/x'}]\n"
)


def config_problems(extra: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(WEBHOOK_CONFIG + extra)
    return caught.value.problems


def test_allowed_networks_in_the_config() -> None:
    webhook = parse_config(
        WEBHOOK_CONFIG
        + "    allow_networks: [10.1.2.0/24, 127.0.0.1]\n"
        + "    user_hooks_allow_networks: ['fd00:1::/64']\n"
        + LOOPBACK_HOOK % "127.0.0.1"
    ).transports.webhook
    assert webhook is not None
    assert [str(n) for n in webhook.hook_networks] == ["10.1.2.0/24", "127.0.0.1/32"]
    assert [str(n) for n in webhook.user_hook_networks] == ["fd00:1::/64"]
    assert parse_config(WEBHOOK_CONFIG).transports.webhook.user_hook_networks == ()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ("    allow_networks: [10.1.2.0/33]\n", "transports.webhook.allow_networks: not a network"),
        ("    user_hooks_allow_networks: [intranet]\n", "user_hooks_allow_networks: not a network"),
        (LOOPBACK_HOOK % "127.0.0.1", "hooks.0.url: 127.0.0.1 is not a public address"),
        (LOOPBACK_HOOK % "169.254.169.254", "hooks.0.url: 169.254.169.254 is not a public"),
        (
            "    allow_networks: [10.0.0.0/8]\n" + LOOPBACK_HOOK % "[::ffff:127.0.0.1]",
            "add its network to transports.webhook.allow_networks",
        ),
    ],
)
def test_bad_networks_and_refused_hook_urls_name_the_field(extra: str, problem: str) -> None:
    (found,) = config_problems(extra)
    assert problem in found


async def test_a_users_hook_url_is_checked_against_the_users_networks() -> None:
    url = "http://127.0.0.1:8080/internal/admin"
    with pytest.raises(GatewayError, match="url is refused") as refused:
        await check_destination(url, ())
    assert refused.value.condition == "not-allowed"
    await check_destination(url, parse_networks(["127.0.0.0/8"]))  # the admin allows it
    await check_destination("http://unresolvable.invalid/", ())  # DNS may be late: let through
    with pytest.raises(GatewayError, match="not an http"):
        await check_destination("http://[::1/", ())
