"""A throwaway real ejabberd (Debian's 23.01) for end-to-end tests.

Prosody accepts one connection per component; ejabberd accepts several for the same component
domain and spreads the stanzas addressed to it between them. That is how Portway scales out
(several processes, one component, one PostgreSQL database), and only a real ejabberd can show
it works.

Each instance is private: its own workdir (config, Mnesia spool, logs), its own loopback ports
for c2s, the component listener and Erlang distribution, its own node name and cookie. Nothing
talks to epmd, so several instances and a system ejabberd (node ``ejabberd@localhost`` on
epmd's port 4369) never clash.

Why ``erl`` and not ``ejabberdctl foreground``: as root, Debian's ejabberdctl runs everything
through ``su ejabberd``, which cannot reach pytest's root-only tmp dirs and puts a ``su``
process between the test and the server; and it registers the node with epmd. The command
below is what ``ejabberdctl foreground`` runs, minus those two things: ``beam.smp`` replaces
``erl`` (exec), so the PID the test holds is the server's, and SIGTERM makes Erlang shut down
cleanly (``init:stop()``).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from .ports import free_port, wait_for_ports
from .process import ServerProcess, ServerStartError, tail

ERL = "/usr/bin/erl"
START_TIMEOUT = 30.0
CTL_TIMEOUT = 30.0

#: Modules for the virtual host: a realistic client session (roster and presence, disco,
#: ping, version) and nothing that opens another port.
BASE_MODULES = ("mod_disco", "mod_ping", "mod_roster", "mod_version")
#: Loaded only with mod_muc: 23.01's mod_caps reads mod_muc's options for every presence a
#: client receives, and without mod_muc it crashes there ({module_not_loaded,mod_muc,…},
#: a stack trace in the log per presence; the presence still goes through).
MUC_MODULES = ("mod_caps",)


def ejabberd_lib_root() -> Path | None:
    """The directory that holds ``ejabberd-<version>/`` (Debian's ERL_LIBS), if installed."""
    for app in sorted(Path("/usr/lib").glob("*/ejabberd-*/ebin/ejabberd.app")):
        return app.parents[2]
    return None


def binaries_present() -> bool:
    """True if Erlang and ejabberd are installed (.ci/run installs Debian's ejabberd)."""
    return Path(ERL).is_file() and ejabberd_lib_root() is not None


def yaml_string(value: str) -> str:
    """Quote a string for YAML; JSON's double-quoted strings are valid YAML scalars."""
    return json.dumps(value)


class Ejabberd(ServerProcess):
    """One real ejabberd, configured for tests: loopback only, plain auth, no TLS, no s2s.

    Ports, node name and cookie are picked in the constructor and kept across `restart()`,
    so connected gateways reconnect to the same address and Mnesia finds its own data.
    """

    name = "ejabberd"

    def __init__(
        self,
        workdir: Path,
        domain: str = "example.org",
        components: Mapping[str, str] | None = None,
        muc: bool = False,
        *,
        log_level: str = "info",
        extra_modules: Iterable[str] = (),
    ) -> None:
        super().__init__(workdir)
        self.domain = domain
        self.components: dict[str, str] = dict(components or {})
        self.muc = muc
        self.muc_domain: str | None = f"conference.{domain}" if muc else None
        self.log_level = log_level
        self.extra_modules = list(extra_modules)
        ports: set[int] = set()
        while len(ports) < 3:
            ports.add(free_port())
        self.c2s_port, self.component_port, self.dist_port = sorted(ports)
        token = secrets.token_hex(4)
        # Short names with an explicit host: Erlang needs no DNS, only the inetrc below.
        self.node = f"portway-ejabberd-{token}@localhost"
        self.cookie = secrets.token_hex(16)
        self.config_path = self.workdir / "ejabberd.yml"
        self.inetrc_path = self.workdir / "inetrc"
        self.spool_dir = self.workdir / "spool"
        self.logs_dir = self.workdir / "logs"
        self.log_path = self.logs_dir / "ejabberd.log"
        self.error_log_path = self.logs_dir / "error.log"
        self.startup_seconds = 0.0
        self._pending_accounts: dict[str, str] = {}
        self._ctl_counter = 0

    # -- config ------------------------------------------------------------------------------

    def config_text(self) -> str:
        """Render ejabberd.yml; kept public so a failing test can print it."""
        lines = [
            "# Written by tests/support/ejabberd.py for one test; do not edit.",
            f"hosts: [{yaml_string(self.domain)}]",
            f"loglevel: {self.log_level}",
            "log_rotate_count: 0",
            "hide_sensitive_log_data: false",
            # No TLS anywhere: no certificates, no ACME, no STARTTLS offered.
            "certfiles: []",
            "acme:",
            "  auto: false",
            # No server-to-server traffic, in or out.
            "s2s_access: none",
            "auth_method: [internal]",
            "auth_password_format: plain",
            "listen:",
            f"  - port: {self.c2s_port}",
            '    ip: "127.0.0.1"',
            "    module: ejabberd_c2s",
            "    starttls: false",
            "    starttls_required: false",
            "    max_stanza_size: 262144",
        ]
        if self.components:
            lines += [
                f"  - port: {self.component_port}",
                '    ip: "127.0.0.1"',
                "    module: ejabberd_service",
                "    hosts:",
            ]
            for jid, secret in self.components.items():
                lines += [f"      {yaml_string(jid)}:", f"        password: {yaml_string(secret)}"]
        lines += [
            "acl:",
            "  local:",
            '    user_regexp: ""',
            "access_rules:",
            "  local:",
            "    allow: local",
            "  c2s:",
            "    allow: all",
            "  muc_create:",
            "    allow: local",
            # The ctl client below may run every command (register, unregister, status…).
            "api_permissions:",
            '  "console commands":',
            "    from: [ejabberd_ctl]",
            "    who: all",
            '    what: "*"',
            "modules:",
        ]
        muc_modules = MUC_MODULES if self.muc_domain is not None else ()
        for module in [*BASE_MODULES, *muc_modules, *self.extra_modules]:
            lines.append(f"  {module}: {{}}")
        if self.muc_domain is not None:
            lines += [
                "  mod_muc:",
                f"    host: {yaml_string(self.muc_domain)}",
                "    access_create: muc_create",
            ]
        return "\n".join(lines) + "\n"

    def write_config(self) -> Path:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_text())
        # Resolve the node's host name without DNS; lookups of anything else go to the OS.
        self.inetrc_path.write_text(
            '{lookup,["file","native"]}.\n{host,{127,0,0,1}, ["localhost"]}.\n'
        )
        return self.config_path

    def _environment(self) -> dict[str, str]:
        lib_root = ejabberd_lib_root()
        if lib_root is None:
            raise FileNotFoundError(
                "ejabberd is not installed (no /usr/lib/*/ejabberd-*/ebin/ejabberd.app); "
                ".ci/run installs it: apt-get install ejabberd"
            )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ERL", "EJABBERD", "HOME"))}
        env.update(
            # Erlang reads $HOME/.erlang and $HOME/.erlang.cookie: keep them private.
            HOME=str(self.workdir),
            ERL_LIBS=str(lib_root),
            ERL_INETRC=str(self.inetrc_path),
            ERL_CRASH_DUMP=str(self.workdir / "erl_crash.dump"),
            ERL_CRASH_DUMP_BYTES="0",
            EJABBERD_CONFIG_PATH=str(self.config_path),
            EJABBERD_LOG_PATH=str(self.log_path),
            CONTRIB_MODULES_PATH=str(self.workdir / "contrib"),
            CONTRIB_MODULES_CONF_DIR=str(self.workdir / "contrib-conf"),
        )
        return env

    def _erl_argv(self, node: str, *args: str) -> list[str]:
        """`erl` for `node` with this instance's cookie and distribution port, without epmd."""
        return [
            ERL,
            "-sname",
            node,
            "-setcookie",
            self.cookie,
            "-start_epmd",
            "false",
            "-erl_epmd_port",
            str(self.dist_port),
            "-kernel",
            "inet_dist_use_interface",
            "{127,0,0,1}",
            *args,
        ]

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start ejabberd in the foreground; wait until c2s and the component listener accept.

        Accounts given to `register()` while the server was down are created now.
        """
        self.write_config()
        started = time.monotonic()
        self._spawn(
            self._erl_argv(
                self.node,
                # ejabberdctl's defaults: kernel poll, room for many processes.
                "+K",
                "true",
                "+P",
                "250000",
                "-noinput",
                "-mnesia",
                "dir",
                json.dumps(str(self.spool_dir)),  # an Erlang string: double-quoted
                "-s",
                "ejabberd",
            ),
            env=self._environment(),
        )
        ports = [self.c2s_port, self.component_port] if self.components else [self.c2s_port]
        if not wait_for_ports(ports, timeout, alive=lambda: self.running):
            state = "exited" if not self.running else "still not listening"
            code = self.proc.returncode if self.proc is not None else None
            self.kill()
            raise ServerStartError(
                f"ejabberd {state} (exit code {code}) within {timeout:.0f}s; "
                f"c2s port {self.c2s_port}, component port {self.component_port}, "
                f"config {self.config_path}\n"
                f"--- tail of {self.log_path} ---\n{tail(self.log_path)}\n"
                f"--- tail of {self.output_path} ---\n{tail(self.output_path)}"
            )
        self.startup_seconds = time.monotonic() - started
        pending, self._pending_accounts = self._pending_accounts, {}
        for user, password in pending.items():
            self._register_now(user, password)

    # -- accounts ----------------------------------------------------------------------------

    def ctl(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run an ejabberdctl command (`register`, `status`, …) against this node."""
        self.write_config()
        self._ctl_counter += 1
        node = f"ctl-{os.getpid()}-{self._ctl_counter}-{self.node}"
        argv = self._erl_argv(
            node,
            "-hidden",
            "-noinput",
            # A client only: it listens on nothing and dials the node's port directly.
            "-dist_listen",
            "false",
            "-s",
            "ejabberd_ctl",
            "-extra",
            self.node,
            *command,
        )
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CTL_TIMEOUT,
            cwd=self.workdir,
            env=self._environment(),
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"ejabberdctl {' '.join(command[:1])} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def register(self, user: str, password: str) -> None:
        """Create (or reset) an account. With the server down, it is created by `start()`.

        Like any crash, `kill()` loses what ejabberd had not written yet: Mnesia's account
        table (DETS) reaches the disk up to ~2 s after the write, so a test that SIGKILLs the
        server should do so 2 s or more after registering, or stop it gracefully.
        """
        if not self.running:
            self._pending_accounts[user] = password
            return
        self._register_now(user, password)

    def _register_now(self, user: str, password: str) -> None:
        result = self.ctl("register", user, self.domain, password, check=False)
        if result.returncode != 0 and "already registered" in result.stdout + result.stderr:
            self.ctl("unregister", user, self.domain)
            result = self.ctl("register", user, self.domain, password, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"ejabberdctl register {user}@{self.domain} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )

    def jid(self, user: str) -> str:
        """The bare JID of a local account."""
        return f"{user}@{self.domain}"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
