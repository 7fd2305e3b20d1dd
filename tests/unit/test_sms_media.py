"""Served media (transports/media.py), shared by SMS and email: one route, tokens, caps."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mappings.store import Store
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
    assert sms.routes == ["/media/{name}"] and email.routes == []


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
            "http://127.0.0.1:1/nothing", owner="sms", max_bytes=10, ttl_seconds=60, timeout=2
        )
