"""A throwaway real Prosody (0.12) for end-to-end tests.

The gateway is a XEP-0114 component, so its tests need a real server on the other side: one
that accepts component handshakes, routes stanzas to and from real client sessions, and
enforces XEP-0356 privileges the way deployments do. Each instance lives in its own workdir
with its own ports, so several can run at once (e.g. two servers for a scaling test).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from .ports import free_port, wait_for_ports
from .process import ServerProcess, ServerStartError, tail

PROSODY = "/usr/bin/prosody"
PROSODYCTL = "/usr/bin/prosodyctl"
#: Debian's prosody-modules puts each community module in its own folder here.
PROSODY_MODULES_DIR = Path("/usr/lib/prosody/modules")
START_TIMEOUT = 15.0

#: Modules for the VirtualHost: enough for a realistic client session (roster, presence,
#: disco, ping, version, carbons, MAM) and nothing that opens another port (no http, s2s).
BASE_MODULES = (
    "roster",
    "saslauth",
    "disco",
    "posix",
    "ping",
    "version",
    "time",
    "uptime",
    "private",
    "pep",
    "blocklist",
    "carbons",
    "mam",
)


def lua_string(value: str) -> str:
    """Quote a Python string as a Lua string literal."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\0", "\\0")
    )
    return f'"{escaped}"'


def lua_list(values: Iterable[str]) -> str:
    """Format strings as a Lua array, e.g. `{ "a"; "b" }`."""
    return "{ " + "; ".join(lua_string(v) for v in values) + " }"


