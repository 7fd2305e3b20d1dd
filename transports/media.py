"""Served media, shared by the transports: ``{public_url}/media/<token>``.

Foreign attachments often cannot be shown to XMPP users as they are: Twilio's MMS URLs need
the account's credentials, and an email attachment has no URL at all. The gateway keeps a copy
(size-capped, expiring) and serves it under an unguessable token, and the message carries that
URL in its body and as OOB (XEP-0066) so that clients show the file.

API (all a transport needs)::

    media = served_media(self.host)          # in start(); GET /media/{name} is added once per
                                             # store, however many transports ask
    url = await media.put(data, "image/png", owner="email", ttl_seconds=86400,
                          filename="cat.png", source_key="email:<msg-id>:1")
    url = await media.fetch(url, owner="sms", max_bytes=5_000_000, ttl_seconds=86400,
                            headers={"Authorization": "Basic …"}, source_key="sms:MM…:0")

``put`` raises :class:`MediaTooLarge` past ``max_bytes`` (when given); ``fetch`` raises
:class:`MediaTooLarge` or :class:`MediaFetchFailed`; both are :class:`MediaError` with a
``reason`` in words for the user. ``source_key`` makes a retry (the same attachment of the same
message) return the URL already served instead of storing a second copy.

Where ``fetch`` may go: a media URL comes from outside (an MMS callback names it), so every
connection it makes is checked by :mod:`transports.egress` (public addresses only, unless
``allow_networks``), redirects included, each hop on its own. The one exception is
``trusted_origin``: the provider's API that the admin configured (``api_base_url``), which is
reached wherever it is, because the admin chose it; a redirect away from it is checked again.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import re
import secrets
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING
from urllib.parse import quote

import aiohttp
from aiohttp import web
from yarl import URL

from mappings.media import MediaFiles
from transports.egress import REFUSED_TEXT, Network, guarded_connector, is_refusal

if TYPE_CHECKING:
    from mappings.store import Store
    from transports.base import TransportHost

log = logging.getLogger(__name__)

#: The served path; the name is the token plus a file extension, so clients guess the type.
ROUTE = "/media/{name}"
#: A file with a name of its own is served under it too, so that the link names the file.
NAMED_ROUTE = "/media/{name}/{filename}"
_NAME = re.compile(r"^([A-Za-z0-9_-]{20,100})(\.[A-Za-z0-9]{1,8})?$")
_SERVICES: weakref.WeakKeyDictionary[Store, ServedMedia] = weakref.WeakKeyDictionary()
#: The most redirects a fetch follows (each hop is checked again).
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class MediaError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MediaTooLarge(MediaError):
    """The file is over the transport's size cap."""


class MediaFetchFailed(MediaError):
    """The file could not be downloaded."""


def served_media(host: TransportHost) -> ServedMedia:
    """The media service of ``host``'s store, adding the HTTP route the first time."""
    store = host.store
    service = _SERVICES.get(store)
    if service is None:
        service = ServedMedia(store, host.public_url)
        host.add_route("GET", ROUTE, service.handle)
        host.add_route("GET", NAMED_ROUTE, service.handle)
        _SERVICES[store] = service
    return service


