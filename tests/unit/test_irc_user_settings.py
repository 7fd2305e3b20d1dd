"""What users may change of an IRC server, and what their connection then uses.

The pure rules behind "IRC server settings": which fields a user may set, which stored
overrides still count, where the admin's secrets may go, and which addresses are checked.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from transports.base import GatewayError
from transports.irc.settings import IrcServerSettings, IrcSettings
from transports.irc.settings_command import settings_form, validated
from transports.irc.user_settings import ServerPolicy, connection_settings, refused_fields

ADMIN: dict[str, Any] = {
    "host": "irc.internal",
    "port": 6697,
    "tls": True,
    "password": "admin-pass-secret",
    "sasl_password": "admin-sasl-secret",
    "after_connect": ["PRIVMSG NickServ :IDENTIFY admin-nickserv-secret"],
}


def irc(servers: dict[str, Any] | None = None, **options: Any) -> IrcSettings:
    return IrcSettings.model_validate(
        {
            "jid": "irc.example.org",
            "secret": "a-component-secret",
            "servers": {"irc.example": ADMIN} if servers is None else servers,
            **options,
        }
    )


def merged(settings: IrcSettings, overrides: dict[str, Any], server: str = "irc.example") -> Any:
    config = settings.servers.get(server, IrcServerSettings())
    policy = ServerPolicy.of(settings, server)
    return connection_settings(server, config, policy, overrides, "alice")


def test_by_default_users_change_who_they_are_not_where_the_gateway_connects() -> None:
    policy = ServerPolicy.of(irc(), "irc.example")
    assert policy.form_fields == {
        "nick",
        "username",
        "realname",
        "sasl_password",
        "persistent_rooms",
        "encoding",
        "throttle",
    }
    for kept in ("host", "port", "tls", "verify_cert", "password", "after_connect"):
        assert kept not in policy.form_fields


def test_the_server_setting_wins_over_the_transport_default() -> None:
    settings = irc(
        {"irc.example": {**ADMIN, "user_settable": ["nick", "port"]}, "other.example": {}},
        user_settable=["nick", "tls"],
        user_after_connect=["PRIVMSG NickServ"],
    )
    assert ServerPolicy.of(settings, "irc.example").form_fields == {
        "nick",
        "port",
        "after_connect",
    }
    assert ServerPolicy.of(settings, "other.example").settable == {"nick", "tls"}
    # A server not listed (allow_other_servers) has the transport's defaults.
    assert ServerPolicy.of(settings, "unlisted.example").settable == {"nick", "tls"}


def test_refused_fields_names_what_the_admin_keeps() -> None:
    policy = ServerPolicy.of(irc(), "irc.example")
    assert refused_fields(policy, ["server", "nick", "tls", "port", "after_connect"]) == [
        "after_connect",
        "port",
        "tls",
    ]
    assert refused_fields(policy, ["server", "nick", "sasl_password"]) == []


def test_stored_overrides_no_longer_settable_are_ignored() -> None:
    # A database from before the admin narrowed the list may hold all of these.
    stored = {
        "host": "127.0.0.1",
        "port": 4444,
        "tls": False,
        "verify_cert": False,
        "password": "users-pass",
        "after_connect": ["SET pwned 1"],
        "nick": "alicia",
        "encoding": "latin-1",
    }
    connection = merged(irc(), stored)
    options = connection.options
    assert (options.host, options.port, options.tls, options.verify_cert) == (
        "irc.internal",
        6697,
        True,
        True,
    )
    assert options.encoding == "latin-1"
    assert options.password == "admin-pass-secret"
    assert connection.admin_destination
    assert connection.after_connect == ("PRIVMSG NickServ :IDENTIFY admin-nickserv-secret",)
    assert options.allowed_networks is None  # the admin's own host and port: not checked


@pytest.mark.parametrize(
    "override",
    [{"port": 4444}, {"tls": False}, {"verify_cert": False}, {"host": "elsewhere.example"}],
)
def test_the_admins_secrets_go_only_to_the_admins_destination(override: dict[str, Any]) -> None:
    settings = irc(user_settable=["nick", "host", "port", "tls", "verify_cert"])
    connection = merged(settings, override)
    options = connection.options
    assert not connection.admin_destination
    assert options.password is None and options.sasl_password is None
    assert connection.after_connect == ()  # the admin's NickServ line holds a secret too
    # Same destination again: everything is sent.
    same = merged(settings, {"port": 6697, "tls": True, "host": "IRC.internal"})
    assert same.admin_destination and same.options.password == "admin-pass-secret"
    assert same.options.sasl_password == "admin-sasl-secret"


def test_a_destination_of_the_users_own_is_checked() -> None:
    settings = irc(user_settable=["host", "port", "tls"], allow_networks=["10.1.2.0/24"])
    assert merged(settings, {"tls": False}).options.allowed_networks is None
    moved = merged(settings, {"port": 6667}).options
    assert moved.allowed_networks is not None
    assert [str(n) for n in moved.allowed_networks] == ["10.1.2.0/24"]
    assert merged(settings, {"host": "x.example"}).options.allowed_networks is not None
    # A server the admin did not list is always checked.
    unlisted = merged(irc(allow_other_servers=True), {}, server="free.example").options
    assert unlisted.allowed_networks == ()


def test_a_stored_encoding_irc_cannot_use_is_ignored() -> None:
    assert merged(irc(), {"encoding": "utf-16-le"}).options.encoding == "utf-8"
    assert merged(irc(), {"encoding": "latin-1"}).options.encoding == "latin-1"


async def test_an_encoding_irc_cannot_use_is_refused_at_submit() -> None:
    with pytest.raises(GatewayError) as refused:
        await submit(irc(), {"encoding": "utf-16"})
    assert refused.value.condition == "bad-request"
    assert "ASCII" in refused.value.text


def test_the_users_own_secrets_go_where_the_user_says() -> None:
    settings = irc(user_settable=["port", "password", "sasl_password"])
    options = merged(settings, {"port": 7000, "password": "mine", "sasl_password": "my-sasl"})
    assert (options.options.password, options.options.sasl_password) == ("mine", "my-sasl")


def test_stored_after_connect_lines_are_filtered_by_todays_rules() -> None:
    settings = irc(user_after_connect=["PRIVMSG NickServ", "MODE {nick}"])
    stored = {
        "after_connect": [
            "PRIVMSG NickServ :IDENTIFY pw",
            "MODE alice +i",
            "MODE bob +o",
            "SET pwned 1",
            "PRIVMSG NickServ,#chan :hi",
        ]
    }
    lines = merged(settings, stored).after_connect
    assert lines[1:] == ("PRIVMSG NickServ :IDENTIFY pw", "MODE alice +i")
    assert lines[0].startswith("PRIVMSG NickServ :IDENTIFY admin")
    # Rules gone: the stored lines are not sent any more.
    assert merged(irc(), stored).after_connect == (ADMIN["after_connect"][0],)


def test_the_form_offers_only_what_users_may_change() -> None:
    settings = irc()
    config = settings.servers["irc.example"]
    policy = ServerPolicy.of(settings, "irc.example")
    form = settings_form("irc.example", config, policy, {"port": 1}, "alice", ask_server=False)
    assert [f.var for f in form.fields] == [
        "nick",
        "username",
        "realname",
        "sasl_password",
        "throttle",
        "encoding",
        "persistent_rooms",
    ]
    wide = irc(user_settable=["port", "tls"], user_after_connect=["PRIVMSG NickServ"])
    policy = ServerPolicy.of(wide, "irc.example")
    form = settings_form("irc.example", config, policy, {}, "alice", ask_server=True)
    assert [f.var for f in form.fields] == ["server", "port", "tls", "after_connect"]
    assert "PRIVMSG NickServ" in str(form.fields[-1].desc)


async def submit(settings: IrcSettings, values: dict[str, Any]) -> dict[str, Any]:
    config = settings.servers["irc.example"]
    policy = ServerPolicy.of(settings, "irc.example")
    return await validated("irc.example", config, policy, {}, values, "alice")


@pytest.mark.parametrize(
    "values", [{"port": "4444"}, {"tls": False}, {"host": "127.0.0.1"}, {"password": "x"}]
)
async def test_a_field_the_admin_keeps_is_refused_with_the_reason(values: dict[str, Any]) -> None:
    with pytest.raises(GatewayError) as refused:
        await submit(irc(), {"nick": "alicia", **values})
    assert refused.value.condition == "not-allowed"
    field = next(iter(values))
    assert refused.value.text.startswith(f"{field}: only the gateway's admin may change")


@pytest.mark.parametrize("line", ["SET pwned 1", "GET /admin HTTP/1.0", "PRIVMSG NickServ2 :x"])
async def test_after_connect_lines_off_the_list_are_refused_at_submit(line: str) -> None:
    settings = irc(user_after_connect=["PRIVMSG NickServ", "MODE {nick}"])
    with pytest.raises(GatewayError) as refused:
        await submit(settings, {"after_connect": f"PRIVMSG NickServ :IDENTIFY pw\n{line}"})
    assert refused.value.condition == "not-allowed"
    assert "not allowed after connecting" in refused.value.text
    ok = await submit(settings, {"after_connect": "PRIVMSG NickServ :IDENTIFY pw\nMODE alice +i"})
    assert ok["after_connect"] == ["PRIVMSG NickServ :IDENTIFY pw", "MODE alice +i"]


async def test_a_host_or_port_of_the_users_own_must_be_allowed() -> None:
    # The admin's IRC server is on loopback: only its own port is the admin's choice.
    loopback = {**ADMIN, "host": "127.0.0.1"}
    settings = irc({"irc.example": loopback}, user_settable=["host", "port"])
    for values in (
        {"port": "6379"},
        {"host": "169.254.169.254"},
        {"host": "[::ffff:127.0.0.1]"},
        {"host": "10.0.0.1", "port": "6697"},
    ):
        with pytest.raises(GatewayError) as refused:
            await submit(settings, values)
        assert refused.value.condition == "not-allowed", values
        assert refused.value.text.endswith(
            "the address is not allowed (private, loopback or otherwise not public)"
        )
    # The admin's own port on the admin's own host stays allowed.
    assert (await submit(settings, {"port": "6697"}))["port"] == 6697
    allowed = irc({"irc.example": loopback}, user_settable=["port"], allow_networks=["127.0.0.1"])
    assert (await submit(allowed, {"port": "6667"}))["port"] == 6667


def test_config_refuses_unknown_fields_and_loose_rules() -> None:
    with pytest.raises(ValidationError, match="user_settable"):
        irc(user_settable=["nick", "after_connect_everything"])
    with pytest.raises(ValidationError, match="one nick or channel"):
        irc(user_after_connect=["PRIVMSG NickServ,#chan"])
    with pytest.raises(ValidationError, match="not an IRC command"):
        irc(user_after_connect=["NICK-SERV"])
    with pytest.raises(ValidationError, match="allow_networks"):
        irc(allow_networks=["10.0.0.0/33"])
    with pytest.raises(ValidationError, match="max_connections_per_user"):
        irc(max_connections_per_user=0)
