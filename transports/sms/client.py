"""The REST side of Twilio: sending a message and asking which numbers the account owns.

The real ``twilio`` library builds the requests (so they have exactly Twilio's shapes); its
async HTTP client carries them. ``api_base_url`` redirects every request the library addresses
to ``https://api.twilio.com`` (or a regional ``api.*.twilio.com``), which is how SignalWire-style
providers and the tests' local server are reached.

The admin chose ``api_base_url``, so it is reached wherever it is (loopback included), and it
is the only place the account's credentials go: a URL the library takes from an answer (a next
page) that points anywhere else is refused, not followed.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from transports.egress import RefusedDestination

if TYPE_CHECKING:
    from twilio.http.async_http_client import AsyncTwilioHttpClient
    from twilio.http.response import Response
    from twilio.rest import Client

log = logging.getLogger(__name__)
# The library logs every request's headers at INFO: too chatty for a gateway's log.
_HTTP_LOG = logging.getLogger("portway.sms.twilio_http")
_HTTP_LOG.setLevel(logging.WARNING)


class TwilioError(Exception):
    """Twilio answered with an error (``status`` is the HTTP status, ``code`` Twilio's)."""

    def __init__(self, status: int, code: int | None, message: str) -> None:
        super().__init__(f"HTTP {status}, Twilio error {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    @property
    def temporary(self) -> bool:
        """5xx and 429 may succeed later; other 4xx will not."""
        return self.status >= 500 or self.status == 429


class TwilioUnreachable(Exception):
    """No answer from Twilio (connection refused, reset, timeout): try again later."""


@dataclass(frozen=True)
class SentMessage:
    sid: str
    status: str


def basic_auth(user: str, password: str) -> dict[str, str]:
    pair = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


class ApiBase:
    """Where requests the library addresses to Twilio's hosts go: ``api_base_url``."""

    def __init__(self, base_url: str) -> None:
        self.base = urlsplit(base_url)

    def is_base(self, url: str) -> bool:
        """Whether ``url`` is on ``api_base_url``'s scheme, host and port."""
        target = urlsplit(url)
        return (target.scheme, target.netloc) == (self.base.scheme, self.base.netloc)

    def rebase(self, url: str) -> str:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if not (host == "twilio.com" or host.endswith(".twilio.com")):
            return url
        path = self.base.path.rstrip("/") + parts.path
        return urlunsplit((self.base.scheme, self.base.netloc, path, parts.query, parts.fragment))


def rebased_http_client(base: ApiBase, timeout: float) -> AsyncTwilioHttpClient:
    """The library's async client, with requests to Twilio's hosts sent to ``base``.

    The ``twilio`` library (its REST client pulls in ``requests`` and urllib3: 5 MiB) is
    imported here, when the first request goes out, not when the gateway starts: most
    gateways send no SMS in their first minutes, and some never restart the SMS side.
    """
    from twilio.http.async_http_client import AsyncTwilioHttpClient

    class RebasedHttpClient(AsyncTwilioHttpClient):
        async def request(self, method: str, url: str, **kwargs: Any) -> Response:
            # Credentials as a header: aiohttp deprecates its ``auth=`` argument.
            auth = kwargs.pop("auth", None)
            if auth is not None:
                headers = dict(kwargs.get("headers") or {})
                headers.update(basic_auth(*auth))
                kwargs["headers"] = headers
            target = base.rebase(url)
            if not base.is_base(target):
                raise RefusedDestination("a request outside api_base_url was refused")
            return await super().request(method, target, **kwargs)

    return RebasedHttpClient(timeout=timeout, logger=_HTTP_LOG)


class TwilioClient:
    """One Twilio account, talked to over one pooled HTTP session."""

    def __init__(
        self, account_sid: str, auth_token: str, api_base_url: str, timeout: float = 30.0
    ) -> None:
        self.account_sid = account_sid
        self._auth_token = auth_token
        self._base = ApiBase(api_base_url)
        self._timeout = timeout
        self._opened = False
        self._session: AsyncTwilioHttpClient | None = None
        self._client: Client | None = None

    async def open(self) -> None:
        """Allow requests; the library and its HTTP session come with the first one."""
        self._opened = True

    async def close(self) -> None:
        self._opened = False
        if self._session is not None:
            await self._session.close()
            self._session = None
            self._client = None

    @property
    def _http(self) -> AsyncTwilioHttpClient:
        """The library's HTTP client, made with the first request."""
        assert self._opened, "TwilioClient.open() was not called"
        if self._session is None:
            self._session = rebased_http_client(self._base, self._timeout)
        return self._session

    @property
    def credentials(self) -> dict[str, str]:
        """HTTP headers for fetching MMS media, which Twilio serves only to the account."""
        return basic_auth(self.account_sid, self._auth_token)

    def is_api_url(self, url: str) -> bool:
        """Whether ``url`` points at the REST API (and so may be given the credentials)."""
        assert self._opened, "TwilioClient.open() was not called"
        return self._base.is_base(self._base.rebase(url))

    async def send_message(
        self, from_: str, to: str, body: str, media_urls: list[str], status_callback: str
    ) -> SentMessage:
        """``messages.create``; raises :class:`TwilioError` or :class:`TwilioUnreachable`."""
        client = self._require()
        options: dict[str, Any] = {"status_callback": status_callback}
        if body:
            options["body"] = body
        if media_urls:
            options["media_url"] = media_urls
        message = await self._call(client.messages.create_async(to=to, from_=from_, **options))
        return SentMessage(sid=str(message.sid), status=str(message.status or ""))

    async def owns_number(self, number: str) -> bool:
        """Whether ``number`` is one of the account's IncomingPhoneNumbers."""
        client = self._require()
        found = await self._call(client.incoming_phone_numbers.list_async(phone_number=number))
        return any(str(item.phone_number) == number for item in found)

    def _require(self) -> Client:
        assert self._opened, "TwilioClient.open() was not called"
        if self._client is None:
            from twilio.rest import Client

            # environment={} so that TWILIO_EDGE / TWILIO_REGION cannot re-route requests.
            self._client = Client(
                self.account_sid, self._auth_token, http_client=self._http, environment={}
            )
        return self._client

    async def _call(self, awaitable: Any) -> Any:
        from twilio.base.exceptions import TwilioRestException  # loaded by _require()

        try:
            return await awaitable
        except TwilioRestException as exc:
            raise TwilioError(int(exc.status), exc.code, str(exc.msg or "")) from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise TwilioUnreachable(f"Twilio is unreachable: {exc or type(exc).__name__}") from None
