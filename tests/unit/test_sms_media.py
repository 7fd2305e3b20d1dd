"""Served media (transports/media.py), shared by SMS and email: one route, tokens, caps."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mappings.store import Store
from transports.egress import parse_networks
from transports.media import MediaFetchFailed, MediaTooLarge, ServedMedia, served_media


class RouteHost:
    """The two things served_media needs from a transport's host."""

    def __init__(self, store: Store, app: web.Application) -> None:
        self.store = store
        self.app = app
        self.public_url = "https://gw.example.org/"
        self.routes: list[str] = []

    def add_route(self, method: str, path: str, handler: Callable[..., Awaitable[Any]]) -> None:
        self.routes.append(path)
        self.app.router.add_route(method, path, handler)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite:///{tmp_path / 'media.db'}")
    yield opened
    await opened.close()


async def test_two_transports_share_one_route(store: Store) -> None:
    app = web.Application()
    sms, email = RouteHost(store, app), RouteHost(store, app)
    first = served_media(sms)  # type: ignore[arg-type]
    second = served_media(email)  # type: ignore[arg-type]
    assert first is second
    assert sms.routes == ["/media/{name}", "/media/{name}/{filename}"] and email.routes == []


async def test_put_serves_the_file_at_an_unguessable_url(store: Store) -> None:
    app = web.Application()
    media = served_media(RouteHost(store, app))  # type: ignore[arg-type]
    url = await media.put(
        b"%PDF-1.4", "application/pdf", owner="email", ttl_seconds=60, filename='re"port.pdf'
    )
    assert url.startswith("https://gw.example.org/media/") and url.endswith(".pdf")
    path = url.removeprefix("https://gw.example.org")
    async with TestClient(TestServer(app)) as client:
        response = await client.get(path)
        assert response.status == 200
        assert await response.read() == b"%PDF-1.4"
        assert response.headers["Content-Disposition"] == 'inline; filename="re_port.pdf"'
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        for bad in ("/media/short", "/media/" + "A" * 43, "/media/..%2fetc"):
            assert (await client.get(bad)).status == 404


async def test_the_size_cap_and_expiry(store: Store) -> None:
    app = web.Application()
    media = served_media(RouteHost(store, app))  # type: ignore[arg-type]
    with pytest.raises(MediaTooLarge, match="over the 10 bytes limit"):
        await media.put(b"x" * 11, "text/plain", owner="sms", ttl_seconds=60, max_bytes=10)
    gone = await media.put(b"old", "text/plain", owner="sms", ttl_seconds=-1)
    async with TestClient(TestServer(app)) as client:
        assert (await client.get(gone.removeprefix("https://gw.example.org"))).status == 404


async def test_fetch_failures_are_reported_in_words(store: Store) -> None:
    media = ServedMedia(store, "https://gw.example.org")
    with pytest.raises(MediaFetchFailed, match="could not be downloaded"):
        await media.fetch(
            "http://127.0.0.1:1/nothing",
            owner="sms",
            max_bytes=10,
            ttl_seconds=60,
            timeout=2,
            trusted_origin="http://127.0.0.1:1",
        )


# -- where fetch may go -------------------------------------------------------------------------
#
# The provider (the admin's api_base_url) runs on 127.0.0.1 here, as the tests' fake Twilio
# does; 127.0.0.2 stands for a public host (allowed as an admin would allow a network), and a
# listener on 127.0.0.1 for an internal service, counting every connection it gets.


class Sites:
    def __init__(self, provider: str, public: str, internal: str) -> None:
        self.provider, self.public, self.internal = provider, public, internal
        self.seen: list[tuple[str, str | None]] = []  # (site and path, Authorization)
        self.internal_connections = 0


async def _serve(app: web.Application, host: str) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, host, 0).start()
    return runner, f"http://{host}:{runner.addresses[0][1]}"


@pytest.fixture
async def sites() -> AsyncIterator[Sites]:
    counted = Sites("", "", "")

    async def internal_connection(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        counted.internal_connections += 1
        writer.close()

    internal = await asyncio.start_server(internal_connection, "127.0.0.1", 0)
    counted.internal = f"http://127.0.0.1:{internal.sockets[0].getsockname()[1]}"

    def handler(site: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            counted.seen.append((f"{site}{request.path}", request.headers.get("Authorization")))
            target = request.query.get("to") or ("/loop" if request.path == "/loop" else None)
            if target:
                raise web.HTTPFound(target)
            return web.Response(body=b"GIF89a", content_type="image/gif")

        return handle

    provider_app, public_app = web.Application(), web.Application()
    provider_app.router.add_get("/{tail:.*}", handler("provider"))
    public_app.router.add_get("/{tail:.*}", handler("public"))
    provider, counted.provider = await _serve(provider_app, "127.0.0.1")
    public, counted.public = await _serve(public_app, "127.0.0.2")
    yield counted
    await provider.cleanup()
    await public.cleanup()
    internal.close()
    await internal.wait_closed()


async def fetch(store: Store, sites: Sites, url: str) -> str:
    return await ServedMedia(store, "https://gw.example.org").fetch(
        url,
        owner="sms",
        max_bytes=100,
        ttl_seconds=60,
        timeout=5,
        headers={"Authorization": "Basic account"},
        trusted_origin=sites.provider + "/api/base",
        allow_networks=parse_networks(["127.0.0.2/32"]),
    )


async def test_the_providers_media_is_fetched_with_credentials(store: Store, sites: Sites) -> None:
    url = await fetch(store, sites, f"{sites.provider}/Media/ME1")
    assert url.endswith(".gif")
    assert sites.seen == [("provider/Media/ME1", "Basic account")]


async def test_a_redirect_is_followed_and_checked_again(store: Store, sites: Sites) -> None:
    await fetch(store, sites, f"{sites.provider}/Media/ME1?to={sites.public}/s3/ME1")
    # The credentials stay with the provider.
    assert sites.seen == [("provider/Media/ME1", "Basic account"), ("public/s3/ME1", None)]
    for url in (
        f"{sites.provider}/Media/ME2?to={sites.internal}/internal/admin",
        f"{sites.public}/s3/ME2?to={sites.internal}/internal/admin",
        f"{sites.public}/s3/ME3?to={sites.provider.replace('127.0.0.1', 'localhost')}/x",
    ):
        with pytest.raises(MediaFetchFailed, match="the address is not allowed"):
            await fetch(store, sites, url)
    assert sites.internal_connections == 0


@pytest.mark.parametrize(
    "url",
    [
        "{internal}/internal/admin",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]:{port}/internal/admin",
    ],
)
async def test_media_elsewhere_inside_is_refused(store: Store, sites: Sites, url: str) -> None:
    target = url.format(internal=sites.internal, port=sites.internal.rpartition(":")[2])
    with pytest.raises(MediaFetchFailed, match="the address is not allowed"):
        await fetch(store, sites, target)
    assert sites.internal_connections == 0
    assert sites.seen == []


async def test_redirect_loops_end(store: Store, sites: Sites) -> None:
    with pytest.raises(MediaFetchFailed, match="redirected more than 5 times"):
        await fetch(store, sites, f"{sites.public}/loop")
    assert len(sites.seen) == 6
