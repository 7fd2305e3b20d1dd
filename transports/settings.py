"""Typed building blocks for the transports' config sections.

Each transport declares its own pydantic model (``transports/<net>/settings.py``) built from
these types, so that ``portway check-config`` names the field and the value at fault, and so
that secrets are :class:`pydantic.SecretStr` and never reach a log line or a repr.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, SecretStr

# Values that people leave in a config when they copy the example and forget to edit it.
PLACEHOLDER_SECRETS = frozenset(
    {"changeme", "change-me", "change_me", "secret", "password", "xxx", "todo", "…", "..."}
)


def _port(value: Any) -> int:
    text = (
        str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else ""
    )
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"not a valid port: {value!r}")
    return int(text)


def _secret(value: SecretStr) -> SecretStr:
    text = value.get_secret_value()
    if not text.strip():
        raise ValueError("is empty")
    if text.strip().lower() in PLACEHOLDER_SECRETS:
        raise ValueError("is a placeholder; set a real secret")
    return value


def _host_port(value: Any) -> tuple[str, int]:
    """Parse ``host:port`` (``[v6]:port`` for IPv6) into a pair."""
    if not isinstance(value, str) or ":" not in value:
        raise ValueError(f"expected host:port, got {value!r}")
    host, _, port_text = value.rpartition(":")
    host = host.strip("[]")
    if not host:
        raise ValueError(f"expected host:port, got {value!r}")
    return host, _port(port_text)


def _jid_domain(value: Any) -> str:
    if not isinstance(value, str) or not value or "@" in value or "/" in value or " " in value:
        raise ValueError(f"not a component domain: {value!r}")
    return value.lower()


Port = Annotated[int, BeforeValidator(_port)]
Secret = Annotated[SecretStr, AfterValidator(_secret)]
HostPort = Annotated[tuple[str, int], BeforeValidator(_host_port)]
ComponentDomain = Annotated[str, BeforeValidator(_jid_domain)]


class Section(BaseModel):
    """A config section: unknown keys are errors, so that typos are caught at start."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TransportSettings(Section):
    """What every transport section has: the component's domain and its XEP-0114 secret."""

    jid: ComponentDomain
    secret: Secret
    name: str | None = None
    #: how long an outbox attempt belongs to the process that took it; after a crash, the
    #: message is tried again once this has passed (at once with SQLite, which has one
    #: process). Keep it above the transport's longest attempt.
    outbox_lease_seconds: float = Field(default=300.0, gt=0)
