"""The "IRC server settings" form: which server, and what is kept of a submitted form.

Clients send back every field pre-filled; what equals the admin's value must not become the
user's own, or the admin's next change would never reach them.
"""

from __future__ import annotations

from transports.irc.settings import IrcServerSettings
from transports.irc.settings_command import server_choice, server_of, without_admin_values

CONFIG = IrcServerSettings.model_validate({"port": 6697, "tls": True, "encoding": "utf-8"})


def test_values_equal_to_the_admins_are_not_kept() -> None:
    submitted = {
        "host": "irc.example",
        "port": 6697,
        "tls": True,
        "verify_cert": True,
        "throttle": True,
        "encoding": "utf-8",
        "nick": "alicia",
    }
    assert without_admin_values("irc.example", CONFIG, submitted) == {"nick": "alicia"}


def test_values_that_differ_from_the_admins_are_kept() -> None:
    own = {"port": 6667, "tls": False, "throttle": False, "encoding": "latin-1"}
    assert without_admin_values("irc.example", CONFIG, own) == own


def test_the_configured_servers_are_offered_as_a_list() -> None:
    (field,) = server_choice(["irc.example", "irc.other"], allow_other=False)
    assert (field.var, field.type, field.required) == ("server", "list-single", True)
    assert field.options == (("irc.example", "irc.example"), ("irc.other", "irc.other"))


def test_other_servers_are_typed_where_the_admin_allows_them() -> None:
    listed, other = server_choice(["irc.example"], allow_other=True)
    assert listed.type == "list-single" and not listed.required
    assert (other.var, other.type) == ("other_server", "text-single")
    (only,) = server_choice([], allow_other=True)
    assert only.required and only.type == "text-single"
    # A server typed in wins over the list's default choice.
    assert server_of({"server": "irc.example", "other_server": "IRC.Typed"}, None) == "irc.typed"
    assert server_of({"server": "irc.example", "other_server": ""}, None) == "irc.example"
