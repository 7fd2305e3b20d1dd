"""What a user's message to a hook becomes as a POST, and what the endpoint's answer means."""

from __future__ import annotations

import json

import pytest

from transports.base import DeliveryFailed, OutboundMessage, RetryLater
from transports.webhook.outbound import (
    Answer,
    outcome,
    request_body,
    request_headers,
    retry_after_seconds,
)
from transports.webhook.rate_limit import RateLimiter, retry_after_header
from transports.webhook.signing import verify

NOW = 1_714_557_600.0
MESSAGE = OutboundMessage(
    user_jid="alice@example.org",
    from_jid="alice@example.org/laptop",
    contact="bot",
    body="what's the weather?",
    xmpp_id="m1",
    thread="t-1",
)


def test_the_json_and_its_signature() -> None:
    body = request_body(MESSAGE, "bot@hooks.example.org", "p1", NOW + 0.25)
    assert json.loads(body) == {
        "id": "p1",
        "type": "message",
        "from": "alice@example.org/laptop",
        "to": "bot@hooks.example.org",
        "body": "what's the weather?",
        "thread": "t-1",
        "timestamp": "2024-05-01T10:00:00.250Z",
    }
    headers = request_headers("whsec_c2VjcmV0", "p1", body, NOW)
    assert headers["Content-Type"] == "application/json"
    assert verify("whsec_c2VjcmV0", headers, body, NOW) == "p1"


@pytest.mark.parametrize(
    ("answer", "reply"),
    [
        (Answer(204, "", b""), None),
        (Answer(200, "text/plain; charset=utf-8", b"Sunny, 21\xc2\xb0C\n"), "Sunny, 21°C"),
        (Answer(200, "application/json", b'{"text": "pong"}'), "pong"),
        (Answer(200, "application/json", b'{"ok": true}'), None),
        (Answer(200, "application/json", b"{broken"), None),
        (Answer(202, "text/html", b"<p>thanks</p>"), None),
        (Answer(200, "text/plain", b"   "), None),
    ],
)
def test_success_and_replies(answer: Answer, reply: str | None) -> None:
    assert outcome(answer, NOW) == reply


@pytest.mark.parametrize(
    ("answer", "after"),
    [
        (Answer(500, "", b""), None),
        (Answer(503, "", b"", "120"), 120.0),
        (Answer(429, "", b"", "7"), 7.0),
        (Answer(429, "", b"", "Wed, 01 May 2024 10:01:00 GMT"), 60.0),
        (Answer(429, "", b"", "nonsense"), None),
        (Answer(408, "", b""), None),
    ],
)
def test_temporary_failures_are_retried(answer: Answer, after: float | None) -> None:
    with pytest.raises(RetryLater, match=f"HTTP {answer.status}") as caught:
        outcome(answer, NOW)
    assert caught.value.after_seconds == after


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (400, "HTTP 400 Bad Request"),
        (401, "HTTP 401 Unauthorized"),
        (404, "HTTP 404 Not Found"),
        (410, "HTTP 410 Gone"),
        (302, "a redirect"),
        (499, "HTTP 499"),
    ],
)
def test_other_statuses_are_final(status: int, text: str) -> None:
    with pytest.raises(DeliveryFailed, match=text):
        outcome(Answer(status, "", b""), NOW)


def test_retry_after_forms() -> None:
    assert retry_after_seconds(None, NOW) is None
    assert retry_after_seconds("0", NOW) == 1.0  # never "now": that would be a hot loop
    assert retry_after_seconds("Wed, 01 May 2024 09:00:00 GMT", NOW) == 1.0  # in the past


def test_rate_limit_bucket() -> None:
    clock = [0.0]
    limiter = RateLimiter(lambda: clock[0])
    assert [limiter.take("alerts", 3) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("alerts", 3) == pytest.approx(20.0)  # one post per 20 s
    assert limiter.take("other", 3) == 0.0  # each hook has its own bucket
    clock[0] = 10.0
    assert limiter.take("alerts", 3) == pytest.approx(10.0)
    clock[0] = 20.0
    assert limiter.take("alerts", 3) == 0.0
    assert retry_after_header(0.2) == "1"
    assert retry_after_header(19.01) == "20"
