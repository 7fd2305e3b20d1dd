"""Loading and validating the YAML config into typed objects.

Errors name the field and the value (``xmpp.port: not a valid port: 'notaport'``) because the
person reading them is an admin with the file open, not a Python programmer.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from component.config_env import YamlProblem, load_yaml
from component.config_errors import describe
from component.retention import RetentionSettings
from transports.email.settings import EmailSettings
from transports.irc.settings import IrcSettings
from transports.settings import HostPort, Port, Section
from transports.sms.settings import SmsSettings
from transports.webhook.settings import WebhookSettings


class ConfigError(Exception):
    """The config cannot be used; ``problems`` holds one line each, naming the option."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class XmppSettings(Section):
    """Where the XMPP server's component listener (XEP-0114) is."""

    host: str = "127.0.0.1"
    port: Port = 5347
    reconnect_max_seconds: float = Field(default=60.0, gt=0)
    #: The largest stanza handed to the server. Prosody's component limit is 512 KiB and
    #: ejabberd's 256 KiB by default; a stanza past it closes the stream, so this stays below.
    max_stanza_bytes: int = Field(default=131072, ge=4096, le=16 * 1024 * 1024)
    #: The HTTP upload service (XEP-0363) to put users' incoming files on, e.g.
    #: upload.example.org; none: found on each user's server (disco), else ``/media``
    upload_service: str | None = None


class HttpSettings(Section):
    """The one HTTP listener for callbacks, hooks, media, /healthz and /metrics."""

    listen: HostPort = ("127.0.0.1", 8380)
    public_url: str = "http://127.0.0.1:8380"

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+(/\S*)?$", value):
            raise ValueError(f"not an http(s) URL: {value!r}")
        return value.rstrip("/")


class Transports(Section):
    """A transport is enabled when its section is present."""

    irc: IrcSettings | None = None
    sms: SmsSettings | None = None
    email: EmailSettings | None = None
    webhook: WebhookSettings | None = None

    def enabled(self) -> dict[str, BaseModel]:
        return {
            name: section
            for name in ("irc", "sms", "email", "webhook")
            if (section := getattr(self, name)) is not None
        }

    @model_validator(mode="after")
    def _own_domains(self) -> Transports:
        """Each transport is a component of its own: two on one domain would fight over it."""
        first: dict[str, str] = {}
        for name, section in self.enabled().items():
            jid = getattr(section, "jid", "")
            if jid in first:
                raise ValueError(
                    f"transports.{first[jid]}.jid and transports.{name}.jid are both {jid};"
                    " each transport is its own component and needs a domain of its own"
                )
            first[jid] = name
        return self


class Config(Section):
    """The whole config file."""

    xmpp: XmppSettings = XmppSettings()
    database: str = "sqlite:///var/lib/portway/portway.db"
    http: HttpSettings = HttpSettings()
    admins: list[str] = []
    allowed_domains: list[str] = Field(min_length=1)
    transports: Transports
    retention: RetentionSettings = RetentionSettings()
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    @field_validator("database")
    @classmethod
    def _database(cls, value: str) -> str:
        if not re.match(r"^(sqlite:///.+|postgres(ql)?://.+)$", value):
            raise ValueError(f"expected sqlite:///PATH or postgresql://…, got {value!r}")
        return value

    @field_validator("allowed_domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        return [domain.lower() for domain in value]

    def secrets(self) -> list[str]:
        """Every secret value in the config, so the log filter can mask them."""
        found: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, BaseModel):
                for name in type(node).model_fields:
                    walk(getattr(node, name))
            elif isinstance(node, list | tuple):
                for item in node:
                    walk(item)
            elif isinstance(node, dict):
                for item in node.values():
                    walk(item)
            elif hasattr(node, "get_secret_value"):
                found.append(node.get_secret_value())

        walk(self)
        url_password = re.match(r"^\w+://[^:/@]+:([^@]+)@", self.database)
        if url_password:
            found.append(url_password.group(1))
        return [secret for secret in found if secret]


def parse_config(text: str, environ: dict[str, str] | None = None) -> Config:
    """Validate YAML text into a :class:`Config`, or raise :class:`ConfigError`."""
    try:
        data = load_yaml(text, environ)
    except YamlProblem as problem:
        raise ConfigError(problem.problems) from None
    if not isinstance(data, dict):
        raise ConfigError(["the config must be a mapping of sections (xmpp:, transports:, …)"])
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([describe(error) for error in exc.errors()]) from None


def load_config(path: str | Path, environ: dict[str, str] | None = None) -> Config:
    """Read and validate a config file; each problem starts with the file's name."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"cannot read {path}: {exc.strerror}"]) from None
    try:
        return parse_config(text, environ)
    except ConfigError as error:
        raise ConfigError([f"{path}: {problem}" for problem in error.problems]) from None


def readable_secrets_warning(path: str | Path, config: Config) -> str | None:
    """A warning when the file holds secrets and users other than its owner may read it.

    Only secrets written in the file count: one taken from the environment (``${VAR}``) is
    not in it. The warning names the mode and the fix, never the secret.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None
    if not mode & 0o044 or not any(secret in text for secret in config.secrets()):
        return None
    return (
        f"{path}: warning: readable by other users (mode {mode:04o}) and holds secrets; "
        f"chmod 600 {path}"
    )
