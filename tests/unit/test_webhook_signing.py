"""Standard Webhooks signatures and bearer tokens: what is accepted and what is refused."""

from __future__ import annotations

import base64

import pytest
from support.hook_endpoint import signature_valid

from transports.webhook.signing import (
    SignatureError,
    bearer_matches,
    new_secret,
    secret_key,
    sign,
    signature_headers,
    verify,
)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NOW = 1_714_557_600


def test_the_spec_example_signature() -> None:
    # The example from the Standard Webhooks spec and its reference libraries.
    body = b'{"test": 2432232314}'
    assert (
        sign(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_the_gateway_and_an_independent_verifier_agree() -> None:
    body = b'{"body": "hi"}'
    headers = signature_headers(SECRET, "msg_1", NOW, body)
    assert signature_valid(SECRET, headers, body, NOW)
    assert verify(SECRET, headers, body, NOW) == "msg_1"


def test_new_secrets_are_standard_and_distinct() -> None:
    one, two = new_secret(), new_secret()
    assert one != two
    assert one.startswith("whsec_")
    assert len(base64.b64decode(one.removeprefix("whsec_"))) == 24
    assert secret_key(one) == base64.b64decode(one.removeprefix("whsec_"))


def test_a_plain_config_token_is_its_own_key() -> None:
    assert secret_key("correct horse battery") == b"correct horse battery"
    assert secret_key("whsec_not base64!") == b"whsec_not base64!"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"webhook-signature": "v1,AAAA"}, "does not match"),
        ({"webhook-timestamp": str(NOW - 301)}, "5 minutes"),
        ({"webhook-timestamp": str(NOW + 301)}, "5 minutes"),
        ({"webhook-timestamp": "soon"}, "whole seconds"),
        ({"webhook-id": ""}, "required"),
        ({"webhook-id": "msg_2"}, "does not match"),
    ],
)
def test_bad_signatures_are_refused(change: dict[str, str], reason: str) -> None:
    body = b"hello"
    headers = {**signature_headers(SECRET, "msg_1", NOW, body), **change}
    with pytest.raises(SignatureError, match=reason):
        verify(SECRET, headers, body, NOW)


def test_a_changed_body_or_another_secret_is_refused() -> None:
    headers = signature_headers(SECRET, "msg_1", NOW, b"hello")
    with pytest.raises(SignatureError):
        verify(SECRET, headers, b"hello!", NOW)
    with pytest.raises(SignatureError):
        verify(new_secret(), headers, b"hello", NOW)


def test_the_edge_of_the_window_and_several_signatures() -> None:
    body = b"x"
    headers = signature_headers(SECRET, "msg_1", NOW, body)
    assert verify(SECRET, headers, body, NOW + 300) == "msg_1"
    # A sender rolling its secret sends both signatures; one matching is enough.
    rolled = {**headers, "webhook-signature": "v1,bm9wZQ== " + headers["webhook-signature"]}
    assert verify(SECRET, rolled, body, NOW) == "msg_1"


def test_bearer_tokens() -> None:
    assert bearer_matches("s3cr3t-token", "Bearer s3cr3t-token")
    assert bearer_matches("s3cr3t-token", "bearer  s3cr3t-token ")
    assert not bearer_matches("s3cr3t-token", "Bearer s3cr3t-tokenX")
    assert not bearer_matches("s3cr3t-token", "Basic s3cr3t-token")
    assert not bearer_matches("s3cr3t-token", "Bearer")
    assert not bearer_matches("s3cr3t-token", "")
