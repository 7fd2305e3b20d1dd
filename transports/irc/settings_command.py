"""The "IRC server settings" ad-hoc command: a user's own settings for one server.

The form offers only what the admin lets users change for that server (``user_settable``,
and after-connect lines when ``user_after_connect`` allows some); a value submitted for
anything else is refused with the reason, never quietly dropped or stored. A host or port
the user sets is checked when submitted, with the rule every connection is held to
(transports.egress), so that a refused address is heard of at once.

Only what the user changed is kept. Clients send back every field of the form, pre-filled
with the admin's values; kept as the user's own, those would outlive the admin's next change
of them. So a value equal to the admin's is no override.
"""

from __future__ import annotations

from typing import Any

from transports.base import AddressError, Form, FormField, GatewayError
from transports.egress import REFUSED_TEXT, RefusedDestination, resolve_allowed
from transports.irc.addressing import check_channel, check_nick
from transports.irc.addressing import parse_address as parse_irc_address
from transports.irc.after_connect import OWN_NICK, LineRefused, check_line
from transports.irc.protocol import UnsafeLine, check_encoding
from transports.irc.settings import IrcServerSettings
from transports.irc.user_settings import ServerPolicy, refused_fields

SETTINGS_SCOPE = "server:"

#: Labels of the fields users may be allowed to change, in the form's order.
LABELS = {
    "nick": "Nick",
    "username": "User name (also the SASL account)",
    "realname": "Real name",
    "host": "Host to connect to",
    "port": "Port",
    "tls": "Use TLS",
    "verify_cert": "Check the server's certificate",
    "password": "Server password",
    "sasl_password": "SASL password (account: user name)",
    "after_connect": "Commands after connecting",
    "throttle": "Anti-flood throttling",
    "encoding": "Encoding",
    "persistent_rooms": "Persistent channels (stay joined when offline)",
    "reactions_as_text": "Reactions as a line where the server has no message-tags",
}
TEXT_MULTI = ("after_connect", "persistent_rooms")
BOOLEANS = ("tls", "verify_cert", "throttle", "reactions_as_text")
SECRETS = ("password", "sasl_password")
#: The first step's field for a server the config does not list (``allow_other_servers``).
OTHER_SERVER = "other_server"


def server_choice(servers: list[str], allow_other: bool) -> tuple[FormField, ...]:
    """The first step's question: one of the configured servers, or (if allowed) another."""
    fields = []
    if servers:
        options = tuple((server, server) for server in servers)
        fields.append(
            FormField(
                "server", "Server", "list-single", servers[0], not allow_other, options=options
            )
        )
    if allow_other or not servers:
        label = "Or another server" if servers else "Server"
        fields.append(FormField(OTHER_SERVER, label, required=not servers))
    return tuple(fields)


def admin_values(server: str, config: IrcServerSettings) -> dict[str, Any]:
    """What the form shows where the user has no override of their own."""
    return {
        "host": config.host or server,
        "port": config.port,
        "tls": config.tls,
        "verify_cert": config.verify_cert,
        "throttle": True,
        "encoding": config.encoding,
        "reactions_as_text": config.reactions_as_text,
    }


def settings_form(
    server: str,
    config: IrcServerSettings,
    policy: ServerPolicy,
    overrides: dict[str, Any],
    default_nick: str,
    ask_server: bool,
) -> Form:
    """The settings, pre-filled; only the fields the admin lets users change."""
    o = policy.usable(overrides)
    current = {
        key: value if o.get(key) in (None, "") else o[key]
        for key, value in admin_values(server, config).items()
    }
    current["port"] = str(current["port"])
    fields: list[FormField] = []
    if ask_server:
        fields.append(FormField("server", "Server", "text-single", server, required=True))
    for key, label in LABELS.items():
        if key not in policy.form_fields:
            continue
        if key in SECRETS:
            fields.append(FormField(key, label, "text-private"))
        elif key in BOOLEANS:
            fields.append(FormField(key, label, "boolean", current[key]))
        elif key in TEXT_MULTI:
            desc = None
            if key == "after_connect":
                nick = o.get("nick") or default_nick
                allowed = ", ".join(
                    str(r).replace(OWN_NICK, nick) for r in policy.after_connect_rules
                )
                desc = f"One command a line; allowed: {allowed}"
            value = "\n".join(o.get(key, []))
            fields.append(FormField(key, label, "text-multi", value, desc=desc))
        else:
            fields.append(FormField(key, label, value=current.get(key, o.get(key, ""))))
    return Form(
        title=f"Settings for {server}",
        instructions="Your own settings for this server; empty fields keep the defaults.",
        fields=tuple(fields),
    )


