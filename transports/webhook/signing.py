"""Standard Webhooks signatures (https://www.standardwebhooks.com) and bearer tokens.

One secret per hook serves both ways of proving a post came from its holder, and it signs the
hook's outbound POSTs too. Every comparison goes through :func:`hmac.compare_digest` so that
response timing says nothing about how much of a guess was right.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping

#: How far a signed post's ``webhook-timestamp`` may be from our clock, either way.
TOLERANCE_SECONDS = 5 * 60
SECRET_PREFIX = "whsec_"


class SignatureError(Exception):
    """The post is not signed by the hook's secret (the text says how, for the 401 body)."""


def new_secret() -> str:
    """A fresh secret in the Standard Webhooks format, usable as a bearer token as-is."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key for ``secret``.

    ``whsec_<base64>`` is decoded as the Standard Webhooks libraries do, so a sender using one
    of them with the secret shown at creation signs correctly; any other secret (an admin's
    config token) is used as its UTF-8 bytes.
    """
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
        except binascii.Error:
            pass
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of ``id.timestamp.body``."""
    signed = msg_id.encode() + b"." + str(timestamp).encode() + b"." + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers of a signed request."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def is_signed(headers: Mapping[str, str]) -> bool:
    return "webhook-signature" in headers


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> str:
    """Check a signed request; return its ``webhook-id`` or raise :class:`SignatureError`.

    ``headers`` must be case-insensitive (aiohttp's are). Several space-separated signatures
    are allowed, as the spec says, so a sender can roll its secret without a gap.
    """
    msg_id = headers.get("webhook-id", "")
    timestamp_text = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not msg_id or not timestamp_text or not signatures:
        raise SignatureError("webhook-id, webhook-timestamp and webhook-signature are required")
    if not timestamp_text.isdigit():
        raise SignatureError("webhook-timestamp must be whole seconds since the epoch")
    timestamp = int(timestamp_text)
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise SignatureError("webhook-timestamp is more than 5 minutes away from our clock")
    expected = sign(secret, msg_id, timestamp, body).encode()
    matched = False
    for candidate in signatures.split():
        # No early exit: every candidate costs the same whether or not an earlier one matched.
        matched |= hmac.compare_digest(candidate.encode(), expected)
    if not matched:
        raise SignatureError("the signature does not match")
    return msg_id


def bearer_matches(secret: str, authorization: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <secret>``."""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode(), secret.encode())
