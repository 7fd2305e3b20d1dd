"""Runs the real gateway (`portway run -c FILE`) as a subprocess, as an admin would.

A subprocess, not an in-process object, so that tests can SIGKILL it mid-delivery and start it
again on the same database: that is the only honest way to show that nothing is lost.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from .ports import free_port

START_TIMEOUT = 20.0


class GatewayProcess:
    """`portway run` with a config built from `settings`; the log goes to `workdir/portway.log`."""

    def __init__(self, workdir: Path, settings: dict[str, Any]) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.http_port = free_port()
        config = {
            "database": f"sqlite:///{workdir / 'portway.db'}",
            "http": {
                "listen": f"127.0.0.1:{self.http_port}",
                "public_url": f"http://127.0.0.1:{self.http_port}",
            },
            "log_level": "DEBUG",
        }
        config.update(settings)
        self.config = config
        self.config_path = workdir / "portway.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = workdir / "portway.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            [sys.executable, "-m", "component.cli", "run", "-c", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[2],
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()

    async def astart(self, *, attached: bool = True, timeout: float = START_TIMEOUT) -> None:
        """Start, and wait until HTTP answers (and, with ``attached``, every component is)."""
        self.start()
        await self.wait_health(attached, timeout)

    async def wait_health(
        self, attached: bool = True, timeout: float = START_TIMEOUT
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(
                    f"portway exited with {self.process.returncode}:\n{self.log()}"
                )
            try:
                status, body = await asyncio.to_thread(self.health)
                last = body
                if not attached or status == 200:
                    return body
            except (urllib.error.URLError, ConnectionError, OSError) as exc:
                last = exc
            await asyncio.sleep(0.1)
        raise AssertionError(f"portway not healthy in {timeout}s (last: {last}):\n{self.log()}")

    def health(self) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(self.base_url + "/healthz", timeout=2) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait; returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"portway ignored SIGTERM for {timeout}s:\n{self.log()}") from None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    async def astop(self) -> int | None:
        return await asyncio.to_thread(self.stop)

    async def arestart(self) -> None:
        await self.astop()
        await self.astart()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run `portway <args> -c <this config>` and return the finished process."""
        return subprocess.run(
            [sys.executable, "-m", "component.cli", *args, "-c", str(self.config_path)],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=Path(__file__).resolve().parents[2],
        )
