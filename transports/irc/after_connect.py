"""Which raw commands a user may have sent after connecting: the admin's allowlist.

A user's after-connect line leaves the gateway as the user, but from the gateway's address
and before the user sees anything: a line such as ``SET pwned 1`` aimed at a service that is
not IRC, or ``PRIVMSG NickServ,#chan`` that does more than it says, would be the gateway's
act. So the admin lists what may be sent (``user_after_connect``), and a rule is compared
with the *parsed* line: its command, and its first parameter (the target) when the rule
names one. Comparing text prefixes would let ``PRIVMSG NickServ2`` or
``PRIVMSG NickServ,#chan`` through a ``PRIVMSG NickServ`` rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from transports.irc.casemap import fold
from transports.irc.protocol import UnsafeLine, parse_line, parse_raw_command

#: In a rule's target, the user's own nick (``MODE {nick}``).
OWN_NICK = "{nick}"


class LineRefused(ValueError):
    """A line the admin's rules do not allow, with the reason in words."""


@dataclass(frozen=True)
class AfterConnectRule:
    """``COMMAND`` (any parameters) or ``COMMAND target`` (that first parameter only)."""

    command: str
    target: str | None = None

    @classmethod
    def parse(cls, text: str) -> AfterConnectRule:
        """A rule from the config; ValueError says what is wrong with it."""
        words = text.split()
        if not words or len(words) > 2:
            raise ValueError(f"{text!r}: a rule is a command, optionally with its target")
        command = words[0].upper()
        if not command.isalnum():
            raise ValueError(f"{text!r}: {words[0]!r} is not an IRC command")
        target = words[1] if len(words) == 2 else None
        if target is not None and (target.startswith(":") or "," in target):
            raise ValueError(f"{text!r}: the target must be one nick or channel")
        return cls(command, target)

    def allows(self, command: str, params: Sequence[str], nick: str) -> bool:
        if command != self.command:
            return False
        if self.target is None:
            return True
        wanted = nick if self.target == OWN_NICK else self.target
        return bool(params) and fold(params[0]) == fold(wanted)

    def __str__(self) -> str:
        return f"{self.command} {self.target}" if self.target else self.command


def parse_rules(texts: Iterable[str]) -> tuple[AfterConnectRule, ...]:
    return tuple(AfterConnectRule.parse(text) for text in texts)


def check_line(text: str, rules: Sequence[AfterConnectRule], nick: str) -> str:
    """The line, checked and safe to send; LineRefused (or UnsafeLine) says why not.

    One line only: CR, LF and NUL are refused by ``parse_raw_command``.
    """
    if not rules:
        raise LineRefused("the gateway's admin does not allow commands after connecting")
    try:
        line = parse_raw_command(text)
    except UnsafeLine as exc:
        raise LineRefused(f"{text.strip()!r}: {exc}") from None
    parsed = parse_line(line)
    if not any(rule.allows(parsed.command, parsed.params, nick) for rule in rules):
        allowed = ", ".join(str(rule).replace(OWN_NICK, nick) for rule in rules)
        raise LineRefused(f"{line!r} is not allowed after connecting (allowed: {allowed})")
    return line


def allowed_lines(texts: Iterable[str], rules: Sequence[AfterConnectRule], nick: str) -> list[str]:
    """The stored lines the rules allow today; the others are dropped (rules may change)."""
    kept: list[str] = []
    for text in texts:
        try:
            kept.append(check_line(text, rules, nick))
        except LineRefused:
            continue
    return kept