class Prosody(ServerProcess):
    """One real Prosody, configured for tests: loopback only, plain auth, no TLS, no s2s.

    Ports are picked in the constructor and kept across `restart()`, so a connected
    gateway can reconnect to the same address, as it would after a real server restart.
    """

    name = "prosody"

    def __init__(
        self,
        workdir: Path,
        domain: str = "example.org",
        components: Mapping[str, str] | None = None,
        privileged_components: Iterable[str] = (),
        muc: bool = True,
        *,
        admins: Iterable[str] = (),
        extra_modules: Iterable[str] = (),
        extra_config: str = "",
        log_level: str = "debug",
        http_port: int | None = None,
    ) -> None:
        super().__init__(workdir)
        self.domain = domain
        self.components: dict[str, str] = dict(components or {})
        self.privileged_components = list(privileged_components)
        unknown = set(self.privileged_components) - set(self.components)
        if unknown:
            raise ValueError(f"privileged components not in components: {sorted(unknown)}")
        self.muc = muc
        self.muc_domain: str | None = f"conference.{domain}" if muc else None
        self.admins = list(admins)
        self.extra_modules = list(extra_modules)
        self.extra_config = extra_config
        self.log_level = log_level
        #: Prosody's HTTP server (mod_http_file_share…), on loopback; none by default
        self.http_port = http_port
        self.c2s_port = free_port()
        self.component_port = free_port()
        while self.component_port == self.c2s_port:
            self.component_port = free_port()
        self.config_path = self.workdir / "prosody.cfg.lua"
        self.data_dir = self.workdir / "data"
        self.log_path = self.workdir / "prosody.log"
        self.pidfile = self.workdir / "prosody.pid"
        self.certs_dir = self.workdir / "certs"
        self.startup_seconds = 0.0

    # -- config ------------------------------------------------------------------------------

    def config_text(self) -> str:
        """Render the Prosody config; kept public so a failing test can print it."""
        vhost_modules = list(BASE_MODULES) + self.extra_modules
        if self.privileged_components:
            vhost_modules.append("privilege")
        privileged = "".join(
            f'    [{lua_string(jid)}] = {{ roster = "both"; message = "outgoing" }};\n'
            for jid in self.privileged_components
        )
        lines = [
            "-- Written by tests/support/prosody.py for one test; do not edit.",
            "run_as_root = true",
            f"pidfile = {lua_string(str(self.pidfile))}",
            f"data_path = {lua_string(str(self.data_dir))}",
            # An empty certs dir: no TLS here, but Prosody logs errors if the dir is missing.
            f"certificates = {lua_string(str(self.certs_dir))}",
            f"plugin_paths = {lua_list([str(PROSODY_MODULES_DIR)])}",
            f"admins = {lua_list(self.admins)}",
            f"modules_enabled = {lua_list(vhost_modules)}",
            # s2s is autoloaded; it would listen on 5269 and clash between instances.
            'modules_disabled = { "s2s"; "s2s_auth_certs"; "dialback"; "tls" }',
            'interfaces = { "127.0.0.1" }',
            'local_interfaces = { "127.0.0.1" }',
            f"c2s_ports = {{ {self.c2s_port} }}",
            "c2s_direct_tls_ports = { }",
            "legacy_ssl_ports = { }",
            "s2s_ports = { }",
            "s2s_direct_tls_ports = { }",
            f"http_ports = {{ {self.http_port or ''} }}",
            f'http_external_url = "http://127.0.0.1:{self.http_port}/"' if self.http_port else "",
            "https_ports = { }",
            f"component_ports = {{ {self.component_port} }}",
            'component_interfaces = { "127.0.0.1" }',
            "c2s_require_encryption = false",
            "s2s_require_encryption = false",
            "allow_unencrypted_plain_auth = true",
            'authentication = "internal_plain"',
            'storage = "internal"',
            "allow_registration = false",
            # Tests send bursts; Prosody's default c2s rate limits would slow them down.
            "limits = { }",
            "log = {",
            f'    {{ levels = {{ min = {lua_string(self.log_level)} }}; to = "file"; '
            f"filename = {lua_string(str(self.log_path))} }};",
            "}",
            "privileged_entities = {",
            privileged.rstrip("\n"),
            "}",
            self.extra_config,
            "",
            f"VirtualHost {lua_string(self.domain)}",
            "",
        ]
        if self.muc_domain is not None:
            lines += [
                f'Component {lua_string(self.muc_domain)} "muc"',
                # Rooms open at once, without the owner's configuration round trip.
                "    muc_room_locking = false",
                "    restrict_room_creation = false",
                "",
            ]
        for jid, secret in self.components.items():
            lines.append(f"Component {lua_string(jid)}")
            lines.append(f"    component_secret = {lua_string(secret)}")
            if jid in self.privileged_components:
                # mod_privilege must run on the component host too: it hooks
                # component-authenticated there to advertise the permissions.
                lines.append('    modules_enabled = { "privilege" }')
            lines.append("")
        return "\n".join(lines) + "\n"

    def write_config(self) -> Path:
        """Write the config and create the data dir; called by start() and register()."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.certs_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_text())
        return self.config_path

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start Prosody in the foreground and wait until c2s and component ports accept."""
        self.write_config()
        self.pidfile.unlink(missing_ok=True)
        started = time.monotonic()
        # -F: stay in the foreground (0.12 deprecates the `daemonize` config option).
        self._spawn([PROSODY, "-F", "--config", str(self.config_path)])
        # Prosody only opens the component port when at least one external component
        # (a Component without a module, like ours) is configured.
        ports = [self.c2s_port, self.component_port] if self.components else [self.c2s_port]
        ok = wait_for_ports(ports, timeout, alive=lambda: self.running)
        if not ok:
            state = "exited" if not self.running else "still not listening"
            code = self.proc.returncode if self.proc is not None else None
            self.kill()
            raise ServerStartError(
                f"Prosody {state} (exit code {code}) within {timeout:.0f}s; "
                f"c2s port {self.c2s_port}, component port {self.component_port}, "
                f"config {self.config_path}\n"
                f"--- tail of {self.log_path} ---\n{tail(self.log_path)}\n"
                f"--- tail of {self.output_path} ---\n{tail(self.output_path)}"
            )
        self.startup_seconds = time.monotonic() - started

    # -- accounts ----------------------------------------------------------------------------

    def register(self, user: str, password: str) -> None:
        """Create (or reset) an account with prosodyctl; works with Prosody up or down.

        Internal storage is plain files that the running server reads on each login, so
        an account made here is usable at once.
        """
        self.write_config()
        argv = [
            PROSODYCTL,
            "--config",
            str(self.config_path),
            "register",
            user,
            self.domain,
            password,
        ]
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
            cwd=self.workdir,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"prosodyctl register {user}@{self.domain} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )

    def jid(self, user: str) -> str:
        """The bare JID of a local account."""
        return f"{user}@{self.domain}"
