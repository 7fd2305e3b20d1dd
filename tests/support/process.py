"""A foreground server subprocess owned by the test run.

Servers run in the foreground (no daemonizing), so the test holds their PID and can stop,
kill and restart them to exercise the gateway's reconnect paths. Whatever is still running
when the interpreter exits is killed, so a crashed test run leaves no stray servers behind.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import subprocess
import weakref
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

_LIVE: weakref.WeakSet[ServerProcess] = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:
    """Kill servers a test forgot to stop, so they do not outlive pytest."""
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.kill()


def tail(path: Path, lines: int = 40) -> str:
    """Return the last lines of a log file, for error messages that say why a server died."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log at {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:])


class ServerStartError(RuntimeError):
    """A throwaway server did not come up in time; the message carries its log tail."""


class ServerProcess:
    """Base class: one foreground server process with stop/kill/restart and a context manager.

    Subclasses implement `start()`, which writes config and calls `_spawn()`, and may
    override `_stop_signal`.
    """

    name = "server"
    _stop_signal = signal.SIGTERM

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.output_path = self.workdir / f"{self.name}.out"
        self._output: IO[bytes] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the server and wait until it serves."""
        raise NotImplementedError

    def _spawn(self, argv: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[bytes]:
        """Run argv in the foreground with stdout+stderr appended to `output_path`."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self._output = open(self.output_path, "ab")  # noqa: SIM115 - closed in _reap()
        popen_kwargs.setdefault("cwd", self.workdir)
        self.proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            # Own process group: a Ctrl-C aimed at pytest does not hit the server first.
            start_new_session=True,
            **popen_kwargs,
        )
        _LIVE.add(self)
        return self.proc

    @property
    def running(self) -> bool:
        """True while the server process exists and has not exited."""
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        """PID of the running server, for tests that want to signal it themselves."""
        return self.proc.pid if self.proc is not None else None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully (SIGTERM), as an admin would; SIGKILL if it hangs."""
        self._signal_and_wait(self._stop_signal, timeout)

    def kill(self) -> None:
        """SIGKILL: the server vanishes without closing streams, like a crash."""
        self._signal_and_wait(signal.SIGKILL, 10.0)

    def restart(self) -> None:
        """Stop and start again with the same ports and data."""
        self.stop()
        self.start()

    # Async variants: the blocking calls above freeze the event loop for as long as the
    # server takes; these keep it running, so an in-process gateway sees the outage live.

    async def astart(self) -> None:
        """start() in a worker thread."""
        await asyncio.to_thread(self.start)

    async def astop(self) -> None:
        """stop() in a worker thread."""
        await asyncio.to_thread(self.stop)

    async def akill(self) -> None:
        """kill() in a worker thread."""
        await asyncio.to_thread(self.kill)

    async def arestart(self) -> None:
        """restart() in a worker thread."""
        await asyncio.to_thread(self.restart)

    def _signal_and_wait(self, sig: signal.Signals, timeout: float) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self._reap()

    def _reap(self) -> None:
        if self._output is not None:
            self._output.close()
            self._output = None
        self.proc = None
        _LIVE.discard(self)

    # -- context manager -------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
