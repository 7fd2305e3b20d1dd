"""Config validation: the admin sees which field is wrong and why."""

from __future__ import annotations

import copy
import re
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from component.cli import main
from component.config import Config, ConfigError, parse_config
from component.config_errors import PATTERN_WORDS

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
    assert found[0] in (
        "transports.irc.secret is empty",
        "transports.irc.secret is a placeholder; set a real secret",
    )


def test_unset_environment_variable() -> None:
    assert problems(GOOD, {}) == ["line 10: environment variable IRC_SECRET is not set"]


def test_environment_default() -> None:
    text = GOOD.replace("${IRC_SECRET}", "a ${X:-fallback} b")
    assert parse_config(text, {}).transports.irc.secret.get_secret_value() == "a fallback b"  # type: ignore[union-attr]
    set_ = parse_config(text, {"X": "set"}).transports.irc.secret  # type: ignore[union-attr]
    assert set_.get_secret_value() == "a set b"


def test_unknown_key_is_an_error() -> None:
    found = problems(GOOD.replace("admins:", "admin:"))
    assert "admin is not a known option (check the spelling against config.example.yaml)" in found


def test_missing_required_sections() -> None:
    found = problems("xmpp: {port: 5347}\n")
    assert "allowed_domains is required" in found
    assert "transports is required" in found


def test_bad_database_url() -> None:
    found = problems(GOOD.replace("sqlite:///tmp/portway-test.db", "mysql://x"))
    assert found[0].startswith("database: expected sqlite:///PATH or postgresql://")


def test_not_yaml_and_not_a_mapping() -> None:
    assert problems("xmpp: [unclosed") == [
        "line 1, column 16: not valid YAML: expected ',' or ']', but got '<stream end>'"
        " (while parsing a flow sequence on line 1)"
    ]
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


def test_comments_may_name_unset_variables() -> None:
    text = GOOD.replace(
        "admins: [admin@example.org]",
        "# password: ${UNSET_IN_A_COMMENT}\nadmins: [admin@example.org]  # or ${ALSO_UNSET}",
    )
    config = parse_config(text, {"IRC_SECRET": "s3cret-value"})
    assert config.admins == ["admin@example.org"]


def test_a_value_from_the_environment_is_taken_as_it_is() -> None:
    """`#`, `: ` and quotes in a secret are part of it, not YAML."""
    secret = "a#b: 'c\" d"
    text = GOOD.replace("transports:", "log_level: ${LEVEL}\ntransports:").replace(
        '"${IRC_SECRET}"', "${IRC_SECRET}"
    )
    text = text.replace("{port: 6697, tls: true}", "{port: ${PORT}, tls: ${TLS}}")
    env = {"IRC_SECRET": secret, "LEVEL": "DEBUG", "PORT": "7000", "TLS": "false"}
    config = parse_config(text, env)
    irc = config.transports.irc
    assert irc is not None and irc.secret.get_secret_value() == secret
    assert config.log_level == "DEBUG"
    server = irc.servers["irc.libera.chat"]
    assert (server.port, server.tls) == (7000, False)


def test_a_key_is_never_expanded() -> None:
    found = problems(GOOD.replace("admins:", "${KEY}:"), {"IRC_SECRET": "x1x2x3", "KEY": "admins"})
    assert found == [
        "${KEY} is not a known option (check the spelling against config.example.yaml)"
    ]


def test_yaml_errors_name_the_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "portway.yaml"
    broken.write_text(GOOD.replace("admins: [admin@example.org]", "admins: [admin@example.org"))
    assert main(["check-config", str(broken)]) == 2
    assert capsys.readouterr().err == (
        f"{broken}: line 6, column 16: not valid YAML: expected ',' or ']', but got ':'"
        " (while parsing a flow sequence on line 5)\n"
    )
    tabbed = tmp_path / "tabbed.yaml"
    tabbed.write_text(GOOD.replace("    jid: irc.example.org", "\tjid: irc.example.org"))
    assert main(["check-config", "-c", str(tabbed)]) == 2
    assert capsys.readouterr().err.startswith(f"{tabbed}: line 9, column 1: not valid YAML: ")
    unset = tmp_path / "unset.yaml"
    unset.write_text(GOOD)
    assert main(["check-config", str(unset)]) == 2
    assert capsys.readouterr().err == (
        f"{unset}: line 10: environment variable IRC_SECRET is not set\n"
    )


def test_two_transports_on_one_domain_are_refused() -> None:
    text = GOOD + "  webhook: {jid: IRC.example.org, secret: hooks-s3cret}\n"
    assert problems(text) == [
        "transports: transports.irc.jid and transports.webhook.jid are both irc.example.org;"
        " each transport is its own component and needs a domain of its own"
    ]


@pytest.mark.parametrize("written", ['""', "", "'   '", "${EMPTY}"])
def test_an_empty_secret_says_so(written: str) -> None:
    text = GOOD.replace('"${IRC_SECRET}"', written)
    assert problems(text, {"EMPTY": ""}) == ["transports.irc.secret is empty"]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (
            "log_level: LOUD",
            "log_level must be one of DEBUG, INFO, WARNING, ERROR, not 'LOUD'",
        ),
        ("log_format: xml", "log_format must be one of text, json, not 'xml'"),
        (
            "xmpp: {max_stanza_bytes: 100}",
            "xmpp.max_stanza_bytes must be at least 4096, not 100",
        ),
        (
            "xmpp: {reconnect_max_seconds: 0}",
            "xmpp.reconnect_max_seconds must be more than 0, not 0",
        ),
        ("xmpp: {host: [a, b]}", "xmpp.host must be text, not ['a', 'b']"),
        (
            "xmpp: {max_stanza_bytes: lots}",
            "xmpp.max_stanza_bytes must be a whole number, not 'lots'",
        ),
        ("xmpp: 5347", "xmpp must be a section (one 'option: value' per line under it), not 5347"),
        ("xmpp:", "xmpp is empty"),
        ("allowed_domains: []", "allowed_domains must be a list of at least 1 entry, not []"),
        (
            "admins: admin@example.org",
            "admins must be a list ([a, b], or one '- item' per line), not 'admin@example.org'",
        ),
    ],
)
def test_errors_are_sentences_naming_the_option(line: str, problem: str) -> None:
    key = line.partition(":")[0]
    text = "\n".join(row for row in GOOD.splitlines() if not row.startswith(f"{key}:"))
    assert problems(f"{text}\n{line}\n") == [problem]


