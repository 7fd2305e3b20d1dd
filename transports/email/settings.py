"""The ``transports.email`` config section."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from transports.egress import Network, parse_networks
from transports.settings import HostPort, Port, Section, TransportSettings


class Smarthost(Section):
    """The relay that carries outbound mail; Portway never delivers to MX hosts itself."""

    #: host name or address of the relay (your provider's submission server)
    host: str
    #: 587 for submission with STARTTLS, 465 with ``tls: true``, 25 for a local MTA
    port: Port = 587
    #: require STARTTLS before sending (refuse to send in clear if the relay does not offer it)
    starttls: bool = True
    #: connect with TLS from the first byte (port 465); excludes ``starttls``
    tls: bool = False
    #: check the relay's certificate; turn off only for a relay on the same machine
    validate_certs: bool = True
    #: SMTP AUTH user name; AUTH is used when it is set
    username: str | None = None
    #: SMTP AUTH password (never logged)
    password: SecretStr | None = None
    #: seconds to wait for the relay at each step before trying again later
    timeout: float = Field(default=30.0, gt=0)


class EmailSettings(TransportSettings):
    """Email over SMTP: addresses as contacts."""

    #: the mail domain of users' addresses (``alice@<domain>``); its MX must point at
    #: ``smtp_listen`` (or at an MTA that relays to it)
    domain: str
    #: where the inbound SMTP listener accepts mail for ``domain``
    smtp_listen: HostPort = ("127.0.0.1", 2525)
    #: the relay for outbound mail
    smarthost: Smarthost
    #: largest inbound message accepted (SMTP SIZE); larger ones get 552
    max_message_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    #: ``anyone``: every sender reaches the user; ``roster``: only addresses in the user's
    #: roster, or that the user wrote to (others get 550)
    inbound_policy: Literal["anyone", "roster"] = "anyone"
    #: Subject of a mail that has neither an XMPP subject nor a thread to reply to
    default_subject: str = "Message from XMPP"
    #: drop the quoted tail of replies ("On … wrote:" and the "> " lines below it)
    strip_quoted_replies: bool = False
    #: most mails one user may send per hour (more get a resource-constraint error)
    send_rate_per_hour: int = Field(default=100, gt=0)
    #: largest attachment kept and served at ``{public_url}/media/<token>``; larger ones are
    #: named in the message but not kept
    max_attachment_bytes: int = Field(default=5 * 1024 * 1024, gt=0)
    #: how long served attachments stay available
    attachment_ttl_hours: float = Field(default=7 * 24.0, gt=0)
    #: first wait before sending a deferred mail again; it doubles per attempt up to 15
    #: minutes, and a mail is given up (with an error to the user) after 48 hours
    retry_base_seconds: float = Field(default=5.0, gt=0)
    #: most recipients at our domain in one inbound SMTP transaction
    max_recipients: int = Field(default=20, gt=0)
    #: Files users share (links from their client's upload) are attached to the mail when
    #: they are on the user's own upload service (a host at or under the user's JID domain),
    #: on Portway's own /media, or under one of these URL prefixes; other links stay text
    attachment_sources: list[str] = []
    #: networks those fetches may reach besides public addresses (an upload service on the LAN)
    allow_networks: list[str] = []
    #: most bytes of files attached to one outgoing mail; files past it stay links
    max_outgoing_attachments_bytes: int = Field(default=25 * 1024 * 1024, gt=0)

    @field_validator("allow_networks")
    @classmethod
    def _allow_networks(cls, value: list[str]) -> list[str]:
        try:
            return [str(network) for network in parse_networks(value)]
        except ValueError as error:
            raise ValueError(f"{error} (write a network like 10.1.2.0/24)") from None

    @field_validator("attachment_sources")
    @classmethod
    def _sources(cls, value: list[str]) -> list[str]:
        for source in value:
            if not source.startswith(("https://", "http://")) or "@" in source:
                raise ValueError(f"not an http(s) URL prefix: {source!r}")
        return value

    @property
    def fetch_networks(self) -> tuple[Network, ...]:
        return parse_networks(self.allow_networks)
