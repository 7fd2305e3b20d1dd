"""What services post, turned into one message's text; and the clear refusals of the rest."""

from __future__ import annotations

import json

import pytest
from support.hook_endpoint import alertmanager_payload, grafana_payload

from transports.webhook.payloads import PayloadError, Post, clean_text, parse_post


def as_json(data: object) -> bytes:
    return json.dumps(data).encode()


def test_plain_text_with_and_without_a_charset() -> None:
    assert parse_post("text/plain", b"  deploy done\r\n") == Post("deploy done")
    assert parse_post("text/plain; charset=latin-1", "café".encode("latin-1")).text == "café"
    assert parse_post("", b"no content type is text").text == "no content type is text"


def test_json_text_body_and_to() -> None:
    assert parse_post("application/json", as_json({"text": "hi"})) == Post("hi")
    assert parse_post("application/json", as_json({"body": "hi"})) == Post("hi")
    post = parse_post(
        "application/json; charset=utf-8", as_json({"text": "hi", "to": "Bob@Example.org"})
    )
    assert post == Post("hi", ("bob@example.org",))
    post = parse_post("application/json", as_json({"text": "hi", "to": ["a@x.org", "b@x.org"]}))
    assert post.to == ("a@x.org", "b@x.org")


def test_slack_incoming_webhook_formatting() -> None:
    post = parse_post(
        "application/json",
        as_json(
            {
                "text": "Build <https://ci.local/42|#42> failed &amp; <https://ci.local/log>",
                "username": "ci",
                "icon_emoji": ":x:",
            }
        ),
    )
    assert post.text == "Build #42 (https://ci.local/42) failed & https://ci.local/log"
    # Attachments only: Slack's own plain-text fallback.
    post = parse_post(
        "application/json",
        as_json({"attachments": [{"fallback": "Deploy v2 to prod", "color": "good"}]}),
    )
    assert post.text == "Deploy v2 to prod"


def test_alertmanager_one_line_per_alert_with_status() -> None:
    body = alertmanager_payload(
        ("firing", "HighCPU", "CPU above 90%"), ("resolved", "DiskFull", "/ is 99% full")
    )
    assert parse_post("application/json", as_json(body)).text == (
        "[FIRING] HighCPU on db1:9100: CPU above 90%\n"
        "[RESOLVED] DiskFull on db1:9100: / is 99% full"
    )


def test_grafana_unified_and_legacy() -> None:
    body = grafana_payload("firing", "Latency", "B=2.3")
    assert parse_post("application/json", as_json(body)).text == "[FIRING] Latency: B=2.3"
    legacy = {
        "title": "[Alerting] Test notification",
        "ruleId": 0,
        "ruleName": "Test notification",
        "state": "alerting",
        "evalMatches": [{"value": 100, "metric": "High value", "tags": None}],
        "message": "Someone is testing\nthe alert notification.",
    }
    assert parse_post("application/json", as_json(legacy)).text == (
        "[ALERTING] Test notification: Someone is testing the alert notification. (High value=100)"
    )


def test_form_posts() -> None:
    form = "application/x-www-form-urlencoded"
    assert parse_post(form, b"text=hello+world&to=bob%40example.org") == Post(
        "hello world", ("bob@example.org",)
    )
    assert parse_post(form, b"body=caf%C3%A9").text == "café"
    # Slack's legacy form: the JSON in a payload field.
    assert parse_post(form, b"payload=%7B%22text%22%3A%22hi%22%7D").text == "hi"


def test_multipart_form_posts() -> None:
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="text"\r\n\r\nfrom curl -F\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\nignored\r\n--XyZ--\r\n"
    )
    assert parse_post("multipart/form-data; boundary=XyZ", body) == Post("from curl -F")


@pytest.mark.parametrize(
    ("content_type", "body", "status", "reason"),
    [
        ("application/json", b"{not json", 400, "not valid JSON"),
        ("application/json", b"[1, 2]", 400, "must be an object"),
        ("application/json", b'{"title": "x"}', 400, "needs a text or body"),
        ("application/json", b'{"text": "hi", "to": 5}', 400, "to must be"),
        ("application/json", b'{"alerts": ["x"]}', 400, "must be an object"),
        ("text/plain", b"\xff\xfe\xfa", 400, "not valid utf-8"),
        ("text/plain; charset=klingon", b"x", 415, "unknown charset"),
        ("text/plain", b"   \n ", 400, "empty"),
        ("application/xml", b"<a/>", 415, "unsupported content type"),
        ("image/png", b"\x89PNG", 415, "unsupported content type"),
        ("garbage", b"x", 415, "unsupported content type"),
        ("application/x-www-form-urlencoded", b"title=x", 400, "text or body"),
        ("application/x-www-form-urlencoded", b"payload=%7Bx", 400, "not valid JSON"),
        ("multipart/form-data", b"no boundary", 400, "not valid multipart"),
    ],
)
def test_bad_bodies_are_refused_clearly(
    content_type: str, body: bytes, status: int, reason: str
) -> None:
    with pytest.raises(PayloadError, match=reason) as caught:
        parse_post(content_type, body)
    assert caught.value.status == status


def test_characters_xml_cannot_carry_are_dropped() -> None:
    assert clean_text("a\x00b\x1bc\r\nd\te\ufffe") == "abc\nd\te"
    assert parse_post("text/plain", b"\x07ding").text == "ding"
