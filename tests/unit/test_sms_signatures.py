"""Twilio webhook signatures: the URL Twilio signed, and checking the signature."""

from __future__ import annotations

import base64
import hashlib
import hmac

from twilio.request_validator import RequestValidator

from transports.sms.signatures import signature_valid, signed_url

TOKEN = "12345678901234567890123456789012"
FIELDS = [("From", "+15557654321"), ("To", "+15550001111"), ("Body", "hi"), ("NumMedia", "0")]


def sign(url: str, fields: list[tuple[str, str]] = FIELDS, token: str = TOKEN) -> str:
    return str(RequestValidator(token).compute_signature(url, dict(fields)))


def test_signed_url_is_the_public_url_plus_the_path() -> None:
    assert signed_url("https://gw.example.org", "/sms/inbound") == (
        "https://gw.example.org/sms/inbound"
    )


def test_signed_url_keeps_a_proxy_prefix_and_the_query() -> None:
    assert signed_url("https://example.org/portway/", "/sms/inbound", "a=1&b=2") == (
        "https://example.org/portway/sms/inbound?a=1&b=2"
    )


def test_signed_url_keeps_an_explicit_port() -> None:
    assert signed_url("http://127.0.0.1:8380", "sms/status") == "http://127.0.0.1:8380/sms/status"


def test_a_twilio_signature_is_valid() -> None:
    url = "https://gw.example.org/sms/inbound"
    assert signature_valid(TOKEN, url, FIELDS, sign(url))


def test_a_signature_made_with_the_default_port_is_valid_either_way() -> None:
    url = "https://gw.example.org/sms/inbound"
    with_port = "https://gw.example.org:443/sms/inbound"
    assert signature_valid(TOKEN, url, FIELDS, sign(with_port))
    assert signature_valid(TOKEN, with_port, FIELDS, sign(url))


def test_repeated_fields_are_signed_sorted() -> None:
    url = "https://gw.example.org/sms/status"
    fields = [("MediaUrl", "https://b"), ("MediaUrl", "https://a"), ("To", "+15550001111")]
    expected = "".join(["MediaUrlhttps://a", "MediaUrlhttps://b", "To+15550001111"])
    digest = hmac.new(TOKEN.encode(), (url + expected).encode(), hashlib.sha1).digest()
    assert signature_valid(TOKEN, url, fields, base64.b64encode(digest).decode())


def test_missing_or_wrong_signatures_are_refused() -> None:
    url = "https://gw.example.org/sms/inbound"
    assert not signature_valid(TOKEN, url, FIELDS, None)
    assert not signature_valid(TOKEN, url, FIELDS, "")
    assert not signature_valid(TOKEN, url, FIELDS, "bm90IGEgc2lnbmF0dXJl")
    other = sign(url, token="another-token-0000000000000000")
    assert not signature_valid(TOKEN, url, FIELDS, other)


def test_a_signature_for_other_fields_or_another_url_is_refused() -> None:
    url = "https://gw.example.org/sms/inbound"
    signature = sign(url)
    tampered = [*FIELDS[:2], ("Body", "send money"), FIELDS[3]]
    assert not signature_valid(TOKEN, url, tampered, signature)
    assert not signature_valid(TOKEN, "http://gw.example.org/sms/inbound", FIELDS, signature)
    assert not signature_valid(TOKEN, url + "?x=1", FIELDS, signature)
