"""The ``transports.email`` config section."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

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
