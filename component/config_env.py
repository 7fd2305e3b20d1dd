"""Reading the config's YAML, with ``${VAR}`` taken from the environment in values only.

The references are replaced inside the parsed scalars, not in the text: a comment that
mentions ``${IRC_SASL_PASSWORD}`` (the shipped example has several) needs no such variable,
and a secret holding ``#``, ``: `` or a quote is taken as it is instead of breaking the YAML
around it. Each reference is first masked with private-use characters of the same length, so
that ``[${A}, ${B}]`` parses and every error still points at the line and column the admin
sees in the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}\n]*))?\}")
#: the first of the private-use characters that stand for references while the YAML is parsed
_MASK = 0xE000
_MAX_REFERENCES = 0x1800  # the private-use area U+E000..U+F7FF


class YamlProblem(Exception):
    """The text is not YAML, or values name unset variables; each problem says where."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class _Reference:
    mask: str
    original: str
    name: str
    default: str | None


def load_yaml(text: str, environ: Mapping[str, str] | None = None) -> Any:
    """Parse YAML text, expanding references in the values (not keys, not comments)."""
    references: list[_Reference] = []

    def mask(match: re.Match[str]) -> str:
        if len(references) >= _MAX_REFERENCES:
            return match.group(0)
        reference = _Reference(
            chr(_MASK + len(references)) * len(match.group(0)),
            match.group(0),
            match.group(1),
            match.group(2),
        )
        references.append(reference)
        return reference.mask

    loader = yaml.SafeLoader(_REFERENCE.sub(mask, text))
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        expansion = _Expansion(references, os.environ if environ is None else environ, loader)
        expansion.walk(root)
        if expansion.missing:
            raise YamlProblem(expansion.missing)
        return loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        raise YamlProblem([_problem(exc)]) from None
    except yaml.YAMLError as exc:
        raise YamlProblem([f"not valid YAML: {exc}"]) from None
    finally:
        loader.dispose()


class _Expansion:
    """One walk over the parsed nodes, replacing the masks in value scalars."""

    def __init__(
        self, references: list[_Reference], env: Mapping[str, str], loader: yaml.SafeLoader
    ) -> None:
        self.references = references
        self.env = env
        self.loader = loader
        self.missing: list[str] = []
        self.seen: set[int] = set()

    def walk(self, node: yaml.Node, is_key: bool = False) -> None:
        if id(node) in self.seen:  # an alias: the anchored node is done already
            return
        self.seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, item in node.value:
                self.walk(key, is_key=True)
                self.walk(item)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                self.walk(item)
        elif isinstance(node, yaml.ScalarNode):
            self._scalar(node, is_key)

    def _scalar(self, node: yaml.ScalarNode, is_key: bool) -> None:
        found = [r for r in self.references if r.mask in node.value]
        for reference in found:
            node.value = node.value.replace(
                reference.mask, reference.original if is_key else self._value(reference, node)
            )
        if found and node.style is None and not is_key:
            # a plain `port: ${PORT}` is typed by what it holds, as if written there
            node.tag = self.loader.resolve(yaml.ScalarNode, node.value, (True, False))

    def _value(self, reference: _Reference, node: yaml.Node) -> str:
        if reference.name in self.env:
            return self.env[reference.name]
        if reference.default is not None:
            return reference.default
        self.missing.append(
            f"line {node.start_mark.line + 1}: environment variable {reference.name} is not set"
        )
        return ""


def _problem(exc: yaml.MarkedYAMLError) -> str:
    """PyYAML's two-part message (context, problem) as one line naming where."""
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    text = f"{where}not valid YAML: {exc.problem or exc.context}"
    if exc.context and exc.problem and exc.context_mark:
        text += f" ({exc.context} on line {exc.context_mark.line + 1})"
    return text