SMS = """  sms:
    jid: sms.example.org
    secret: sms-s3cret
    account_sid: AC0123456789abcdef0123456789abcdef
    auth_token: twilio-t0ken
"""


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            "AC0123456789abcdef0123456789abcdef",
            "AC123",
            "transports.sms.account_sid must be a Twilio Account SID: AC followed by 32"
            " hexadecimal digits, not 'AC123'",
        ),
        (
            "auth_token: twilio-t0ken",
            "auth_token: twilio-t0ken\n    default_region: gb",
            "transports.sms.default_region must be a two-letter country code in capitals, such"
            " as US or GB, not 'gb'",
        ),
    ],
)
def test_patterns_are_explained_in_words(old: str, new: str, problem: str) -> None:
    assert problems(GOOD + SMS.replace(old, new)) == [problem]


def test_hook_patterns_are_explained_in_words() -> None:
    hooks = (
        "  webhook:\n    jid: hooks.example.org\n    secret: hooks-s3cret\n"
        "    hooks: [{name: Alerts!, owner: a@example.org, token: t0ken-x, url: 'ftp://x y'}]\n"
    )
    assert problems(GOOD + hooks) == [
        "transports.webhook.hooks.0.name must be a hook name: up to 64 lower-case letters,"
        " digits, '.', '_' or '-', starting with a letter or digit, not 'Alerts!'",
        "transports.webhook.hooks.0.url must be an http:// or https:// URL, without spaces,"
        " not 'ftp://x y'",
    ]


def _models(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for argument in typing.get_args(annotation) for model in _models(argument)]


def _fields(model: type[BaseModel]) -> Iterator[tuple[str, FieldInfo]]:
    for name, field in model.model_fields.items():
        yield name, field
        for nested in _models(field.annotation):
            yield from _fields(nested)


def test_every_pattern_has_words() -> None:
    patterns = {
        str(meta.pattern)
        for _name, field in _fields(Config)
        for meta in field.metadata
        if getattr(meta, "pattern", None)
    }
    assert patterns, "the walk found no pattern: it is broken"
    assert patterns <= set(PATTERN_WORDS), patterns - set(PATTERN_WORDS)


FULL: dict[str, Any] = {
    "allowed_domains": ["example.org"],
    "transports": {
        "irc": {
            "jid": "irc.example.org",
            "secret": "irc-s3cret",
            "servers": {"irc.libera.chat": {"port": 6697}},
        },
        "sms": {
            "jid": "sms.example.org",
            "secret": "sms-s3cret",
            "account_sid": "AC" + "0" * 32,
            "auth_token": "twilio-t0ken",
        },
        "email": {
            "jid": "mail.example.org",
            "secret": "mail-s3cret",
            "domain": "mail.example.org",
            "smarthost": {"host": "smtp.example.org"},
        },
        "webhook": {
            "jid": "hooks.example.org",
            "secret": "hooks-s3cret",
            "hooks": [{"name": "alerts", "owner": "a@example.org", "token": "t0ken-abc"}],
        },
    },
}
BAD_VALUES: list[Any] = [None, "", "x y", [1], {"a": 1}, -1, 0, 10**12, 1.5, "ZZ", True, 987654321]
PROGRAMMER_WORDS = re.compile(
    r"Input should|String should|should be|Field required|Extra inputs|instance of|pydantic"
    r"|Value error|Assertion|\^|\{32\}|\\S|Settings\b|type="
)


def _option_paths(model: type[BaseModel], at: list[Any]) -> Iterator[list[Any]]:
    for name, field in model.model_fields.items():
        yield [*at, name]
        for nested in _models(field.annotation):
            inner: list[Any] = [*at, name]
            if typing.get_origin(field.annotation) is dict:
                inner.append("irc.libera.chat")
            elif typing.get_origin(field.annotation) is list:
                inner.append(0)
            yield from _option_paths(nested, inner)


def _with(data: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(data)
    node: Any = changed
    for part in path[:-1]:
        node = node.setdefault(part, {}) if isinstance(node, dict) else node[part]
    node[path[-1]] = value
    return changed


def test_every_validation_error_is_a_sentence_naming_the_option() -> None:
    """Each option, given each kind of wrong value: no regex, no pydantic wording, and an
    option that holds a secret never has its value repeated."""
    parse_config(yaml.safe_dump(FULL), {})
    seen = 0
    for path in _option_paths(Config, []):
        for value in BAD_VALUES:
            try:
                parse_config(yaml.safe_dump(_with(FULL, path, value)), {})
            except ConfigError as error:
                found = error.problems
            else:
                continue
            for problem in found:
                seen += 1
                first = re.split(r"[.\[ :]", problem, maxsplit=1)[0]
                assert first in Config.model_fields, (path, value, problem)
                assert not PROGRAMMER_WORDS.search(problem), (path, value, problem)
                if re.search("secret|token|password", str(path[-1])):
                    assert "987654321" not in problem, problem
    assert seen > 500
