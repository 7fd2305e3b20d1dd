"""The command line explains itself: a version, and help for every command and argument."""

from __future__ import annotations

import argparse
from importlib.metadata import version

import pytest

from component.cli import main, parser


def test_version_comes_from_the_package(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"portway {version('portway')}\n"


def _commands(
    command: argparse.ArgumentParser, name: str
) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(name, command)]
    for action in command._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                found += _commands(sub, f"{name} {sub_name}")
    return found


def test_every_command_and_argument_has_help() -> None:
    undocumented = []
    commands = _commands(parser(), "portway")
    for name, command in commands:
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                documented = {choice.dest for choice in action._choices_actions}
                undocumented += [f"{name} {sub}" for sub in action.choices if sub not in documented]
                undocumented += [
                    f"{name} {choice.dest}" for choice in action._choices_actions if not choice.help
                ]
            elif not action.help or action.help == argparse.SUPPRESS:
                undocumented.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert len(commands) >= 10
    assert not undocumented, f"no help text: {undocumented}"


@pytest.mark.parametrize(
    "command", [["mappings", "add"], ["mappings", "export"], ["queue", "retry"], ["check-config"]]
)
def test_help_prints_each_argument(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    assert done.value.code == 0
    printed = capsys.readouterr().out
    assert "-c CONFIG, --config CONFIG" in printed
    assert "the YAML config file" in printed
