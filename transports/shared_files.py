"""Files a user shares by link (XEP-0066 OOB; the URL their client's XEP-0363 upload gave),
fetched so that a network without links (email) can carry the file itself.

A URL in a user's message is the user's to choose, so fetching it would let any user make the
gateway request any address: its own loopback services, the cloud metadata address, another
site. The gateway therefore fetches only from:

- its own ``{public_url}/media/``: read straight from the store, no request made;
- the user's own upload service: a URL whose host is the user's JID domain or a subdomain of
  it (``upload.example.org`` for ``alice@example.org``), or that starts with one of the
  admin's ``sources`` (URL prefixes, for a service on another name).

Every connection goes through :mod:`transports.egress` (public addresses, or the admin's
``allow_networks``), redirects are not followed, and the bytes read stop at the size budget.
Any other URL, and any file that cannot be had within those limits, stays a link in the text.
"""

from __future__ import annotations

import logging
import mimetypes
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

import aiohttp
from yarl import URL

from transports.egress import Network, guarded_connector

if TYPE_CHECKING:
    from transports.media import ServedMedia

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"^([A-Za-z0-9_-]{20,100})(\.[A-Za-z0-9]{1,8})?$")
_TYPE = re.compile(r"^[a-z0-9.+-]+/[a-z0-9.+-]+$")
DEFAULT_NAME = "file"


@dataclass(frozen=True)
class SharedFile:
    url: str
    name: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class FileSources:
    """Where shared files may be fetched from, besides the user's own domain."""

    public_url: str
    #: URL prefixes of upload services the admin trusts (``https://files.example.net/``)
    sources: tuple[str, ...] = ()
    allow_networks: tuple[Network, ...] = ()


def media_token(url: str, public_url: str) -> str | None:
    """The token of a ``{public_url}/media/<token>[.ext][/<name>]`` URL, else None."""
    prefix = public_url.rstrip("/") + "/media/"
    if not url.startswith(prefix):
        return None
    first = url[len(prefix) :].split("/", 1)[0]
    match = _TOKEN.match(first)
    return match.group(1) if match else None


def may_fetch(url: str, user_jid: str, sources: FileSources) -> bool:
    """Whether ``url`` names a file the gateway may fetch for ``user_jid`` (module doc)."""
    if media_token(url, sources.public_url) is not None:
        return True
    try:
        parsed = URL(url)
    except ValueError:
        return False
    if parsed.scheme not in ("http", "https") or not parsed.host or parsed.user is not None:
        return False
    host = parsed.host.lower().rstrip(".")
    domain = user_jid.rpartition("@")[2].split("/", 1)[0].lower()
    if domain and (host == domain or host.endswith("." + domain)):
        return True
    return any(_under(parsed, source) for source in sources.sources)


def _under(url: URL, source: str) -> bool:
    """``url`` is at or below the prefix ``source``: same origin, path under its path."""
    try:
        prefix = URL(source)
    except ValueError:
        return False
    same_origin = (url.scheme, (url.host or "").lower(), url.port) == (
        prefix.scheme,
        (prefix.host or "").lower(),
        prefix.port,
    )
    base = prefix.path if prefix.path.endswith("/") else prefix.path + "/"
    return same_origin and (url.path == prefix.path or url.path.startswith(base))


def name_of(url: str) -> str:
    """The file's name as its URL's last path segment says it (upload services keep it)."""
    try:
        segment = unquote(URL(url).path.rsplit("/", 1)[-1])
    except ValueError:
        segment = ""
    cleaned = re.sub(r"[^\w.() -]", "_", segment).strip(" .")[:100]
    return cleaned or DEFAULT_NAME


def type_of(header: str | None, name: str) -> str:
    """A media type the mail can carry: the server's, else guessed from the name."""
    main = (header or "").split(";", 1)[0].strip().lower()
    if _TYPE.match(main) and main != "application/octet-stream":
        return main
    guessed = mimetypes.guess_type(name, strict=False)[0]
    return guessed or "application/octet-stream"


class SharedFiles:
    """Fetches the files of one message within a byte budget."""

    def __init__(self, media: ServedMedia, sources: FileSources, timeout: float = 30.0) -> None:
        self.media = media
        self.sources = sources
        self.timeout = timeout

    async def fetch(
        self, urls: Sequence[str], user_jid: str, budget: int
    ) -> tuple[list[SharedFile], list[str]]:
        """The files of ``urls`` that could be had (at most ``budget`` bytes in all), and
        the URLs that stay links."""
        files: list[SharedFile] = []
        links: list[str] = []
        for url in urls:
            file = None
            if may_fetch(url, user_jid, self.sources):
                left = budget - sum(len(f.data) for f in files)
                file = await self._one(url, left)
            if file is None:
                links.append(url)
            else:
                files.append(file)
        return files, links

    async def _one(self, url: str, max_bytes: int) -> SharedFile | None:
        token = media_token(url, self.sources.public_url)
        if token is not None:
            await self.media.files.migrate()
            stored = await self.media.files.get(token)
            if stored is None or len(stored.data) > max_bytes:
                return None
            name = stored.filename or name_of(url)
            return SharedFile(url, name, type_of(stored.content_type, name), stored.data)
        try:
            return await self._download(url, max_bytes)
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as error:
            # the reason stays in the log: a user learns nothing of the gateway's network
            log.info("a shared file was not fetched: %s", type(error).__name__)
            return None

    async def _download(self, url: str, max_bytes: int) -> SharedFile | None:
        limit = aiohttp.ClientTimeout(total=self.timeout)
        connector = guarded_connector(self.sources.allow_networks)
        async with (
            aiohttp.ClientSession(timeout=limit, connector=connector) as session,
            session.get(url, allow_redirects=False) as response,
        ):
            if response.status != 200:
                return None
            if response.content_length is not None and response.content_length > max_bytes:
                return None
            data = await response.content.read(max_bytes + 1)
            if len(data) > max_bytes:
                return None
            name = name_of(url)
            return SharedFile(url, name, type_of(response.headers.get("Content-Type"), name), data)
