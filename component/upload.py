"""Files from other networks, put on the user's own server (XEP-0363 HTTP File Upload).

An MMS photo or a mail attachment is kept by the gateway and served under ``/media``. Where
the user's server offers an upload service that lets the component upload, the file goes
there instead: the user's client fetches it from its own server (which it trusts, and which
may be the only address it can reach), and the link lasts as long as the server keeps files,
not as long as the gateway's media retention. Anything that goes wrong here (no service, a
refusal, a file over the service's limit, a slow PUT) leaves the ``/media`` link in place: the
message never waits on this, nor is lost to it.

The service is found once per user domain and remembered for an hour (``xmpp.upload_service``
names it outright). The PUT goes to the URL the user's server handed out in its slot: the
server is one of ``allowed_domains``, which the admin chose, so its address is not checked
against the egress rules the way a user's URL is.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

import aiohttp
from slixmpp.exceptions import IqError, IqTimeout

from mappings.media import MediaFile, MediaFiles
from transports.events import InboundMessage
from transports.media import extension_for

if TYPE_CHECKING:
    from component.xmpp import GatewayComponent

log = logging.getLogger(__name__)

NS_UPLOAD = "urn:xmpp:http:upload:0"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
NS_DATA = "jabber:x:data"
#: XEP-0363 §5: the only slot headers a client may send on
SLOT_HEADERS = frozenset({"authorization", "cookie", "expires"})
#: how long what a domain's server offers is remembered (found, or found missing)
DISCOVERY_SECONDS = 3600.0
IQ_TIMEOUT = 5
#: a sender (Twilio: 15 s) waits while a file is shared, so a slow service is given up on
PUT_TIMEOUT = aiohttp.ClientTimeout(total=10)


@dataclasses.dataclass(frozen=True)
class UploadService:
    jid: str
    max_bytes: int | None


def describe(file: MediaFile) -> str:
    """How the file is named to the user: its name, or its type, and its size."""
    size = len(file.data)
    amount = f"{size / 1_000_000:.1f} MB" if size >= 1_000_000 else f"{max(1, size // 1000)} kB"
    return f"{file.filename or file.content_type.split(';', 1)[0]} ({amount})"


class Uploads:
    """The component's XEP-0363 client: which service a domain has, and the upload."""

    def __init__(
        self,
        component: GatewayComponent,
        media: MediaFiles,
        public_url: str,
        configured: str | None,
    ) -> None:
        self._component = component
        self._media = media
        self._media_prefix = f"{public_url.rstrip('/')}/media/"
        self._configured = configured
        self._known: dict[str, tuple[float, UploadService | None]] = {}

    async def share(self, event: InboundMessage) -> InboundMessage:
        """``event`` with each of its served files named, and moved to the user's server
        where it may go; the body's links follow."""
        urls = [url for url in event.oob_urls if url.startswith(self._media_prefix)]
        if not urls:
            return event
        body, shared, desc = event.body, list(event.oob_urls), event.oob_desc
        for url in urls:
            file = await self._media.get(_token(url[len(self._media_prefix) :]))
            if file is None:
                continue
            if url == event.oob_urls[0]:
                desc = describe(file)
            uploaded = await self._upload(event.user_jid, file)
            if uploaded:
                body = body.replace(url, uploaded)
                shared[shared.index(url)] = uploaded
        return dataclasses.replace(event, body=body, oob_urls=tuple(shared), oob_desc=desc)

    async def _upload(self, user_jid: str, file: MediaFile) -> str | None:
        service = await self._service(user_jid.split("@", 1)[-1].split("/", 1)[0])
        if service is None:
            return None
        if service.max_bytes is not None and len(file.data) > service.max_bytes:
            return None
        name = _upload_name(file)
        try:
            put, headers, get = await self._slot(service.jid, name, file)
            headers["Content-Type"] = file.content_type
            # a session per file: uploads are rare next to messages, and nothing stays open
            async with (
                aiohttp.ClientSession(timeout=PUT_TIMEOUT) as session,
                session.put(put, data=file.data, headers=headers) as response,
            ):
                if response.status not in (200, 201):
                    raise UploadRefused(f"the PUT was answered HTTP {response.status}")
        except (
            UploadRefused,
            IqError,
            IqTimeout,
            aiohttp.ClientError,
            OSError,
            ValueError,
        ) as error:
            # OSError covers TimeoutError; ValueError a URL or header aiohttp will not send
            log.warning(
                "%s: upload to %s failed, /media serves it: %s", user_jid, service.jid, _why(error)
            )
            return None
        return get

    async def _slot(
        self, service: str, name: str, file: MediaFile
    ) -> tuple[str, dict[str, str], str]:
        iq = self._component.make_iq_get(ito=service, ifrom=self._component.boundjid.bare)
        request = ET.SubElement(iq.xml, f"{{{NS_UPLOAD}}}request")
        request.set("filename", name)
        request.set("size", str(len(file.data)))
        request.set("content-type", file.content_type.split(";", 1)[0])
        answer: Any = await iq.send(timeout=IQ_TIMEOUT)
        slot = answer.xml.find(f"{{{NS_UPLOAD}}}slot")
        put = slot.find(f"{{{NS_UPLOAD}}}put") if slot is not None else None
        get = slot.find(f"{{{NS_UPLOAD}}}get") if slot is not None else None
        if (
            put is None
            or get is None
            or not _is_http(put.get("url"))
            or not _is_http(get.get("url"))
        ):
            raise UploadRefused("the service's slot has no http(s) put and get URLs")
        headers = {
            header.get("name", ""): (header.text or "").replace("\n", " ").strip()
            for header in put.findall(f"{{{NS_UPLOAD}}}header")
            if header.get("name", "").lower() in SLOT_HEADERS
        }
        return str(put.get("url")), headers, str(get.get("url"))

    async def _service(self, domain: str) -> UploadService | None:
        known = self._known.get(domain)
        if known is not None and known[0] > time.monotonic():
            return known[1]
        try:
            if self._configured:
                service = await self._info(self._configured)
            else:
                service = await self._discover(domain)
        except (IqError, IqTimeout) as error:
            log.info(
                "%s: no upload service found (%s); files are served from /media",
                domain,
                _why(error),
            )
            service = None
        self._known[domain] = (time.monotonic() + DISCOVERY_SECONDS, service)
        return service

    async def _discover(self, domain: str) -> UploadService | None:
        items = await self._query(domain, NS_DISCO_ITEMS)
        candidates = [domain] + [
            item.get("jid", "")
            for item in items.findall(f"{{{NS_DISCO_ITEMS}}}item")
            if item.get("jid")
        ]
        for jid in candidates[:20]:
            try:
                service = await self._info(jid)
            except (IqError, IqTimeout):
                continue
            if service is not None:
                return service
        return None

    async def _info(self, jid: str) -> UploadService | None:
        info = await self._query(jid, NS_DISCO_INFO)
        features = {feature.get("var") for feature in info.findall(f"{{{NS_DISCO_INFO}}}feature")}
        if NS_UPLOAD not in features:
            return None
        return UploadService(jid, _max_size(info))

    async def _query(self, jid: str, namespace: str) -> ET.Element:
        iq = self._component.make_iq_get(ito=jid, ifrom=self._component.boundjid.bare)
        ET.SubElement(iq.xml, f"{{{namespace}}}query")
        answer: Any = await iq.send(timeout=IQ_TIMEOUT)
        query = answer.xml.find(f"{{{namespace}}}query")
        return query if query is not None else ET.Element("query")