class ServedMedia:
    def __init__(self, store: Store, public_url: str) -> None:
        self.files = MediaFiles(store)
        self.public_url = public_url.rstrip("/")
        self._migrated = asyncio.Lock()
        self._ready = False

    async def put(
        self,
        data: bytes,
        content_type: str,
        *,
        owner: str,
        ttl_seconds: float,
        filename: str | None = None,
        source_key: str | None = None,
        max_bytes: int | None = None,
    ) -> str:
        """Keep ``data`` and return its public URL."""
        if max_bytes is not None and len(data) > max_bytes:
            raise MediaTooLarge(_too_large(len(data), max_bytes))
        await self._ensure_schema()
        await self.files.purge_expired()
        content_type = _clean_type(content_type)
        token = await self.files.add(
            secrets.token_urlsafe(32),
            owner=owner,
            content_type=content_type,
            data=data,
            expires_at=time.time() + ttl_seconds,
            filename=filename,
            source_key=source_key,
        )
        return self.url(token, content_type, filename)

    async def fetch(
        self,
        url: str,
        *,
        owner: str,
        max_bytes: int,
        ttl_seconds: float,
        headers: Mapping[str, str] | None = None,
        source_key: str | None = None,
        timeout: float = 30.0,
        trusted_origin: str | None = None,
        allow_networks: Sequence[Network] = (),
    ) -> str:
        """Download ``url`` (at most ``max_bytes``), keep it, and return its public URL.

        ``headers`` (e.g. credentials) are not sent on when a redirect leaves the URL's origin.
        Connections go to public addresses or ``allow_networks`` only, except to
        ``trusted_origin`` (``scheme://host[:port]``, the admin's provider).
        """
        if source_key is not None:
            await self._ensure_schema()
            known = await self.files.token_for(source_key)
            if known is not None:
                file = await self.files.get(known)
                if file is not None:
                    return self.url(known, file.content_type)
        limit = aiohttp.ClientTimeout(total=timeout)
        trusted = _origin(trusted_origin)
        try:
            async with (
                aiohttp.ClientSession(
                    timeout=limit, connector=guarded_connector(allow_networks)
                ) as guarded,
                aiohttp.ClientSession(timeout=limit) as trusting,
            ):

                def session_for(hop: URL) -> aiohttp.ClientSession:
                    return trusting if _origin(hop) == trusted else guarded

                data, content_type = await _download(url, max_bytes, headers, session_for)
        except aiohttp.ClientError as exc:
            if is_refusal(exc):
                raise MediaFetchFailed(REFUSED_TEXT) from None
            raise MediaFetchFailed(f"it could not be downloaded ({type(exc).__name__})") from None
        except (TimeoutError, OSError, ValueError) as exc:
            raise MediaFetchFailed(f"it could not be downloaded ({type(exc).__name__})") from None
        return await self.put(
            data, content_type, owner=owner, ttl_seconds=ttl_seconds, source_key=source_key
        )

    def url(self, token: str, content_type: str, filename: str | None = None) -> str:
        """The file's public URL: ``/media/<token>/<its name>``, or ``/media/<token>.<ext>``."""
        name = quote(_plain_name(filename or ""), safe="")
        if name:
            return f"{self.public_url}/media/{token}/{name}"
        return f"{self.public_url}/media/{token}{extension_for(content_type.split(';', 1)[0])}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """GET /media/{name}: the file, or 404 for an unknown or expired token."""
        match = _NAME.match(request.match_info.get("name", ""))
        if match is None:
            raise web.HTTPNotFound(text="no such file")
        await self._ensure_schema()
        file = await self.files.get(match.group(1))
        if file is None:
            raise web.HTTPNotFound(text="no such file, or it has expired")
        headers = {
            "Cache-Control": f"private, max-age={max(0, int(file.expires_at - time.time()))}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        }
        if file.filename:
            headers["Content-Disposition"] = f'inline; filename="{_plain_name(file.filename)}"'
        headers["Content-Type"] = file.content_type  # with its charset, for text
        return web.Response(body=file.data, headers=headers)

    async def _ensure_schema(self) -> None:
        async with self._migrated:
            if not self._ready:
                await self.files.migrate()
                self._ready = True


async def _download(
    url: str,
    max_bytes: int,
    headers: Mapping[str, str] | None,
    session_for: Callable[[URL], aiohttp.ClientSession],
) -> tuple[bytes, str]:
    """The body and type at ``url``, following redirects one hop at a time.

    Each hop goes through the session ``session_for`` picks for it, so each is checked on its
    own; ``headers`` go only to the first URL's origin.
    """
    current = URL(url)
    start = _origin(current)
    for _hop in range(MAX_REDIRECTS + 1):
        hop_headers = headers if _origin(current) == start else None
        async with session_for(current).get(
            current, headers=hop_headers, allow_redirects=False
        ) as response:
            location = response.headers.get("Location")
            if response.status in _REDIRECTS and location:
                current = current.join(URL(location))
                if current.scheme not in ("http", "https"):
                    raise MediaFetchFailed("it redirected to something that is not http(s)")
                continue
            if response.status != 200:
                raise MediaFetchFailed(f"the server answered HTTP {response.status}")
            if response.content_length is not None and response.content_length > max_bytes:
                raise MediaTooLarge(_too_large(response.content_length, max_bytes))
            data = await response.content.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise MediaTooLarge(_too_large(None, max_bytes))
            return data, response.headers.get("Content-Type", "application/octet-stream")
    raise MediaFetchFailed(f"it redirected more than {MAX_REDIRECTS} times")


def _origin(url: URL | str | None) -> tuple[str, str, int | None] | None:
    """``(scheme, host, port)``, the default port filled in; ``None`` for no URL."""
    if url is None:
        return None
    parsed = URL(url)
    return (parsed.scheme, (parsed.host or "").lower(), parsed.port)


def _clean_type(content_type: str) -> str:
    """The media type alone, but for text, whose charset a browser must not have to guess."""
    main, _, parameters = content_type.partition(";")
    main = main.strip().lower()
    if not re.fullmatch(r"[a-z0-9.+-]+/[a-z0-9.+-]+", main):
        return "application/octet-stream"
    charset = re.search(r'charset\s*=\s*"?([A-Za-z0-9._:-]{1,40})"?', parameters, re.IGNORECASE)
    if main.startswith("text/") and charset:
        return f"{main}; charset={charset.group(1).lower()}"
    return main


def _plain_name(filename: str) -> str:
    """A file's name with what a URL path or a header could misread replaced."""
    return re.sub(r"[^A-Za-z0-9._ -]", "_", filename)[:100].strip(" .")


def extension_for(content_type: str) -> str:
    """The usual file extension of a media type (``.jpg``), or nothing."""
    guessed = mimetypes.guess_extension(content_type, strict=False) or ""
    return guessed if re.fullmatch(r"\.[A-Za-z0-9]{1,8}", guessed) else ""


def _too_large(size: int | None, max_bytes: int) -> str:
    if size is None:
        return f"it is over the {_size(max_bytes)} limit"
    return f"it is {_size(size)}, over the {_size(max_bytes)} limit"


def _size(count: int) -> str:
    if count >= 1_000_000:
        return f"{count / 1_000_000:.1f} MB"
    if count >= 1000:
        return f"{count / 1000:.1f} kB"
    return f"{count} bytes"
