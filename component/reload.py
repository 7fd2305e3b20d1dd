"""What a reload (SIGHUP) changes, worked out from the running config and the new one.

Pure, so that the gateway's reload is a plain walk through the plan. The rule: what can take
effect without dropping a connection does (allowed domains, admins, log level, each
transport's own settings where the transport can take them live); a component whose ``jid``
or ``secret`` changed re-attaches, alone; what needs a new listener, database or stream for
every component waits for a restart, and the log says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from pydantic import BaseModel

    from component.config import Config

#: A component's identity on the XMPP server: a change re-attaches it.
IDENTITY = frozenset({"jid", "secret"})
#: What needs a restart: the database, the HTTP listener and the URLs made from it, the XMPP
#: server's address and stream limits, the log format (a collector parsing the lines would
#: break mid-stream).
AT_RESTART = ("database", "http", "xmpp", "log_format")


@runtime_checkable
class Reloadable(Protocol):
    """A transport that can take new settings of its own section while it runs."""

    def reload(self, settings: Any) -> None: ...


@dataclass
class ReloadPlan:
    #: transports whose jid or secret changed: their component re-attaches
    reattach: list[str] = field(default_factory=list)
    #: transports whose other settings changed
    changed: list[str] = field(default_factory=list)
    #: config paths whose change waits for a restart (a transport added or removed too)
    at_restart: list[str] = field(default_factory=list)


def _dump(section: BaseModel) -> dict[str, Any]:
    # SecretStr compares by value, so a changed secret is seen, and never printed.
    return dict(section)


def plan_reload(old: Config, new: Config) -> ReloadPlan:
    plan = ReloadPlan()
    for name in AT_RESTART:
        if getattr(old, name) != getattr(new, name):
            plan.at_restart.append(name)
    before, after = old.transports.enabled(), new.transports.enabled()
    for name in sorted(before.keys() ^ after.keys()):
        plan.at_restart.append(f"transports.{name} ({'added' if name in after else 'removed'})")
    for name in sorted(before.keys() & after.keys()):
        was, now = _dump(before[name]), _dump(after[name])
        if any(was[key] != now[key] for key in IDENTITY):
            plan.reattach.append(name)
        if {k: v for k, v in was.items() if k not in IDENTITY} != {
            k: v for k, v in now.items() if k not in IDENTITY
        }:
            plan.changed.append(name)
    return plan


def running_config(old: Config, new: Config) -> Config:
    """``new`` as a reload applies it: what needs a restart, and which transports run, stay
    as they are. The next reload compares with this, so it still names what waits."""
    before, after = old.transports.enabled(), new.transports.enabled()
    kept = {name: after[name] for name in before if name in after}
    return new.model_copy(
        update={
            **{name: getattr(old, name) for name in AT_RESTART},
            "transports": old.transports.model_copy(update=kept),
        }
    )
