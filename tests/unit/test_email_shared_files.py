"""Shared files are fetched only from the user's own upload service or Portway's /media,
through the egress checks, within the size budget; any other URL is never requested."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from pydantic import ValidationError
from support.ports import free_port

from mappings.store import Store
from transports.egress import parse_networks
from transports.email.settings import EmailSettings
from transports.media import ServedMedia
from transports.shared_files import FileSources, SharedFiles, may_fetch, media_token, name_of

PUBLIC = "https://gw.portway.test"
ALICE = "alice@example.org"
LOOPBACK = parse_networks(["127.0.0.0/8"])
TOKEN = "A" * 43


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/upload/abc/rose.png",
        "https://upload.example.org/abc/rose.png",
        "http://share.upload.example.org:5280/abc/rose.png",
        f"{PUBLIC}/media/{TOKEN}.png",
        f"{PUBLIC}/media/{TOKEN}/rose.png",
        "https://files.example.net/alice/rose.png",
    ],
)
def test_the_users_own_service_media_and_listed_sources_may_be_fetched(url: str) -> None:
    sources = FileSources(PUBLIC, ("https://files.example.net/alice/",))
    assert may_fetch(url, ALICE, sources)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # the cloud metadata address
        "http://127.0.0.1:8380/media/" + TOKEN,  # the gateway itself, not as public_url
        "https://evil.example.net/rose.png",  # another host
        "https://example.org.evil.net/rose.png",  # a name that only starts like the domain
        "https://badexample.org/rose.png",  # a name that only ends like the domain
        "https://files.example.net/alicex/rose.png",  # beside the listed prefix, not under it
        "https://files.example.net:8443/alice/rose.png",  # another port of the listed host
        "https://user:pw@upload.example.org/rose.png",  # credentials in the URL
        "ftp://upload.example.org/rose.png",
        "file:///etc/passwd",
        f"{PUBLIC}/media/short",  # no token
        f"{PUBLIC}/mediax/{TOKEN}",
        "not a url",
    ],
)
def test_any_other_url_is_never_a_source(url: str) -> None:
    sources = FileSources(PUBLIC, ("https://files.example.net/alice/",))
    assert not may_fetch(url, ALICE, sources)


def test_media_tokens_and_names() -> None:
    assert media_token(f"{PUBLIC}/media/{TOKEN}/rose.png", PUBLIC + "/") == TOKEN
    assert media_token(f"{PUBLIC}/media/{TOKEN}.png", PUBLIC) == TOKEN
    assert name_of("https://upload.example.org/a/b/my%20rose.png") == "my rose.png"
    assert name_of("https://upload.example.org/a/b/..%2F..%2Fetc") == "etc"
    assert name_of("https://upload.example.org/a/%3Cb%3E%0A.png") == "_b__.png"
    assert name_of("https://upload.example.org/") == "file"


class Server:
    """A loopback HTTP server that counts what it was asked."""

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[str] = []
        self.app = web.Application()
        self.app.router.add_get("/{tail:.*}", self.handle)
        self.runner = web.AppRunner(self.app)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path)
        if request.path.startswith("/redirect"):
            raise web.HTTPFound("http://127.0.0.1:9/secret")
        if request.path.startswith("/big"):
            return web.Response(body=b"x" * 5000, content_type="application/octet-stream")
        return web.Response(body=b"\x89PNG rose", content_type="image/png")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    served = Server()
    await served.runner.setup()
    await web.TCPSite(served.runner, "127.0.0.1", served.port).start()
    yield served
    await served.runner.cleanup()


@pytest.fixture
async def media(tmp_path: Path) -> AsyncIterator[ServedMedia]:
    store = await Store.open(f"sqlite:///{tmp_path / 'portway.db'}")
    yield ServedMedia(store, PUBLIC)
    await store.close()


async def test_a_file_of_a_listed_source_is_fetched(server: Server, media: ServedMedia) -> None:
    sources = FileSources(PUBLIC, (server.url("/share/"),), LOOPBACK)
    files, links = await SharedFiles(media, sources).fetch(
        [server.url("/share/abc/rose.png")], ALICE, 1000
    )
    assert links == []
    [file] = files
    assert (file.name, file.content_type, file.data) == ("rose.png", "image/png", b"\x89PNG rose")


async def test_a_hostile_url_is_not_fetched(server: Server, media: ServedMedia) -> None:
    """Another host (not a source) is never asked; a source on an internal address is
    refused by the egress check unless the admin allowed its network."""
    elsewhere = server.url("/secret")
    listed = FileSources(PUBLIC, (server.url("/share/"),), LOOPBACK)
    files, links = await SharedFiles(media, listed).fetch([elsewhere], ALICE, 1000)
    assert (files, links) == ([], [elsewhere])
    internal = server.url("/share/rose.png")
    not_allowed = FileSources(PUBLIC, (server.url("/share/"),))
    files, links = await SharedFiles(media, not_allowed).fetch([internal], ALICE, 1000)
    assert (files, links) == ([], [internal])
    assert server.requests == []


async def test_redirects_are_not_followed(server: Server, media: ServedMedia) -> None:
    sources = FileSources(PUBLIC, (server.url("/"),), LOOPBACK)
    url = server.url("/redirect/rose.png")
    assert await SharedFiles(media, sources).fetch([url], ALICE, 1000) == ([], [url])
    assert server.requests == ["/redirect/rose.png"]


async def test_the_budget_is_for_all_files_of_a_mail(server: Server, media: ServedMedia) -> None:
    sources = FileSources(PUBLIC, (server.url("/"),), LOOPBACK)
    small, big = server.url("/rose.png"), server.url("/big.bin")
    files, links = await SharedFiles(media, sources).fetch([small, big], ALICE, 4000)
    assert [file.name for file in files] == ["rose.png"]
    assert links == [big]


async def test_portway_media_is_read_from_the_store(media: ServedMedia) -> None:
    url = await media.put(b"a rose", "image/png", owner="sms", ttl_seconds=60, filename="rose.png")
    files, links = await SharedFiles(media, FileSources(PUBLIC)).fetch([url], ALICE, 1000)
    assert links == []
    [file] = files
    assert (file.name, file.content_type, file.data) == ("rose.png", "image/png", b"a rose")
    gone = f"{PUBLIC}/media/{TOKEN}.png"
    assert await SharedFiles(media, FileSources(PUBLIC)).fetch([gone], ALICE, 1000) == ([], [gone])


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("allow_networks", ["nope"], "write a network like 10.1.2.0/24"),
        ("attachment_sources", ["ftp://files.example.net/"], "not an http(s) URL prefix"),
        ("attachment_sources", ["https://user@files.example.net/"], "not an http(s) URL prefix"),
        ("max_outgoing_attachments_bytes", 0, "greater than 0"),
    ],
)
def test_the_file_options_are_checked_by_name(field: str, value: object, words: str) -> None:
    section = {
        "jid": "mail.example.org",
        "secret": "s3cr3t-for-tests",
        "domain": "mail.example.org",
        "smarthost": {"host": "127.0.0.1"},
        field: value,
    }
    with pytest.raises(ValidationError) as error:
        EmailSettings.model_validate(section)
    assert field in str(error.value) and words in str(error.value)
