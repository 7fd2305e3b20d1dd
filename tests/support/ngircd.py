"""A throwaway ngIRCd (26) for end-to-end tests of the IRC transport.

A real IRC server, because the gateway must cope with what real servers do: numerics,
nick collisions, PING timeouts, being killed and coming back on the same port.
"""

from __future__ import annotations

import time
from pathlib import Path

from .ports import free_port, wait_for_ports
from .process import ServerProcess, ServerStartError, tail

NGIRCD = "/usr/sbin/ngircd"
START_TIMEOUT = 15.0


class Ngircd(ServerProcess):
    """One ngIRCd on 127.0.0.1 with a fixed port, no PAM, DNS or connection limits, and no
    ident lookups unless asked.

    Started as root, ngIRCd drops to ServerUID/ServerGID (it refuses to stay root and falls
    back to "nobody" anyway), so everything it reads after the switch must be readable by
    that user: the MOTD is inline (MotdPhrase) and there is no PID file.
    """

    name = "ngircd"

    def __init__(
        self,
        workdir: Path,
        server_name: str = "irc.localhost",
        *,
        max_nick_length: int = 30,
        flood_penalties: bool = False,
        oper_name: str = "oper",
        oper_password: str = "operpass",
        server_password: str | None = None,
        ident: bool = False,
    ) -> None:
        super().__init__(workdir)
        self.server_name = server_name
        self.host = "127.0.0.1"
        self.port = free_port()
        self.max_nick_length = max_nick_length
        self.flood_penalties = flood_penalties
        #: An IRC operator (OPER name password) for tests that KILL or KICK users.
        self.oper_name = oper_name
        self.oper_password = oper_password
        #: The PASS every client must send, if any (ngIRCd refuses a PASS it does not expect).
        self.server_password = server_password
        #: Ask each client's identd (port 113 of its address) who holds the connection.
        #: ngIRCd asks only with DNS on too (its resolver does both; seen with 26.1), and
        #: 127.0.0.1 then reads back as "localhost".
        self.ident = ident
        self.config_path = self.workdir / "ngircd.conf"
        self.log_path = self.output_path
        self.startup_seconds = 0.0

    def config_text(self) -> str:
        """Render ngircd.conf; public so a failing test can print it."""
        # MaxPenaltyTime = 0 turns off ngIRCd's command throttling, which would otherwise
        # delay bursts of lines from the gateway by seconds.
        penalty = -1 if self.flood_penalties else 0
        return f"""\
# Written by tests/support/ngircd.py for one test; do not edit.
[Global]
    Name = {self.server_name}
    Info = Portway test IRC server
    AdminInfo1 = Portway tests
    AdminInfo2 = loopback
    AdminEMail = tests@localhost
    Listen = 127.0.0.1
    Ports = {self.port}
    MotdPhrase = "Portway test server"
    Password = {self.server_password or ""}
    PidFile =
    ServerUID = nobody
    ServerGID = nogroup

[Limits]
    ConnectRetry = 60
    IdleTimeout = 0
    MaxConnections = 0
    MaxConnectionsIP = 0
    MaxJoins = 0
    MaxNickLength = {self.max_nick_length}
    MaxPenaltyTime = {penalty}
    PingTimeout = 120
    PongTimeout = 20

[Options]
    AllowedChannelTypes = #&+
    DNS = {"yes" if self.ident else "no"}
    Ident = {"yes" if self.ident else "no"}
    PAM = no
    MorePrivacy = no
    OperCanUseMode = yes
    RequireAuthPing = no

[Operator]
    Name = {self.oper_name}
    Password = {self.oper_password}
"""

    def write_config(self) -> Path:
        """Write the config file."""
        self.config_path.write_text(self.config_text())
        return self.config_path

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start ngIRCd in the foreground (-n) and wait until its port accepts."""
        self.write_config()
        started = time.monotonic()
        self._spawn([NGIRCD, "-n", "-f", str(self.config_path)])
        if not wait_for_ports([self.port], timeout, alive=lambda: self.running):
            state = "exited" if not self.running else "still not listening"
            code = self.proc.returncode if self.proc is not None else None
            self.kill()
            raise ServerStartError(
                f"ngIRCd {state} (exit code {code}) within {timeout:.0f}s on port {self.port}, "
                f"config {self.config_path}\n"
                f"--- tail of {self.output_path} ---\n{tail(self.output_path)}"
            )
        self.startup_seconds = time.monotonic() - started
