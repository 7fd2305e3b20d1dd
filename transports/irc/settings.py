"""The ``transports.irc`` config section."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from transports.egress import parse_networks
from transports.irc.after_connect import parse_rules
from transports.irc.pacing import DEFAULT_CONNECTIONS_PER_SECOND
from transports.irc.protocol import UnsafeLine, check_encoding
from transports.settings import Port, Section, TransportSettings

#: The settings of a server a user may be allowed to change with "IRC server settings".
#: ``username`` is also the SASL account name.
UserSetting = Literal[
    "nick",
    "username",
    "realname",
    "sasl_password",
    "password",
    "persistent_rooms",
    "encoding",
    "throttle",
    "host",
    "port",
    "tls",
    "verify_cert",
    "reactions_as_text",
]
#: What users may change unless the admin says otherwise: who they are, not where the
#: gateway connects (host, port, TLS), nor the server password.
DEFAULT_USER_SETTABLE: tuple[UserSetting, ...] = (
    "nick",
    "username",
    "realname",
    "sasl_password",
    "persistent_rooms",
    "encoding",
    "throttle",
)


def _check_rules(value: list[str] | None) -> list[str] | None:
    if value is not None:
        parse_rules(value)
    return value


class Throttle(Section):
    """Token-bucket flood control, so that real networks do not kill us for Excess Flood."""

    #: lines that may leave at once before the rate applies
    burst: int = Field(default=5, ge=1)
    #: the steady rate after a burst
    lines_per_second: float = Field(default=2.0, gt=0)


class IrcServerSettings(Section):
    """Per-server defaults; users may override them with the server's ad-hoc command."""

    #: where to connect, when it is not the server's name (e.g. 127.0.0.1)
    host: str | None = None
    port: Port = 6697
    #: TLS from the first byte (port 6697 style; there is no STARTTLS)
    tls: bool = True
    #: check the server's certificate against the system trust store (OpenSSL's default
    #: paths; the SSL_CERT_FILE environment variable replaces them, e.g. for a private CA)
    #: and the name in ``host`` (or the server's name) against it. A refused certificate
    #: fails the join with an error that says so. Off only where the path is trusted.
    verify_cert: bool = True
    #: server password (PASS), e.g. for a bouncer or a private server
    password: SecretStr | None = None
    #: SASL PLAIN password (account name: ``username``, else the nick). SASL is then
    #: required: a server that does not offer it, or refuses the password, is not joined
    #: unauthenticated; the user is told why.
    sasl_password: SecretStr | None = None
    username: str | None = None
    realname: str | None = None
    #: null turns throttling off (only for servers without flood limits)
    throttle: Throttle | None = Throttle()
    encoding: str = "utf-8"
    #: used for lines that are not valid in ``encoding``
    fallback_encoding: str = "latin-1"
    #: raw IRC commands sent after connecting, e.g. "PRIVMSG NickServ :IDENTIFY pass"
    #: (sent, like the passwords, only where the admin's host, port and TLS lead)
    after_connect: list[str] = []
    #: new connections to this server per second, for all users together: a restart with
    #: many users must not look like a clone flood (reconnects are also spread at random)
    connections_per_second: float = Field(default=DEFAULT_CONNECTIONS_PER_SECOND, gt=0)
    #: connections the gateway holds to this server at most (the network's limit per IP);
    #: unset: no limit. A connection over it fails and is retried with the backoff.
    max_connections: int | None = Field(default=None, ge=1)
    #: WEBIRC password the network gave this gateway: each user then shows on IRC with a
    #: pseudonymous host and IP of their own (webirc.py), not the gateway's address
    webirc_password: SecretStr | None = None
    #: where the server has no IRCv3 message-tags, an XMPP reaction is said as a line
    #: ("* alice reacted 👍 to bob: "hello…""); off, it is not sent to IRC at all
    reactions_as_text: bool = True
    #: what users may change for this server; unset: the transport's ``user_settable``
    user_settable: list[UserSetting] | None = None
    #: the commands users may add after connecting; unset: the transport's
    #: ``user_after_connect``
    user_after_connect: list[str] | None = None

    _rules = field_validator("user_after_connect")(_check_rules)

    @field_validator("encoding", "fallback_encoding")
    @classmethod
    def _encoding(cls, value: str) -> str:
        try:
            check_encoding(value)
        except UnsafeLine as exc:
            raise ValueError(str(exc)) from None
        return value


class IrcSettings(TransportSettings):
    """IRC: channels as MUC rooms, nicks for private messages."""

    #: per-server defaults, by host name
    servers: dict[str, IrcServerSettings] = {}
    #: serve only this server: JIDs become #chan@gw and nick@gw
    fixed_server: str | None = None
    #: allow servers not listed in ``servers`` (with default settings); off, it is no
    #: open door to arbitrary hosts
    allow_other_servers: bool = False
    #: networks such servers (and hosts or ports users set) may be on, besides public
    #: addresses; loopback, private and link-local ones are refused otherwise
    allow_networks: list[str] = []
    #: what users may change of a server, unless its own ``user_settable`` says otherwise
    user_settable: list[UserSetting] = list(DEFAULT_USER_SETTABLE)
    #: commands users may send after connecting, as "COMMAND" or "COMMAND target" rules
    #: compared with the parsed line ("PRIVMSG NickServ", "MODE {nick}"); empty: none
    user_after_connect: list[str] = []
    #: IRC connections one user may hold at once (one per server)
    max_connections_per_user: int = Field(default=10, ge=1)

    _rules = field_validator("user_after_connect")(_check_rules)

    @field_validator("allow_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        parse_networks(value)
        return value

    #: lines of room history sent on join (XEP-0203 delayed)
    history_lines: int = Field(default=20, ge=0)
    #: keep room messages in the per-user archive (history on join, MAM)
    archive_rooms: bool = True
    #: keep private messages too
    archive_private: bool = False
    #: reconnect attempts after the server drops us, with backoff, before giving up
    reconnect_attempts: int = Field(default=10, ge=0)
    #: first backoff delay in seconds (doubled each time, up to reconnect_max_delay)
    reconnect_delay: float = Field(default=1.0, gt=0)
    reconnect_max_delay: float = Field(default=60.0, gt=0)
    #: answer ident (RFC 1413) queries for the gateway's IRC connections on this port
    #: (113, or a port 113 is redirected to); unset: no identd
    identd_port: Port | None = None
    #: the address identd listens on
    identd_host: str = "0.0.0.0"
    #: the answer to CTCP VERSION
    version_reply: str = "Portway XMPP gateway"
