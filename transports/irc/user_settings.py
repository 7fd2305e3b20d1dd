"""A user's settings for an IRC server, merged with the admin's: what the connection uses.

The admin's settings for a server may hold secrets (``password``, ``sasl_password``, lines
such as ``PRIVMSG NickServ :IDENTIFY …``) meant for one place: the admin's host and port,
over the admin's TLS. A user who may change where the gateway connects could otherwise have
those secrets sent elsewhere, in clear, or have the gateway speak to a service that is not
IRC. Hence three rules, applied here and nowhere else:

- only the settings the admin lets users change are read from a user's overrides; others
  stored earlier (before the admin narrowed the list) are ignored;
- the admin's secrets go only to the admin's destination (host, port, TLS, verify_cert);
- a destination that is not the admin's is checked like any other the gateway reaches on a
  user's behalf (transports.egress): public addresses, or the admin's ``allow_networks``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from transports.egress import Network, parse_networks
from transports.irc.after_connect import AfterConnectRule, allowed_lines, parse_rules
from transports.irc.connection import ConnectOptions
from transports.irc.protocol import UnsafeLine, check_encoding
from transports.irc.settings import IrcServerSettings, IrcSettings


@dataclass(frozen=True)
class ServerPolicy:
    """What the admin lets users do with one server."""

    settable: frozenset[str]
    after_connect_rules: tuple[AfterConnectRule, ...]
    #: the admin listed this server: its host and port are the admin's choice, not checked
    listed: bool
    allowed_networks: tuple[Network, ...]

    @classmethod
    def of(cls, settings: IrcSettings, server: str) -> ServerPolicy:
        config = settings.servers.get(server)
        settable = settings.user_settable
        rules = settings.user_after_connect
        if config is not None:
            settable = config.user_settable if config.user_settable is not None else settable
            if config.user_after_connect is not None:
                rules = config.user_after_connect
        return cls(
            frozenset(settable),
            parse_rules(rules),
            config is not None,
            parse_networks(settings.allow_networks),
        )

    @property
    def form_fields(self) -> frozenset[str]:
        """The fields of the settings form: the settable ones, and after-connect lines."""
        return self.settable | ({"after_connect"} if self.after_connect_rules else frozenset())

    def usable(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """The stored overrides the admin lets the user have today."""
        return {key: value for key, value in overrides.items() if key in self.form_fields}


@dataclass(frozen=True)
class Connection:
    """What one user's connection to one server uses."""

    options: ConnectOptions
    after_connect: tuple[str, ...]
    #: host, port, TLS and verify_cert are the admin's (the admin's secrets may be sent)
    admin_destination: bool


def connection_settings(
    server: str,
    config: IrcServerSettings,
    policy: ServerPolicy,
    overrides: Mapping[str, Any],
    nick: str,
) -> Connection:
    """Merge the admin's settings with the user's usable overrides (``nick`` is decided)."""
    o = policy.usable(overrides)
    admin_host = config.host or server
    host = str(o.get("host") or admin_host)
    port = int(o.get("port") or config.port)
    tls = bool(o.get("tls", config.tls))
    verify_cert = bool(o.get("verify_cert", config.verify_cert))
    same_place = host.lower() == admin_host.lower() and port == config.port
    admin_destination = same_place and (tls, verify_cert) == (config.tls, config.verify_cert)

    def secret(key: str, value: Any) -> str | None:
        if o.get(key):
            return str(o[key])
        if admin_destination and value is not None:
            return str(value.get_secret_value())
        return None

    throttle = config.throttle if o.get("throttle", True) else None
    options = ConnectOptions(
        host=host,
        port=port,
        nick=nick,
        tls=tls,
        verify_cert=verify_cert,
        username=o.get("username") or config.username,
        realname=o.get("realname") or config.realname,
        password=secret("password", config.password),
        sasl_password=secret("sasl_password", config.sasl_password),
        encoding=_encoding(o.get("encoding")) or config.encoding,
        fallback_encoding=config.fallback_encoding,
        burst=throttle.burst if throttle else None,
        lines_per_second=throttle.lines_per_second if throttle else 1.0,
        allowed_networks=None if policy.listed and same_place else policy.allowed_networks,
        webirc_password=secret("webirc_password", config.webirc_password),
        connections_per_second=config.connections_per_second,
        max_connections=config.max_connections,
    )
    admin_lines = list(config.after_connect) if admin_destination else []
    user_lines = allowed_lines(
        (str(c) for c in o.get("after_connect", []) if c), policy.after_connect_rules, nick
    )
    return Connection(options, tuple(admin_lines + user_lines), admin_destination)


def _encoding(name: Any) -> str | None:
    """A stored encoding, if it is still one IRC lines may use (UTF-16 and the like are not)."""
    try:
        return check_encoding(str(name)) and str(name) if name else None
    except UnsafeLine:
        return None


def refused_fields(policy: ServerPolicy, submitted: Sequence[str]) -> list[str]:
    """The submitted fields the user may not change (``server`` names the form's server)."""
    named = ("server", "FORM_TYPE")
    return sorted(key for key in submitted if key not in named and key not in policy.form_fields)