class UploadRefused(Exception):
    pass


def _max_size(info: ET.Element) -> int | None:
    """The service's ``max-file-size`` (XEP-0363 §4), from its XEP-0128 form."""
    for form in info.findall(f"{{{NS_DATA}}}x"):
        fields = {field.get("var"): field for field in form.findall(f"{{{NS_DATA}}}field")}
        if (fields.get("FORM_TYPE") is None) or fields["FORM_TYPE"].findtext(
            f"{{{NS_DATA}}}value"
        ) != NS_UPLOAD:
            continue
        value = fields.get("max-file-size")
        text = value.findtext(f"{{{NS_DATA}}}value") if value is not None else None
        if text and text.strip().isdigit():
            return int(text.strip())
    return None


def _token(name: str) -> str:
    """The token of a served file's name (``<token>.jpg``)."""
    return name.split("/", 1)[0].split(".", 1)[0]


def _upload_name(file: MediaFile) -> str:
    """A file name the service will put in its URL: the file's own, made plain."""
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in (file.filename or ""))[:80]
    return name.strip("._") or f"file{extension_for(file.content_type)}"


def _is_http(url: str | None) -> bool:
    return bool(url) and str(url).startswith(("https://", "http://"))


def _why(error: BaseException) -> str:
    if isinstance(error, IqError):
        return f"{error.condition}: {error.text}" if error.text else str(error.condition)
    return str(error) or type(error).__name__
