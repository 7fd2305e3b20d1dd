"""Config validation: the admin sees which field is wrong and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from component.cli import main
from component.config import ConfigError, expand_environment, parse_config

GOOD = """
xmpp: {host: 127.0.0.1, port: 5347}
database: sqlite:///tmp/portway-test.db
http: {listen: 127.0.0.1:8380, public_url: https://gw.example.org/}
admins: [admin@example.org]
allowed_domains: [Example.org]
transports:
  irc:
    jid: irc.example.org
    secret: "${IRC_SECRET}"
    servers: {irc.libera.chat: {port: 6697, tls: true}}
"""


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, {"IRC_SECRET": "s3cret-value"} if env is None else env)
    return caught.value.problems


def test_good_config() -> None:
    config = parse_config(GOOD, {"IRC_SECRET": "s3cret-value"})
    assert config.xmpp.port == 5347
    assert config.http.listen == ("127.0.0.1", 8380)
    assert config.http.public_url == "https://gw.example.org"
    assert config.allowed_domains == ["example.org"]
    assert list(config.transports.enabled()) == ["irc"]
    assert "s3cret-value" in config.secrets()
    assert "s3cret-value" not in repr(config)


def test_bad_port_names_field_and_value() -> None:
    assert problems(GOOD.replace("port: 5347", "port: notaport")) == [
        "xmpp.port: not a valid port: 'notaport'"
    ]


@pytest.mark.parametrize("port", ["0", "65536", "-1", "true", "1.5"])
def test_out_of_range_ports(port: str) -> None:
    assert problems(GOOD.replace("port: 5347", f"port: {port}"))[0].startswith(
        "xmpp.port: not a valid port"
    )


@pytest.mark.parametrize("secret", ["changeme", "CHANGEME", "secret", "", "  "])
def test_placeholder_secrets_refused(secret: str) -> None:
    found = problems(GOOD, {"IRC_SECRET": secret})
    assert len(found) == 1
    assert found[0].startswith("transports.irc.secret: ")


def test_unset_environment_variable() -> None:
    assert problems(GOOD, {}) == ["environment variable IRC_SECRET is not set"]


def test_environment_default() -> None:
    assert expand_environment("a ${X:-fallback} b", {}) == "a fallback b"
    assert expand_environment("a ${X:-fallback} b", {"X": "set"}) == "a set b"


def test_unknown_key_is_an_error() -> None:
    found = problems(GOOD.replace("admins:", "admin:"))
    assert "admin: unknown option (check the spelling against config.example.yaml)" in found


def test_missing_required_sections() -> None:
    found = problems("xmpp: {port: 5347}\n")
    assert "allowed_domains: is required" in found
    assert "transports: is required" in found


def test_bad_database_url() -> None:
    found = problems(GOOD.replace("sqlite:///tmp/portway-test.db", "mysql://x"))
    assert found[0].startswith("database: expected sqlite:///PATH or postgresql://")


def test_not_yaml_and_not_a_mapping() -> None:
    assert problems("xmpp: [unclosed")[0].startswith("not valid YAML")
    assert problems("- a\n- b\n") == [
        "the config must be a mapping of sections (xmpp:, transports:, …)"
    ]


def test_check_config_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD.replace("${IRC_SECRET}", "s3cret-value"))
    assert main(["check-config", "-c", str(good)]) == 0
    assert "OK (transports: irc)" in capsys.readouterr().out

    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("port: 5347", "port: notaport").replace("${IRC_SECRET}", "x1x2x3"))
    assert main(["check-config", "--config", str(bad)]) == 2
    assert "xmpp.port: not a valid port: 'notaport'" in capsys.readouterr().err

    assert main(["check-config", "-c", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err
