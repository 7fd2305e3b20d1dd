"""The ``transports.webhook`` config section."""

from __future__ import annotations

from ipaddress import ip_address

from pydantic import Field, field_validator, model_validator
from yarl import URL

from transports.egress import Network, is_allowed, parse_networks
from transports.settings import Secret, Section, TransportSettings

#: What a hook's name may be: it is the local part of the hook's JID and a URL path segment,
#: so it stays within what both accept without escaping.
HOOK_NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"


def _bare_jids(value: list[str]) -> list[str]:
    for jid in value:
        if jid.count("@") != 1 or "/" in jid or " " in jid or jid.startswith("@"):
            raise ValueError(f"not a bare JID: {jid!r}")
    return [jid.lower() for jid in value]


def _networks(value: list[str]) -> list[str]:
    """Each entry a network (``10.1.2.0/24``) or one address, written back in its usual form."""
    written = []
    for entry in value:
        try:
            (network,) = parse_networks([entry])
        except ValueError:
            raise ValueError(
                f"not a network: {entry!r} (write it like 10.1.2.0/24 or fd00:1::/64)"
            ) from None
        written.append(str(network))
    return written


class HookSettings(Section):
    """A hook defined by the admin in the config file (users add their own with commands)."""

    #: the hook's JID is ``<name>@<jid>`` and its inbound URL ``{public_url}/hooks/<name>``
    name: str = Field(pattern=HOOK_NAME_PATTERN)
    #: bare JID that owns the hook: gets its messages when ``deliver_to`` and ``rooms`` are
    #: empty, and may send through it
    owner: str
    #: the hook's secret: ``Authorization: Bearer <token>``, or the key of Standard Webhooks
    #: signatures (``whsec_<base64>`` is decoded as Standard Webhooks does; any other value is
    #: used as its UTF-8 bytes)
    token: Secret
    #: bare JIDs that receive what is posted to the hook (and may send through it)
    deliver_to: list[str] = []
    #: MUC room JIDs the hook joins, under ``nick``, to post what it receives
    rooms: list[str] = []
    #: the hook's nick in ``rooms`` (default: its name)
    nick: str | None = None
    #: where users' messages to the hook are POSTed (signed JSON); none: inbound only
    url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    #: this hook's inbound rate limit, overriding the section's ``rate_per_minute``
    rate_per_minute: int | None = Field(default=None, gt=0)
    #: Alertmanager and Grafana notifications of one alert group correct the group's first
    #: message (XEP-0308) until the group is resolved, instead of adding a message each time
    update_alerts: bool = False

    @field_validator("owner")
    @classmethod
    def _owner(cls, value: str) -> str:
        return _bare_jids([value])[0]

    @field_validator("deliver_to", "rooms")
    @classmethod
    def _jids(cls, value: list[str]) -> list[str]:
        return _bare_jids(value)


class WebhookSettings(TransportSettings):
    """Webhooks: services post into XMPP; users' messages go out as signed POSTs."""

    #: admin-defined hooks; users create more with ad-hoc commands
    hooks: list[HookSettings] = []
    #: largest inbound body accepted; bigger ones get 413
    max_body_bytes: int = Field(default=64 * 1024, gt=0)
    #: inbound posts per hook per minute (a token bucket with a minute's worth of burst);
    #: more get 429 with Retry-After
    rate_per_minute: int = Field(default=60, gt=0)
    #: how long an outbound POST is retried (5xx, 429, connection errors) before giving up
    retry_hours: float = Field(default=24.0, gt=0)
    #: seconds an outbound POST may take before it counts as a connection error
    request_timeout_seconds: float = Field(default=15.0, gt=0)
    #: the largest number of hooks one user may create with ad-hoc commands
    max_hooks_per_user: int = Field(default=20, ge=0)
    #: networks the hooks above (the admin's) may POST to besides public addresses
    allow_networks: list[str] = []
    #: networks hooks that users create may POST to besides public addresses (none: public only)
    user_hooks_allow_networks: list[str] = []

    @field_validator("allow_networks", "user_hooks_allow_networks")
    @classmethod
    def _allow_networks(cls, value: list[str]) -> list[str]:
        return _networks(value)

    @property
    def hook_networks(self) -> tuple[Network, ...]:
        """Where the admin's hooks may go, besides public addresses."""
        return parse_networks(self.allow_networks)

    @property
    def user_hook_networks(self) -> tuple[Network, ...]:
        """Where users' hooks may go, besides public addresses."""
        return parse_networks(self.user_hooks_allow_networks)

    @model_validator(mode="after")
    def _reachable_urls(self) -> WebhookSettings:
        """A hook whose url is an IP address the gateway would refuse is a mistake: say so now."""
        for index, hook in enumerate(self.hooks):
            host = URL(hook.url).host if hook.url else None
            if host is None:
                continue
            try:
                ip_address(host)
            except ValueError:
                continue  # a name: checked on each connection, once resolved
            if not is_allowed(host, self.hook_networks):
                raise ValueError(
                    f"hooks.{index}.url: {host} is not a public address; add its network to"
                    " transports.webhook.allow_networks to let the gateway post there"
                )
        return self

    @field_validator("hooks")
    @classmethod
    def _unique_names(cls, hooks: list[HookSettings]) -> list[HookSettings]:
        names = [hook.name for hook in hooks]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"hook names must be unique; repeated: {', '.join(duplicates)}")
        return hooks
