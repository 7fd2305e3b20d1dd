"""What a connection needs to register, and the server's refusals in words.

Kept apart from connection.py, which is the socket's life: these are the settings of one
connection and the meaning of the answers that end a registration.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transports.egress import Network
from transports.irc.pacing import DEFAULT_CONNECTIONS_PER_SECOND
from transports.irc.protocol import IrcLine

NICK_ATTEMPTS = 6


class RegistrationFailed(Exception):
    """The server would not let us in (bad password, SASL refused, banned, …), in words.

    ``final`` says that trying again with the same settings cannot help: a refused password
    or certificate stays refused, so the user should hear of it now rather than after every
    reconnect attempt; a dropped connection or a full server may do better next time.
    """

    def __init__(self, reason: str, *, final: bool = False) -> None:
        super().__init__(reason)
        self.final = final


@dataclass(frozen=True, slots=True)  # slots: one per user and server, kept all along
class ConnectOptions:
    host: str
    port: int
    nick: str
    tls: bool = True
    verify_cert: bool = True
    username: str | None = None
    realname: str | None = None
    #: secrets: kept out of repr, so that no log line or traceback shows them
    password: str | None = field(default=None, repr=False)
    sasl_password: str | None = field(default=None, repr=False)
    encoding: str = "utf-8"
    fallback_encoding: str = "latin-1"
    burst: int | None = 5
    lines_per_second: float = 2.0
    #: None: the admin chose this destination, connect to the name. Otherwise the host is
    #: resolved, each address checked (public, or in these networks), and the connection
    #: made to a checked address, never to the name again (DNS rebinding).
    allowed_networks: tuple[Network, ...] | None = None
    #: the bare JID this connection is for (WEBIRC identity)
    user_jid: str = ""
    #: WEBIRC password: when set, the user's pseudonymous identity is sent (webirc.py)
    webirc_password: str | None = field(default=None, repr=False)
    #: pace and cap of connections to this server, for all users together (pacing.py)
    connections_per_second: float = DEFAULT_CONNECTIONS_PER_SECOND
    max_connections: int | None = None


def next_nick(nick: str, attempt: int) -> str:
    """The nick to try after ``nick`` was refused as in use: ``nick_``, ``nick__``, ``nick2``…"""
    if attempt <= 2:
        return nick + "_" * attempt
    return f"{nick}{attempt}"


def refusal(line: IrcLine, options: ConnectOptions, nick: str) -> tuple[str, bool] | None:
    """A line that ends the registration → (reason for the user, final); None otherwise."""
    command = line.command
    last = line.param(len(line.params) - 1)
    if command == "432":
        return f"the server refused the nick {nick!r}: {line.param(2)}", True
    if command == "464":
        what = "wrong" if options.password else "missing"
        return f"the server password (PASS) is {what}: {last}", True
    if command == "465":
        return f"the server refused the connection: {last}", True
    if command == "ERROR":
        # Also "reconnecting too fast" and the like: not final.
        return f"the server refused the connection: {last}", False
    return None
