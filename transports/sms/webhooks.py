"""Twilio's calls to the gateway: inbound texts and delivery status callbacks.

Both are accepted only with a valid ``X-Twilio-Signature`` (403 otherwise, and nothing is
stored). The signature covers the form fields, so the body must be read to check it: it is read
only up to :data:`MAX_BODY_BYTES` (413 past it, decided from ``Content-Length`` before reading,
or while reading a chunked body), and not at all without the header.

An inbound text is answered 200 only once ``host.deliver(..., durable=True)`` has stored it,
so a gateway crash before that makes Twilio's retry, deduplicated by MessageSid, the one that
counts.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from mappings.message_ids import MessageIdMapping
from mappings.sms_messages import FINAL_STATUSES
from transports.base import AddressError
from transports.events import DeliveryReport, InboundMessage, new_stanza_id
from transports.http_body import read_capped
from transports.media import MediaError
from transports.sms.numbers import normalise_number
from transports.sms.signatures import signature_valid, signed_url
from transports.sms.twilio_errors import describe_error

if TYPE_CHECKING:
    from transports.sms.transport import SmsTransport

log = logging.getLogger(__name__)

INBOUND_PATH = "/sms/inbound"
STATUS_PATH = "/sms/status"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
#: Twilio sends at most 10 attachments; a larger NumMedia is not from Twilio.
MAX_MEDIA = 10
#: The largest callback body read. Twilio's are small form posts: a text of at most 1600
#: characters is at most 14,400 bytes once UTF-8 and percent-encoded (three bytes per CJK
#: character, each written %XX), plus ten media URLs and types, the location fields, and with
#: Add-ons enabled an ``AddOns`` JSON field; 64 KiB holds all that with room to spare.
MAX_BODY_BYTES = 64 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"

_DELIVERED = frozenset({"delivered", "read"})


#: Why Twilio's callbacks (or a stranger's posts to their URLs) were refused, on /metrics
#: (``portway_inbound_rejected_total{transport="sms"}``)
REFUSALS = ("bad-request", "unknown-number", "bad-signature", "unsupported-type", "too-large")


class TwilioWebhooks:
    def __init__(self, transport: SmsTransport) -> None:
        self.transport = transport

    async def inbound(self, request: web.Request) -> web.StreamResponse:
        """POST /sms/inbound: a text (or MMS) from a phone to one of the account's numbers."""
        form = await self._signed_form(request)
        settings = self.transport.settings
        sid = form.get("MessageSid") or form.get("SmsSid") or ""
        if form.get("AccountSid") != settings.account_sid or not sid:
            self._count_rejected("bad-request")
            raise web.HTTPBadRequest(text="not a message for this account")
        try:
            sender = normalise_number(form.get("From", ""), settings.default_region)
            to = normalise_number(form.get("To", ""), settings.default_region)
        except AddressError as exc:
            self._count_rejected("bad-request")
            raise web.HTTPBadRequest(text=exc.text) from None
        store = self.transport.host.store
        registration = await store.registrations.by_address(self.transport.name, to)
        if registration is None:
            self._count_rejected("unknown-number")
            log.warning("inbound text %s to %s, a number bound to nobody: dropped", sid, to)
            return _twiml()
        media_urls, notes = await self._media(form, sid)
        said = form.get("Body", "")
        text = "\n".join(part for part in (said, *media_urls, *notes) if part)
        tapback = None
        if not media_urls and not notes:
            tapback = await self.transport.refs.tapback(registration.user_jid, sender, said)
        event = InboundMessage(
            user_jid=registration.user_jid,
            contact=sender,
            body="" if tapback else text,
            remote_id=sid,
            # chosen here and remembered, so a reaction or reply of the user's finds this text
            xmpp_id=new_stanza_id(),
            oob_urls=tuple(media_urls),
            nick=self.transport.display_name(sender),
            refers=tapback,
        )
        fresh = await self.transport.host.deliver(event, dedup_key=f"sms:{sid}", durable=True)
        if fresh:
            await store.message_ids.record(
                MessageIdMapping(
                    self.transport.name,
                    registration.user_jid,
                    sender,
                    "in",
                    event.xmpp_id,
                    sid,
                    body=said,
                )
            )
        else:
            log.info("inbound text %s was already delivered: a Twilio retry", sid)
        return _twiml()

    async def status(self, request: web.Request) -> web.StreamResponse:
        """POST /sms/status: what became of a text the gateway sent."""
        form = await self._signed_form(request)
        sid = form.get("MessageSid") or form.get("SmsSid") or ""
        status = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
        if not sid or not status:
            self._count_rejected("bad-request")
            raise web.HTTPBadRequest(text="MessageSid and MessageStatus are required")
        error_code = form.get("ErrorCode") or None
        sent = await self.transport.sent.by_sid(sid)
        if sent is None:
            log.warning("status %s for %s, a message this gateway did not send", status, sid)
            return _twiml()
        if not await self.transport.sent.update_status(sid, status, error_code):
            return _twiml()  # already final: a repeated or late callback
        if status not in FINAL_STATUSES or not sent.xmpp_id:
            return _twiml()
        delivered = status in _DELIVERED
        if delivered and not sent.receipt_requested:
            return _twiml()
        reason = "" if delivered else _failure_words(status, error_code)
        report = DeliveryReport(
            user_jid=sent.from_jid,
            contact=sent.contact,
            xmpp_id=sent.xmpp_id,
            delivered=delivered,
            reason=reason,
        )
        await self.transport.host.deliver(report, dedup_key=f"sms-status:{sid}", durable=True)
        return _twiml()

    async def _signed_form(self, request: web.Request) -> MultiDictProxy[str]:
        """The form fields, if Twilio signed them; 403 (and a log line) if not.

        Without a signature there is nothing to check, so the body is not read at all.
        """
        signature = request.headers.get("X-Twilio-Signature")
        if not signature:
            self._count_rejected("bad-signature")
            raise web.HTTPForbidden(text="X-Twilio-Signature is required")
        if request.content_type != FORM_TYPE:
            self._count_rejected("unsupported-type")
            raise web.HTTPUnsupportedMediaType(text=f"Twilio posts {FORM_TYPE}")
        body = await read_capped(request, MAX_BODY_BYTES)
        if body is None:
            self._count_rejected("too-large")
            raise web.HTTPRequestEntityTooLarge(MAX_BODY_BYTES, request.content_length or 0)
        fields = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        target = request.rel_url
        url = signed_url(self.transport.host.public_url, target.raw_path, target.raw_query_string)
        token = self.transport.settings.auth_token.get_secret_value()
        if not signature_valid(token, url, fields, signature):
            self._count_rejected("bad-signature")
            log.warning(
                "refused %s from %s: bad X-Twilio-Signature for %s (is http.public_url what "
                "Twilio calls?)",
                request.path,
                request.remote,
                url,
            )
            raise web.HTTPForbidden(text="invalid X-Twilio-Signature")
        return MultiDictProxy(MultiDict(fields))

    def _count_rejected(self, reason: str) -> None:
        """``portway_inbound_rejected_total{transport="sms",reason=…}`` on /metrics."""
        self.transport.host.count_rejected(reason)

    async def _media(self, form: MultiDictProxy[str], sid: str) -> tuple[list[str], list[str]]:
        """Fetch each MMS attachment (with the account's credentials) and serve it back."""
        try:
            count = min(int(form.get("NumMedia", "0") or "0"), MAX_MEDIA)
        except ValueError:
            count = 0
        settings = self.transport.settings
        twilio = self.transport.twilio
        urls: list[str] = []
        notes: list[str] = []
        for index in range(count):
            source = form.get(f"MediaUrl{index}", "")
            if not source.startswith(("https://", "http://")):
                continue
            try:
                urls.append(
                    await self.transport.media.fetch(
                        source,
                        owner=self.transport.name,
                        max_bytes=settings.media_max_bytes,
                        ttl_seconds=settings.media_ttl_days * 86400,
                        headers=twilio.credentials if twilio.is_api_url(source) else None,
                        trusted_origin=settings.api_base_url,
                        source_key=f"sms:{sid}:{index}",
                    )
                )
            except MediaError as exc:
                log.warning("attachment %d of %s not fetched: %s", index, sid, exc.reason)
                notes.append(f"[attachment {index + 1} not shown: {exc.reason}]")
        return urls, notes


def _failure_words(status: str, error_code: str | None) -> str:
    what = "could not be delivered" if status == "undelivered" else "failed"
    if not error_code:
        return f"The text {what}."
    return f"The text {what}: {describe_error(error_code)}."


def _twiml() -> web.Response:
    return web.Response(text=EMPTY_TWIML, content_type="text/xml")
