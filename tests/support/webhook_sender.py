"""A Standard Webhooks sender that behaves like a real service when the receiver crashes.

A post whose answer was lost (connection refused or cut while the gateway was SIGKILLed, a
timeout, a 503) is posted again with the same ``webhook-id`` and a fresh signature, until the
gateway answers 202 (accepted now) or 409 (accepted before: the first try was stored and only
its answer was lost). That is what Standard Webhooks senders do, and it is the only honest way
to count "accepted": a post counts once the gateway has said, at some point, that it holds it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp

from transports.webhook.signing import signature_headers

#: answers after which the post is the gateway's responsibility
ACCEPTED = (202, 409)
#: answers a sender retries (after Retry-After when there is one)
RETRIED = (429, 500, 502, 503, 504)


@dataclass
class SendLog:
    """What happened to every post: the final answer per webhook-id, and how it got there."""

    final: dict[str, int] = field(default_factory=dict)
    attempts: Counter[str] = field(default_factory=Counter)
    #: answers (or exception names) seen over all attempts, retries included
    answers: Counter[str] = field(default_factory=Counter)

    @property
    def accepted(self) -> set[str]:
        return {post_id for post_id, status in self.final.items() if status in ACCEPTED}

    @property
    def refused(self) -> dict[str, int]:
        return {post_id: s for post_id, s in self.final.items() if s not in ACCEPTED}


class WebhookSender:
    """Posts signed bodies to one hook, retrying each with its own webhook-id."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        url: str,
        secret: str,
        *,
        request_timeout: float = 5.0,
        retry_delay: float = 0.1,
    ) -> None:
        self._http = http
        self._url = url
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._retry_delay = retry_delay
        self.log = SendLog()

    async def send(self, post_id: str, text: str, deadline: float) -> int:
        """Post until accepted or refused for good; past ``deadline`` the last answer stands
        (0 when no answer ever came)."""
        body = text.encode()
        status = 0
        while True:
            self.log.attempts[post_id] += 1
            headers = {
                **signature_headers(self._secret, post_id, int(time.time()), body),
                "Content-Type": "text/plain",
            }
            wait = self._retry_delay
            try:
                async with self._http.post(
                    self._url, data=body, headers=headers, timeout=self._timeout
                ) as response:
                    status = response.status
                    await response.read()
                    if status == 429:
                        wait = float(response.headers.get("Retry-After", "1"))
            except (aiohttp.ClientError, TimeoutError) as error:
                self.log.answers[type(error).__name__] += 1
            else:
                self.log.answers[str(status)] += 1
                if status not in RETRIED:
                    break
            if time.monotonic() + wait > deadline:
                break
            await asyncio.sleep(wait)
        self.log.final[post_id] = status
        return status
