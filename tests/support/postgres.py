"""A throwaway PostgreSQL 15 server for the store's multi-process tests.

The mapping store must be safe with several processes on one PostgreSQL database, which
SQLite cannot show; so those tests run against a real server, made fresh for the session
and thrown away after.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from .ports import free_port
from .process import ServerProcess, ServerStartError, tail

PG_BIN = Path("/usr/lib/postgresql/15/bin")
#: PostgreSQL refuses to run as root; as root we run it as this OS user.
PG_OS_USER = "postgres"
START_TIMEOUT = 30.0


def binaries_present() -> bool:
    """True if the PostgreSQL 15 server binaries are installed (.ci/run installs them)."""
    return all((PG_BIN / name).is_file() for name in ("initdb", "postgres", "pg_isready"))


class Postgres(ServerProcess):
    """One PostgreSQL cluster on 127.0.0.1 with trust auth and a `portway` user and database.

    Durability is switched off (fsync, synchronous_commit, full_page_writes): the data is
    thrown away, and the tests should measure the store, not the disk.
    """

    name = "postgres"
    # SIGINT is PostgreSQL's "fast" shutdown; SIGTERM ("smart") waits for clients to leave.
    _stop_signal = signal.SIGINT

    def __init__(
        self,
        workdir: Path,
        *,
        user: str = "portway",
        password: str = "portway",
        database: str = "portway",
        max_connections: int = 200,
    ) -> None:
        super().__init__(workdir)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.user = user
        self.password = password
        self.database = database
        self.max_connections = max_connections
        self.url = f"postgresql://{user}:{password}@{self.host}:{self.port}/{database}"
        #: A superuser URL, for tests that create extra databases or inspect locks.
        self.admin_url = f"postgresql://postgres@{self.host}:{self.port}/postgres"
        self.log_path = self.output_path
        self.startup_seconds = 0.0
        # The cluster lives outside workdir: pytest's tmp dirs are private to root (0700),
        # and the postgres OS user must be able to reach its data directory.
        self._cluster_root: Path | None = None
        self.data_dir: Path | None = None
        self._fresh = False

    # -- running as the right OS user -------------------------------------------------------

    @staticmethod
    def _as_root() -> bool:
        return os.geteuid() == 0

    def _user_kwargs(self) -> dict[str, Any]:
        """Popen arguments that drop root to the postgres OS user (no-op when not root)."""
        if not self._as_root():
            return {}
        entry = pwd.getpwnam(PG_OS_USER)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(HOME=entry.pw_dir, USER=PG_OS_USER, LOGNAME=PG_OS_USER, LC_ALL="C.UTF-8")
        return {
            "user": entry.pw_uid,
            "group": entry.pw_gid,
            "extra_groups": [],
            "env": env,
        }

    def _run(self, argv: list[str], as_server_user: bool, timeout: float = 60) -> None:
        kwargs = self._user_kwargs() if as_server_user else {}
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self._cluster_root,
            **kwargs,
        )
        if result.returncode != 0:
            raise ServerStartError(
                f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )

    # -- lifecycle ---------------------------------------------------------------------------

    def _init_cluster(self) -> None:
        """initdb once per instance; restart() keeps the data."""
        self._cluster_root = Path(tempfile.mkdtemp(prefix="portway-pg-"))
        self.data_dir = self._cluster_root / "data"
        if self._as_root():
            entry = pwd.getpwnam(PG_OS_USER)
            os.chown(self._cluster_root, entry.pw_uid, entry.pw_gid)
        self._run(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data_dir),
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
                "--no-instructions",
            ],
            as_server_user=True,
        )
        self._fresh = True

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """initdb (first time), start the server, and create the portway user and database."""
        if not binaries_present():
            raise FileNotFoundError(
                f"PostgreSQL 15 binaries not found in {PG_BIN}; .ci/run installs postgresql"
            )
        started = time.monotonic()
        self._fresh = False
        if self.data_dir is None:
            self._init_cluster()
        assert self.data_dir is not None
        self._spawn(
            [
                str(PG_BIN / "postgres"),
                "-D",
                str(self.data_dir),
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-k",
                "",  # no Unix socket: TCP on loopback only
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                f"max_connections={self.max_connections}",
            ],
            cwd=self._cluster_root,
            **self._user_kwargs(),
        )
        self._wait_ready(timeout)
        if self._fresh:
            self._psql(
                f"CREATE ROLE {self.user} LOGIN CREATEDB PASSWORD '{self.password}'",
                f"CREATE DATABASE {self.database} OWNER {self.user}",
            )
        self.startup_seconds = time.monotonic() - started

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        argv = [str(PG_BIN / "pg_isready"), "-q", "-h", self.host, "-p", str(self.port)]
        while time.monotonic() < deadline:
            if not self.running:
                break
            if subprocess.run(argv, check=False, timeout=10).returncode == 0:
                return
            time.sleep(0.1)
        state = "exited" if not self.running else "not ready"
        self.kill()
        raise ServerStartError(
            f"PostgreSQL {state} within {timeout:.0f}s on port {self.port}\n"
            f"--- tail of {self.output_path} ---\n{tail(self.output_path)}"
        )

    def _psql(self, *statements: str) -> None:
        argv = [
            str(PG_BIN / "psql"),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            "postgres",
        ]
        for statement in statements:
            argv += ["-c", statement]
        self._run(argv, as_server_user=False)

    def stop(self, timeout: float = 10.0) -> None:
        """Fast shutdown; the cluster is kept for restart() until cleanup()."""
        super().stop(timeout)

    def cleanup(self) -> None:
        """Stop and delete the cluster directory."""
        self.stop()
        if self._cluster_root is not None:
            shutil.rmtree(self._cluster_root, ignore_errors=True)
            self._cluster_root = None
            self.data_dir = None

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
