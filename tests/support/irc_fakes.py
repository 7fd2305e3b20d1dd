"""One user's IRC session on a fake connection, for unit tests of the IRC side.

The session is the real :class:`ServerSession`; only its connection and its transport
(the hooks) are stand-ins that record, so a test feeds the lines a server sends and checks
both what the session writes and the events it hands the component.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import Any, cast

from transports.irc import membership
from transports.irc.casemap import RFC1459
from transports.irc.connection import ConnectOptions
from transports.irc.echoes import Echoes
from transports.irc.modes import DEFAULT_CHANMODES, DEFAULT_PREFIX, PrefixModes
from transports.irc.protocol import build_line, parse_line
from transports.irc.session import ServerSession
from transports.irc.settings import IrcSettings
from transports.irc.transport import IrcTransport

USER = "alice@example.org"


class FakeConnection:
    """Stands for IrcConnection: checks each line as the real one does (``build_line``
    raises UnsafeLine), and keeps it; its CASEMAPPING is the server's."""

    def __init__(self, caps: frozenset[str] = frozenset(), casemapping: str = RFC1459) -> None:
        self.sent: list[str] = []
        self.nick = "alice"
        self.self_prefix: str | None = "alice!~alice@gw.example"
        self.closed = False
        self.backlog = 0
        self.prefix_modes = PrefixModes.parse(DEFAULT_PREFIX)
        self.chanmodes = DEFAULT_CHANMODES
        self.caps = caps
        self.casemapping = casemapping
        self.echoes = Echoes()
        self.reading = True

    def send(
        self,
        command: str,
        *params: str,
        tags: Mapping[str, str] | None = None,
        written: Callable[[], None] | None = None,
    ) -> None:
        self.sent.append(build_line(command, *params, tags=tags))
        if written is not None:  # no throttle here: written at once
            written()

    def has_cap(self, name: str) -> bool:
        return name in self.caps

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


class Hooks:
    """Stands for the transport: keeps every event delivered; archives nothing."""

    version_reply = "Portway"
    reconnect_attempts = 1
    reconnect_delay = 0.1
    reconnect_max_delay = 0.1

    def __init__(self) -> None:
        self.events: list[Any] = []
        #: when each message the user sent was taken, as its last line was written
        self.handed: list[float] = []

    async def deliver_event(self, event: Any) -> bool:
        self.events.append(event)
        return True

    def archive_line(self, *args: Any, **kwargs: Any) -> str | None:
        return None

    async def history(self, *args: Any) -> None:
        return None

    def handed_out(self, taken_at: float) -> None:
        self.handed.append(taken_at)

    def of(self, kind: type) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]


def session(
    caps: frozenset[str] = frozenset(), casemapping: str = RFC1459
) -> tuple[ServerSession, FakeConnection, Hooks]:
    """A session of ``USER`` on irc.example, registered, on a fresh fake connection."""
    hooks = Hooks()
    options = ConnectOptions("irc.example", 6667, "alice", tls=False)
    made = ServerSession(hooks, USER, "irc.example", options, [], lambda _s: None)
    conn = FakeConnection(caps, casemapping)
    made.conn = cast(Any, conn)
    made.connected = True
    return made, conn, hooks


async def feed(made: ServerSession, *raw: str) -> None:
    """The session reads these lines from the server, in order."""
    for text in raw:
        await made._handle(parse_line(text))


async def enter(
    made: ServerSession, channel: str, names: str = "alice bob", asked: str = "alice"
) -> None:
    """The resource ``phone`` joins ``channel`` (asking for nick ``asked``), as the server
    confirms it: JOIN, these NAMES, and the end of the WHO a join asks."""
    await membership.join(made, "phone", channel, asked, None)
    assert made.conn is not None
    nick = made.conn.nick
    await feed(
        made,
        f":{nick}!~alice@gw.example JOIN {channel}",
        f":irc.example 353 {nick} = {channel} :{names}",
        f":irc.example 366 {nick} {channel} :End of /NAMES list.",
        f":irc.example 315 {nick} {channel} :End of WHO list.",
    )


def transport_with(made: ServerSession) -> IrcTransport:
    """An IRC transport whose only session is ``made``: for the calls the MUC side makes."""
    settings = IrcSettings.model_validate(
        {"jid": "irc.example.org", "secret": "a-component-secret"}
    )
    transport = IrcTransport(settings, cast(Any, SimpleNamespace(domain="irc.example.org")))
    transport.sessions[(made.user_jid, made.server)] = made
    return transport
