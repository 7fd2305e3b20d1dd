"""Pydantic's validation errors as sentences an admin can act on.

Pydantic speaks to programmers: "String should match pattern '^[A-Z]{2}$'", "Input should
be a valid dictionary or instance of XmppSettings". The person reading ``portway
check-config`` has the YAML file open, so each error becomes one line that names the option
path and says, in words, what the option takes: ``sms.default_region must be a two-letter
country code in capitals, such as US or GB, not 'us'``. A value is never shown for an option
that holds a secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from transports.webhook.settings import HOOK_NAME_PATTERN

#: What each pattern used in the config models accepts, in words. A pattern missing here is
#: reported without its regex (tests/unit/test_config.py checks that none is missing).
PATTERN_WORDS: Mapping[str, str] = {
    r"^AC[0-9a-fA-F]{32}$": "a Twilio Account SID: AC followed by 32 hexadecimal digits",
    r"^[A-Z]{2}$": "a two-letter country code in capitals, such as US or GB",
    HOOK_NAME_PATTERN: (
        "a hook name: up to 64 lower-case letters, digits, '.', '_' or '-', starting with a"
        " letter or digit"
    ),
    r"^https?://\S+$": "an http:// or https:// URL, without spaces",
}

#: Options whose values are never repeated in an error, even when malformed.
_SECRET_NAMES = re.compile(r"secret|token|password", re.IGNORECASE)

#: pydantic error type → what the option must be, for type errors
_KINDS = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list ([a, b], or one '- item' per line)",
    "tuple_type": "a list ([a, b], or one '- item' per line)",
    "set_type": "a list ([a, b], or one '- item' per line)",
    "dict_type": "a mapping (one 'name: value' per line under it)",
    "model_type": "a section (one 'option: value' per line under it)",
    "model_attributes_type": "a section (one 'option: value' per line under it)",
}


def describe(error: Mapping[str, Any]) -> str:
    """One pydantic error (an item of ``ValidationError.errors()``) as one sentence."""
    path = option_path(error["loc"])
    kind = error["type"]
    value = error.get("input")
    context = error.get("ctx") or {}
    shown = "" if _SECRET_NAMES.search(path) else f", not {_short(value)}"
    if kind == "missing":
        return f"{path} is required"
    if kind == "extra_forbidden":
        return f"{path} is not a known option (check the spelling against config.example.yaml)"
    if kind in _KINDS:
        if value is None or value == "":
            return f"{path} is empty"
        return f"{path} must be {_KINDS[kind]}{shown}"
    if kind == "literal_error" or kind == "enum":
        choices = ", ".join(re.findall(r"'([^']*)'", str(context.get("expected", ""))))
        return f"{path} must be one of {choices}{shown}"
    if kind == "string_pattern_mismatch":
        words = PATTERN_WORDS.get(str(context.get("pattern")))
        if words is None:
            return f"{path} is not in the form config.example.yaml shows{shown}"
        return f"{path} must be {words}{shown}"
    bound = _bound(kind, context)
    if bound is not None:
        return f"{path} must be {bound}{shown}"
    message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if message.startswith(("is ", "must ")):
        return f"{path} {message}"
    return f"{path}: {message.replace('Input should be', 'must be')}"


def option_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """``('transports', 'irc', 'servers', 'irc.libera.chat', 'port')`` as the admin writes
    it: ``transports.irc.servers["irc.libera.chat"].port`` (a name with dots is quoted)."""
    path = ""
    for part in loc:
        text = str(part)
        if text == "[key]":
            path += " (a name)"
        elif "." in text or " " in text:
            path += f'["{text}"]'
        else:
            path += f".{text}" if path else text
    return path or "the config"


def _bound(kind: str, context: Mapping[str, Any]) -> str | None:
    words = {
        "greater_than": ("more than", "gt"),
        "greater_than_equal": ("at least", "ge"),
        "less_than": ("less than", "lt"),
        "less_than_equal": ("at most", "le"),
        "too_short": ("at least", "min_length"),
        "too_long": ("at most", "max_length"),
        "string_too_short": ("at least", "min_length"),
        "string_too_long": ("at most", "max_length"),
    }.get(kind)
    if words is None:
        return None
    phrase, key = words
    limit = context.get(key)
    if kind.startswith("string_"):
        return f"{phrase} {limit} characters long"
    if kind.startswith("too_"):
        return f"a list of {phrase} {limit} {'entry' if limit == 1 else 'entries'}"
    return f"{phrase} {_number(limit)}"


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"
