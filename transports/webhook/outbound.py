"""Users' messages to a hook, POSTed as signed JSON to the hook's URL.

The pure part decides what is sent and what an answer means: 2xx is delivered (and its text,
if any, is the hook's reply); 408, 429 and 5xx are worth retrying, after ``Retry-After`` when
the endpoint gives one; any other status is final, because sending the same request again
would get the same answer. Redirects are not followed: a signed body must reach the URL its
owner configured, not wherever a response points.

Every connection goes through :func:`transports.egress.guarded_connector`: an address the
hook may not reach is refused before any packet is sent, and the user is told only that it is
refused, in the same words whatever listens there, so that hooks cannot scan the inside.
"""

from __future__ import annotations

import datetime
import email.utils
import json
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import aiohttp

from transports.base import DeliveryFailed, OutboundMessage, RetryLater
from transports.egress import REFUSED_TEXT, Network, guarded_connector, is_refusal
from transports.webhook.payloads import clean_text, media_type
from transports.webhook.signing import signature_headers

#: The most of an endpoint's answer that is read (a reply longer than this is cut).
MAX_REPLY_BYTES = 64 * 1024
USER_AGENT = "Portway-Webhooks/0.1"


@dataclass(frozen=True)
class Answer:
    """What the endpoint said."""

    status: int
    content_type: str
    body: bytes
    retry_after: str | None = None


def request_body(
    message: OutboundMessage,
    hook_jid: str,
    post_id: str,
    sent_at: float,
    refers_to: str | None = None,
) -> bytes:
    """The JSON the endpoint receives (``transports/webhook/post.schema.json``).

    ``{id, type, from, to, body, thread, timestamp}``; what is not a plain message also says
    which earlier post it is about (``refers_to``: the ``id`` the endpoint got with it, or the
    ``id`` the hook's own post was given; null when the gateway no longer knows it), with
    ``reactions`` (the sender's whole set, as XEP-0444 says it: empty means all removed) and
    ``quote`` (what a reply quotes).
    """
    stamp = datetime.datetime.fromtimestamp(sent_at, datetime.UTC)
    refers = message.refers
    payload: dict[str, Any] = {
        "id": post_id,
        "type": refers.kind if refers else "message",
        "from": message.from_jid,
        "to": hook_jid,
        "body": message.body,
        "thread": message.thread,
        "timestamp": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    if refers is not None:
        payload["refers_to"] = refers_to
        if refers.kind == "reaction":
            payload["reactions"] = list(refers.reactions)
        if refers.kind == "reply":
            payload["quote"] = refers.quote
    return json.dumps(payload, ensure_ascii=False).encode()


def request_headers(secret: str, post_id: str, body: bytes, now: float) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **signature_headers(secret, post_id, int(now), body),
    }


def outcome(answer: Answer, now: float) -> str | None:
    """The reply text of a 2xx answer (``None`` if it has none); raise for any other status.

    Raises :class:`RetryLater` (408, 429, 5xx) or :class:`DeliveryFailed` (the rest).
    """
    if 200 <= answer.status < 300:
        return reply_text(answer)
    reason = f"the hook's endpoint answered {describe_status(answer.status)}"
    if answer.status in (408, 429) or answer.status >= 500:
        raise RetryLater(reason, retry_after_seconds(answer.retry_after, now))
    if 300 <= answer.status < 400:
        raise DeliveryFailed(f"{reason} (a redirect; set the hook's url to the final address)")
    raise DeliveryFailed(reason)


def reply_text(answer: Answer) -> str | None:
    """text/plain, or JSON with a ``text`` string: the hook's answer to the user."""
    media, charset = media_type(answer.content_type)
    try:
        text = answer.body.decode(charset or "utf-8")
    except (LookupError, UnicodeDecodeError):
        return None
    if media == "text/plain":
        return clean_text(text) or None
    if media == "application/json" or media.endswith("+json"):
        try:
            data: Any = json.loads(text)
        except ValueError:
            return None
        if isinstance(data, dict) and isinstance(data.get("text"), str):
            return clean_text(data["text"]) or None
    return None


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return max(1.0, float(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return max(1.0, when.timestamp() - now)


def describe_status(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


#: A hook's url that the gateway will not connect to; final, since trying again cannot help.
REFUSED_URL = f"the hook's url is refused: {REFUSED_TEXT}"


class HookClient:
    """The HTTP side: one client session for the POSTs of hooks that may reach ``allowed``.

    The admin's hooks and users' hooks may reach different networks, so each kind has its
    own client.
    """

    def __init__(self, timeout_seconds: float, allowed: Sequence[Network] = ()) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._allowed = tuple(allowed)
        self._session: aiohttp.ClientSession | None = None

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        """POST once; connection problems and timeouts are :class:`RetryLater`.

        A refused address is :class:`DeliveryFailed`, with :data:`REFUSED_URL` as its reason.
        """
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, connector=guarded_connector(self._allowed)
            )
        try:
            async with self._session.post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                content = b""
                while len(content) < MAX_REPLY_BYTES:
                    chunk = await response.content.readany()
                    if not chunk:
                        break
                    content += chunk
                return Answer(
                    response.status,
                    response.headers.get("Content-Type", ""),
                    content[:MAX_REPLY_BYTES],
                    response.headers.get("Retry-After"),
                )
        except TimeoutError:
            raise RetryLater("the hook's endpoint did not answer in time") from None
        except aiohttp.ClientError as error:
            if is_refusal(error):
                raise DeliveryFailed(REFUSED_URL) from None
            raise RetryLater(f"cannot reach the hook's endpoint: {_describe(error)}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _describe(error: aiohttp.ClientError) -> str:
    if isinstance(error, aiohttp.ClientConnectorError):
        return (
            "connection refused"
            if isinstance(error.os_error, ConnectionRefusedError)
            else (str(error.os_error) or type(error).__name__)
        )
    return str(error) or type(error).__name__
