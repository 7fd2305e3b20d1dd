"""config.example.yaml is valid, and documents every option the code accepts."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from component.cli import main
from component.config import Config, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"
#: the variables the example's values use; those its comments mention are for options left
#: commented out, and need not be set
VALUES = "\n".join(
    line for line in EXAMPLE.read_text().splitlines() if not line.lstrip().startswith("#")
)
ENVIRONMENT = {
    name: f"example-{name.lower()}-value" for name in re.findall(r"\$\{([A-Z_]+)", VALUES)
} | {"TWILIO_ACCOUNT_SID": "AC" + "0123456789abcdef" * 2}


def option_names(model: type[BaseModel]) -> set[str]:
    names: set[str] = set()
    for name, field in model.model_fields.items():
        names.add(name)
        for nested in _models(field.annotation):
            names |= option_names(nested)
    return names


def _models(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    origin = typing.get_origin(annotation)
    if origin is not None or isinstance(annotation, types.UnionType):
        for argument in typing.get_args(annotation):
            found += _models(argument)
    return found


def test_example_is_valid() -> None:
    config = load_config(EXAMPLE, ENVIRONMENT)
    assert set(config.transports.enabled()) == {"irc", "sms", "email", "webhook"}


def test_check_config_passes_on_the_example(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`portway check-config config.example.yaml`, with only the variables its values use."""
    commented = set(re.findall(r"\$\{([A-Z_]+)", EXAMPLE.read_text())) - set(ENVIRONMENT)
    assert commented, "the example's comments mention variables: this test must see them"
    for name in commented:
        monkeypatch.delenv(name, raising=False)
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    code = main(["check-config", str(EXAMPLE)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert printed.out == f"{EXAMPLE}: OK (transports: irc, sms, email, webhook)\n"


def test_example_documents_every_option() -> None:
    text = EXAMPLE.read_text()
    written = set(re.findall(r"^[\s#-]*([a-z_]+):", text, re.MULTILINE))
    written |= set(re.findall(r"[{,]\s*([a-z_]+):", text))
    missing = sorted(option_names(Config) - written)
    assert not missing, f"config.example.yaml does not mention: {missing}"
