"""A local stand-in for Twilio's REST API and webhooks, for tests (Twilio is out of reach).

It speaks the shapes the real ``twilio`` library sends and expects:
- ``POST /2010-04-01/Accounts/{sid}/Messages.json`` (form fields To, From, Body, MediaUrl,
  StatusCallback; HTTP basic auth with the account SID and auth token) answers 201 with a
  Message resource, or Twilio's error JSON ``{"code", "message", "more_info", "status"}``;
- ``GET /2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json[?PhoneNumber=]`` answers a page;
- ``GET /2010-04-01/Accounts/{sid}/Messages/{MM}/Media/{ME}`` serves MMS media, with auth.

Tests script it: ``fail_next(n, status, code, message)`` makes the next n creates fail,
``disconnect_next(n)`` drops the next n connections without an answer, ``creates`` records every
create attempt and ``messages`` every message accepted. ``post_inbound`` and ``post_status``
post webhooks signed with ``X-Twilio-Signature`` exactly as Twilio does (HMAC-SHA1 of the URL
plus the sorted form fields, keyed by the auth token).
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

from .ports import free_port

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "fake-twilio-auth-token-0123456789"
API_VERSION = "2010-04-01"
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_SHORT_CODE = re.compile(r"^[0-9]{3,6}$")


@dataclass(frozen=True)
class Failure:
    status: int
    code: int
    message: str


@dataclass
class CreateAttempt:
    """One POST to Messages.json, as received (whether it succeeded or not)."""

    fields: dict[str, list[str]]
    status: int
    sid: str | None = None

    def first(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None


@dataclass
class FakeMessage:
    sid: str
    to: str
    from_: str
    body: str
    media_urls: list[str]
    status_callback: str | None
    status: str = "queued"


@dataclass
class FakeTwilio:
    """The server; ``async with FakeTwilio() as twilio:`` starts it on a free loopback port."""

    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    owned_numbers: list[str] = field(default_factory=lambda: ["+15550001111", "+15550002222"])
    port: int = field(default_factory=free_port)
    creates: list[CreateAttempt] = field(default_factory=list)
    messages: list[FakeMessage] = field(default_factory=list)
    _failures: list[Failure] = field(default_factory=list)
    _disconnects: int = 0
    _media: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    _runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        prefix = f"/{API_VERSION}/Accounts/{{account}}"
        app.router.add_post(f"{prefix}/Messages.json", self._create_message)
        app.router.add_get(f"{prefix}/IncomingPhoneNumbers.json", self._list_numbers)
        app.router.add_get(f"{prefix}/Messages/{{message}}/Media/{{media}}", self._get_media)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTwilio:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- scripting ----------------------------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        status: int = 500,
        code: int = 20500,
        message: str = "An internal server error has occurred",
    ) -> None:
        """Make the next ``count`` creates answer ``status`` with Twilio error ``code``."""
        self._failures.extend(Failure(status, code, message) for _ in range(count))

    def clear_failures(self) -> None:
        """Forget scripted failures not used yet: Twilio is healthy again."""
        self._failures.clear()
        self._disconnects = 0

    def disconnect_next(self, count: int = 1) -> None:
        """Drop the next ``count`` creates' connections without answering (a network error)."""
        self._disconnects += count

    def add_media(self, content_type: str, data: bytes) -> str:
        """Store an MMS attachment; return its Twilio-style URL (fetching it needs auth)."""
        media_sid = _sid("ME")
        self._media[media_sid] = (content_type, data)
        return (
            f"{self.base_url}/{API_VERSION}/Accounts/{self.account_sid}/Messages/"
            f"{_sid('MM')}/Media/{media_sid}"
        )

    async def wait_for_messages(self, count: int, timeout: float = 10.0) -> list[FakeMessage]:
        """Wait until at least ``count`` messages were accepted."""
        async with asyncio.timeout(timeout):
            while len(self.messages) < count:
                await asyncio.sleep(0.02)
        return self.messages

    # -- webhooks Twilio posts ----------------------------------------------------------------

    def sign(self, url: str, fields: dict[str, str]) -> str:
        return str(RequestValidator(self.auth_token).compute_signature(url, fields))

    async def post_signed(
        self, url: str, fields: dict[str, str], *, signature: str | None = None
    ) -> tuple[int, str]:
        """POST form ``fields`` to ``url``, signed unless ``signature`` is given (even "")."""
        sig = self.sign(url, fields) if signature is None else signature
        headers = {"X-Twilio-Signature": sig} if sig else {}
        headers["User-Agent"] = "TwilioProxy/1.1"
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=fields, headers=headers) as response,
        ):
            return response.status, await response.text()

    def inbound_fields(
        self,
        from_: str,
        to: str,
        body: str,
        *,
        media: Sequence[tuple[str, bytes]] = (),
        message_sid: str | None = None,
    ) -> dict[str, str]:
        """The form fields of an inbound SMS/MMS webhook, as Twilio sends them."""
        sid = message_sid or _sid("MM" if media else "SM")
        fields = {
            "ToCountry": "US",
            "ToState": "CA",
            "SmsMessageSid": sid,
            "ToCity": "",
            "FromZip": "",
            "SmsSid": sid,
            "FromState": "CA",
            "SmsStatus": "received",
            "FromCity": "",
            "Body": body,
            "FromCountry": "US",
            "To": to,
            "ToZip": "",
            "NumSegments": "1",
            "MessageSid": sid,
            "AccountSid": self.account_sid,
            "From": from_,
            "ApiVersion": API_VERSION,
            "NumMedia": str(len(media)),
        }
        for index, (content_type, data) in enumerate(media):
            fields[f"MediaUrl{index}"] = self.add_media(content_type, data)
            fields[f"MediaContentType{index}"] = content_type
        return fields

    async def post_inbound(
        self,
        url: str,
        from_: str,
        to: str,
        body: str,
        *,
        media: Sequence[tuple[str, bytes]] = (),
        message_sid: str | None = None,
        signature: str | None = None,
    ) -> tuple[int, str]:
        fields = self.inbound_fields(from_, to, body, media=media, message_sid=message_sid)
        return await self.post_signed(url, fields, signature=signature)

    async def post_status(
        self, sid: str, status: str, *, error_code: int | None = None, url: str | None = None
    ) -> tuple[int, str]:
        """Post a status callback for an accepted message to its StatusCallback URL."""
        message = next(m for m in self.messages if m.sid == sid)
        target = url or message.status_callback
        assert target, f"{sid} has no StatusCallback"
        message.status = status
        fields = {
            "SmsSid": sid,
            "SmsStatus": status,
            "MessageStatus": status,
            "To": message.to,
            "MessageSid": sid,
            "AccountSid": self.account_sid,
            "From": message.from_,
            "ApiVersion": API_VERSION,
        }
        if error_code is not None:
            fields["ErrorCode"] = str(error_code)
        return await self.post_signed(target, fields)

    # -- REST handlers ------------------------------------------------------------------------

    def _authorised(self, request: web.Request) -> bool:
        expected = (
            "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        )
        return request.match_info["account"] == self.account_sid and secrets.compare_digest(
            request.headers.get("Authorization", ""), expected
        )

    async def _create_message(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        fields: dict[str, list[str]] = {}
        for name, value in form.items():
            fields.setdefault(name, []).append(str(value))
        if self._disconnects:
            self._disconnects -= 1
            self.creates.append(CreateAttempt(fields, 0))
            assert request.transport is not None
            request.transport.abort()
            raise ConnectionResetError("dropped by the test")
        attempt = CreateAttempt(fields, 201)
        self.creates.append(attempt)
        error = self._check_create(request, attempt)
        if error is not None:
            attempt.status = error.status
            return _error(error)
        message = FakeMessage(
            sid=_sid("MM" if "MediaUrl" in fields else "SM"),
            to=attempt.first("To") or "",
            from_=attempt.first("From") or "",
            body=attempt.first("Body") or "",
            media_urls=fields.get("MediaUrl", []),
            status_callback=attempt.first("StatusCallback"),
        )
        attempt.sid = message.sid
        self.messages.append(message)
        return web.json_response(self._message_resource(message), status=201)

    def _check_create(self, request: web.Request, attempt: CreateAttempt) -> Failure | None:
        if not self._authorised(request):
            return Failure(401, 20003, "Authenticate")
        if self._failures:
            return self._failures.pop(0)
        to, from_ = attempt.first("To") or "", attempt.first("From") or ""
        if not to:
            return Failure(400, 21604, "A 'To' phone number is required.")
        if not (_E164.match(to) or _SHORT_CODE.match(to)):
            return Failure(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if from_ not in self.owned_numbers:
            return Failure(
                400,
                21606,
                f"The From phone number {from_} is not a valid, SMS-capable inbound phone "
                "number or short code for your account.",
            )
        if not attempt.first("Body") and "MediaUrl" not in attempt.fields:
            return Failure(400, 21602, "Message body is required.")
        if len(attempt.fields.get("MediaUrl", [])) > 10:
            return Failure(400, 21623, "Number of media files exceeds allowed limit.")
        return None

    def _message_resource(self, message: FakeMessage) -> dict[str, object]:
        now = formatdate(usegmt=True)
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": message.body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": message.from_,
            "messaging_service_sid": None,
            "num_media": str(len(message.media_urls)),
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": message.sid,
            "status": message.status,
            "subresource_uris": {},
            "to": message.to,
            "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{message.sid}.json",
        }

    async def _list_numbers(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return _error(Failure(401, 20003, "Authenticate"))
        wanted = request.query.get("PhoneNumber")
        numbers = [n for n in self.owned_numbers if wanted is None or n == wanted]
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/IncomingPhoneNumbers.json"
        return web.json_response(
            {
                "incoming_phone_numbers": [
                    {
                        "account_sid": self.account_sid,
                        "phone_number": number,
                        "friendly_name": number,
                        "sid": "PN" + number.lstrip("+").rjust(32, "0"),
                        "capabilities": {"sms": True, "mms": True, "voice": True},
                        "sms_url": "",
                        "status": "in-use",
                    }
                    for number in numbers
                ],
                "end": max(len(numbers) - 1, 0),
                "first_page_uri": uri,
                "next_page_uri": None,
                "page": 0,
                "page_size": 50,
                "previous_page_uri": None,
                "start": 0,
                "uri": uri,
            }
        )

    async def _get_media(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return _error(Failure(401, 20003, "Authenticate"))
        found = self._media.get(request.match_info["media"])
        if found is None:
            return _error(Failure(404, 20404, "The requested resource was not found"))
        content_type, data = found
        return web.Response(body=data, content_type=content_type)


def _error(failure: Failure) -> web.Response:
    return web.json_response(
        {
            "code": failure.code,
            "message": failure.message,
            "more_info": f"https://www.twilio.com/docs/errors/{failure.code}",
            "status": failure.status,
        },
        status=failure.status,
    )


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def sms_section(twilio: FakeTwilio, jid: str, secret: str, **extra: Any) -> dict[str, Any]:
    """The ``transports.sms`` section of a gateway whose Twilio is ``twilio``; ``extra`` adds
    to it or overrides it."""
    return {
        "jid": jid,
        "secret": secret,
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "api_base_url": twilio.base_url,
        "default_region": "US",
        **extra,
    }
