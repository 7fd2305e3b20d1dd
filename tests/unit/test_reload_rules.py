"""What a reload (SIGHUP) changes: the rules of component/reload.py, without servers.

The e2e tests (tests/e2e/test_reload.py) show a few reloads against real servers; these pin
each rule: what takes effect, what re-attaches a component (its jid or secret, alone), what
waits for a restart and stays as it runs, and that a file that does not validate leaves the
running config as it was.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from component.config import Config
from component.gateway import Gateway
from component.reload import AT_RESTART, ReloadPlan, plan_reload, running_config

BASE: dict[str, Any] = {
    "xmpp": {"host": "127.0.0.1", "port": 5347},
    "database": "sqlite:///tmp/portway-reload-test.db",
    "http": {"listen": "127.0.0.1:8380", "public_url": "https://gw.example.org/"},
    "admins": ["admin@example.org"],
    "allowed_domains": ["example.org"],
    "log_level": "INFO",
    "transports": {
        "irc": {
            "jid": "irc.example.org",
            "secret": "irc-s3cret-value",
            "servers": {"irc.localhost": {"port": 6667, "tls": False}},
        },
        "webhook": {
            "jid": "hooks.example.org",
            "secret": "hooks-s3cret-value",
            "hooks": [{"name": "alerts", "owner": "alice@example.org", "token": "t" * 24}],
        },
    },
}


def config(change: Any = None) -> Config:
    """The base config, with ``change(data)`` applied to its raw form first."""
    data = copy.deepcopy(BASE)
    if change is not None:
        change(data)
    return Config.model_validate(data)


def transport(name: str, **values: Any) -> Any:
    def change(data: dict[str, Any]) -> None:
        data["transports"][name].update(values)

    return change


def irc_server(**values: Any) -> Any:
    def change(data: dict[str, Any]) -> None:
        data["transports"]["irc"]["servers"]["irc.localhost"].update(values)

    return change


# -- plan_reload ----------------------------------------------------------------------------------


def test_the_same_config_changes_nothing() -> None:
    assert plan_reload(config(), config()) == ReloadPlan()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("admins", ["root@example.org"]),
        ("allowed_domains", ["example.org", "example.net"]),
        ("log_level", "DEBUG"),
        ("retention", {"outbox_days": 1, "interval_minutes": 5}),
    ],
)
def test_gateway_wide_settings_take_effect_without_a_restart(key: str, value: Any) -> None:
    old, new = config(), config(lambda data: data.update({key: value}))
    assert plan_reload(old, new) == ReloadPlan()  # no re-attach, nothing waits
    assert getattr(running_config(old, new), key) == getattr(new, key)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("database", "sqlite:///tmp/elsewhere.db"),
        ("http", {"listen": "127.0.0.1:9999", "public_url": "https://gw.example.org/"}),
        ("xmpp", {"host": "127.0.0.1", "port": 5348}),
        ("log_format", "json"),
    ],
)
def test_what_needs_a_new_listener_or_stream_waits_and_keeps_running_as_it_was(
    key: str, value: Any
) -> None:
    old, new = config(), config(lambda data: data.update({key: value}))
    assert plan_reload(old, new) == ReloadPlan(at_restart=[key])
    assert getattr(running_config(old, new), key) == getattr(old, key)


def test_the_restart_list_is_the_one_the_readme_names() -> None:
    assert set(AT_RESTART) == {"database", "http", "xmpp", "log_format"}


@pytest.mark.parametrize(
    "change",
    [
        transport("irc", jid="irc2.example.org"),
        transport("irc", secret="another-s3cret-value"),
        transport("irc", jid="irc2.example.org", secret="another-s3cret-value"),
    ],
)
def test_a_new_jid_or_secret_reattaches_that_component_alone(change: Any) -> None:
    plan = plan_reload(config(), config(change))
    assert plan == ReloadPlan(reattach=["irc"])  # the webhook component stays attached


def test_a_changed_secret_is_seen_but_never_shown() -> None:
    plan = plan_reload(config(), config(transport("webhook", secret="brand-new-s3cret")))
    assert plan.reattach == ["webhook"]
    assert "s3cret" not in repr(plan)


@pytest.mark.parametrize(
    "change",
    [
        irc_server(realname="Relayed by Portway"),
        irc_server(username="relayed", encoding="latin-1"),
        transport("irc", servers={"irc.localhost": {"port": 6667}, "other": {"port": 6697}}),
        transport("webhook", rate_per_minute=5),
        transport(
            "webhook",
            hooks=[{"name": "deploys", "owner": "alice@example.org", "token": "d" * 24}],
        ),
    ],
)
def test_other_settings_of_a_transport_are_handed_to_it_without_reattaching(change: Any) -> None:
    old, new = config(), config(change)
    plan = plan_reload(old, new)
    assert plan.reattach == [] and plan.at_restart == []
    assert len(plan.changed) == 1
    (name,) = plan.changed
    assert running_config(old, new).transports.enabled()[name] == new.transports.enabled()[name]


def test_a_new_jid_with_other_changes_reattaches_and_hands_over_the_rest() -> None:
    def change(data: dict[str, Any]) -> None:
        transport("webhook", jid="hooks2.example.org", rate_per_minute=5)(data)
        irc_server(realname="Relayed")(data)

    plan = plan_reload(config(), config(change))
    assert plan == ReloadPlan(reattach=["webhook"], changed=["irc", "webhook"])


def test_a_transport_added_or_removed_waits_and_the_running_set_stays() -> None:
    email = {
        "jid": "mail.example.org",
        "secret": "mail-s3cret-value",
        "domain": "mail.example.org",
        "smtp_listen": "127.0.0.1:2525",
        "smarthost": {"host": "127.0.0.1", "port": 25},
    }

    def swap(data: dict[str, Any]) -> None:
        del data["transports"]["webhook"]
        data["transports"]["email"] = email
        irc_server(realname="Relayed")(data)

    old, new = config(), config(swap)
    plan = plan_reload(old, new)
    assert plan.at_restart == ["transports.email (added)", "transports.webhook (removed)"]
    assert plan.changed == ["irc"] and plan.reattach == []
    running = running_config(old, new)
    assert set(running.transports.enabled()) == {"irc", "webhook"}
    assert running.transports.webhook == old.transports.webhook  # it runs on, as it was
    assert running.transports.irc == new.transports.irc  # what runs takes its change


def test_what_waits_is_named_again_at_the_next_reload() -> None:
    """running_config keeps the running values, so a second SIGHUP with the same file still
    says that the change waits for a restart, instead of forgetting it."""
    old = config()
    new = config(lambda data: data.update({"database": "sqlite:///tmp/elsewhere.db"}))
    running = running_config(old, new)
    assert plan_reload(running, new).at_restart == ["database"]
    # A change of what takes effect is applied once: the next reload finds nothing new.
    new = config(irc_server(realname="Relayed"))
    assert plan_reload(running_config(old, new), new) == ReloadPlan()


# -- a reload of a file that does not validate ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("allowed_domains: [example.org\n", "line"),
        (yaml.safe_dump({**BASE, "log_level": "LOUD"}), "log_level"),
        (yaml.safe_dump({**BASE, "allowed_domains": []}), "allowed_domains"),
    ],
)
async def test_a_bad_file_keeps_the_running_config(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str, reason: str
) -> None:
    path = tmp_path / "portway.yaml"
    running = config()
    gateway = Gateway(running, path)
    path.write_text(text)
    with caplog.at_level(logging.ERROR):
        await gateway.reload()
    assert gateway.config is running
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.getMessage().startswith("config not reloaded, the running one stays: ")
    assert str(path) in record.getMessage() and reason in record.getMessage()
    assert record.exc_info is None  # one clear line, no traceback
