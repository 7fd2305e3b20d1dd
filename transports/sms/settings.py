"""The ``transports.sms`` config section."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from transports.settings import Secret, Section, TransportSettings


class SmsSettings(TransportSettings):
    """SMS/MMS through Twilio or a Twilio-compatible provider (SignalWire, a test server)."""

    #: The Twilio account (``AC`` + 32 hex digits) whose numbers the users send from.
    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    #: The account's auth token: authenticates REST calls and checks webhook signatures.
    auth_token: Secret
    #: Where the REST API lives; every ``https://api.twilio.com`` request goes here instead.
    api_base_url: str = "https://api.twilio.com"
    #: Region (ISO 3166 alpha-2) for numbers typed without a country code: ``(555) 765-4321``.
    default_region: str = Field(default="US", pattern=r"^[A-Z]{2}$")
    #: Let users register a number of the account that nobody holds yet (checked with Twilio);
    #: otherwise only an admin binds numbers (CLI or ad-hoc command).
    self_service: bool = False
    #: Largest inbound MMS attachment the gateway fetches and serves back, in bytes.
    media_max_bytes: int = Field(default=5 * 1024 * 1024, gt=0)
    #: How long served MMS attachments stay available at ``{public_url}/media/…``.
    media_ttl_days: int = Field(default=30, gt=0)
    #: Seconds a REST call to Twilio may take before it counts as a connection error (retried).
    request_timeout_seconds: float = Field(default=30.0, gt=0)

    @field_validator("api_base_url")
    @classmethod
    def _api_base_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+(/\S*)?$", value):
            raise ValueError(f"not an http(s) URL: {value!r}")
        return value.rstrip("/")


__all__ = ["Section", "SmsSettings"]