async def validated(
    server: str,
    config: IrcServerSettings,
    policy: ServerPolicy,
    stored: dict[str, Any],
    values: dict[str, Any],
    default_nick: str,
) -> dict[str, Any]:
    """The user's new overrides, from the stored ones and the submitted values.

    GatewayError (nothing stored) for a field the admin keeps, or a bad value.
    """
    refused = refused_fields(policy, list(values))
    if refused:
        raise GatewayError(
            f"{', '.join(refused)}: only the gateway's admin may change "
            f"{'this' if len(refused) == 1 else 'these'} for {server}",
            "not-allowed",
            "cancel",
        )
    data = policy.usable(stored)
    for key in ("nick", "username", "realname", "encoding", "host"):
        if key in values:
            data[key] = str(values[key] or "").strip()
    if data.get("nick"):
        check_nick(data["nick"])
    if data.get("encoding"):
        try:
            check_encoding(data["encoding"])
        except UnsafeLine as exc:
            raise _bad(str(exc)) from None
    if "port" in values:
        port = str(values["port"] or "").strip()
        if port and (not port.isdigit() or not 0 < int(port) < 65536):
            raise _bad(f"not a port: {port!r}")
        data["port"] = int(port) if port else None
    for key in BOOLEANS:
        if key in values:
            data[key] = bool(values[key])
    for key in SECRETS:
        if str(values.get(key) or ""):
            data[key] = str(values[key])
    if "after_connect" in values:
        nick = data.get("nick") or default_nick
        lines = [c for c in str(values["after_connect"] or "").splitlines() if c.strip()]
        try:
            data["after_connect"] = [check_line(c, policy.after_connect_rules, nick) for c in lines]
        except LineRefused as exc:
            raise GatewayError(str(exc), "not-allowed", "modify") from None
    if "persistent_rooms" in values:
        rooms = [r.strip().lower() for r in str(values["persistent_rooms"] or "").split()]
        data["persistent_rooms"] = [check_channel(r) for r in rooms if r]
    if "host" in values or "port" in values:
        await _check_destination(server, config, policy, data)
    return {key: value for key, value in data.items() if value not in (None, "")}


async def _check_destination(
    server: str, config: IrcServerSettings, policy: ServerPolicy, data: dict[str, Any]
) -> None:
    """A host or port of the user's own is held to the egress rule now, not only at connect."""
    admin_host = config.host or server
    host = str(data.get("host") or admin_host)
    port = int(data.get("port") or config.port)
    if policy.listed and host.lower() == admin_host.lower() and port == config.port:
        return
    if any(char in host for char in " /@:") and not host.startswith("["):
        raise _bad(f"not a host name: {host!r}")
    try:
        await resolve_allowed(host, port, policy.allowed_networks)
    except RefusedDestination:
        raise GatewayError(f"{host}: {REFUSED_TEXT}", "not-allowed", "modify") from None
    except OSError as exc:
        raise _bad(str(exc)) from None


def _bad(text: str) -> GatewayError:
    return GatewayError(text, "bad-request", "modify")


def without_admin_values(
    server: str, config: IrcServerSettings, data: dict[str, Any]
) -> dict[str, Any]:
    """The overrides worth keeping: a value equal to the admin's would only freeze it."""
    admin = admin_values(server, config)
    return {key: value for key, value in data.items() if admin.get(key, None) != value}


def server_of(values: dict[str, Any], fixed_server: str | None) -> str:
    """The server named in the first step's form (or the fixed one)."""
    if fixed_server:
        return fixed_server
    server = str(values.get(OTHER_SERVER) or values.get("server") or "").strip().lower()
    if parse_irc_address(server).kind != "server":
        raise AddressError(f"not a server name: {server!r}")
    return server
