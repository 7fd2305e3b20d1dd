"""Benchmark: the gateway's memory at start, and where it goes (not a timed test).

Run: ``python bench/startup.py [--rounds 3] [--top 25]``.

It starts a throwaway Prosody with four components and the real gateway (``portway run``) with
all four transports enabled (IRC, SMS, email, webhooks, configured as
tests/e2e/test_core.py configures them), waits until every component is attached, and prints:

1. the RSS of ``portway run`` once attached (median of ``--rounds`` starts; the target is at
   most 70 MiB), with its anonymous and file-backed parts;
2. the same start once more, in a process that records, for every top-level package the
   first time it is imported, the RSS it added (its own, without the packages it imported
   in turn) and its own import time (``-X importtime``): where the memory goes, import by
   import.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from e2e.test_core import SECRETS  # noqa: E402
from e2e.test_core import settings as core_settings  # noqa: E402
from support.gateway import GatewayProcess  # noqa: E402
from support.prosody import Prosody  # noqa: E402

TARGET_MIB = 70

#: Run in the measured child: wraps ``__import__`` so that each first import of a module
#: charges the RSS it added to the module's top-level package (what it imported of other
#: packages is charged to those), then runs ``portway run`` and keeps the table written.
RECORDER = r"""
import builtins, json, sys
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096
own, stack, real = {}, [], builtins.__import__
def recording(name, globals=None, locals=None, fromlist=(), level=0):
    if level or not name or name in sys.modules:
        return real(name, globals, locals, fromlist, level)
    stack.append([name.partition(".")[0], rss(), 0])
    try:
        return real(name, globals, locals, fromlist, level)
    finally:
        top, before, nested = stack.pop()
        added = rss() - before
        own[top] = own.get(top, 0) + added - nested
        if stack:
            stack[-1][2] += added
builtins.__import__ = recording
sys.argv = ["portway", "run", "-c", sys.argv[1]]
import os, threading, time
def dump():  # whole files only: the bench may read it at any moment
    while True:
        time.sleep(0.5)
        with open(OUT + ".new", "w") as f:
            json.dump({"own": dict(own), "rss": rss()}, f)
        os.replace(OUT + ".new", OUT)
threading.Thread(target=dump, daemon=True).start()
from component.cli import main
sys.exit(main())
"""


def settings(prosody: Prosody) -> dict[str, Any]:
    """All four transports, as tests/e2e/test_core.py configures them, logging warnings."""
    return {**core_settings(prosody), "log_level": "WARNING"}


def memory(pid: int) -> dict[str, float]:
    """VmRSS and its anonymous and file-backed parts, in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


async def rss_at_start(workdir: Path, prosody: Prosody) -> dict[str, float]:
    gateway = GatewayProcess(workdir, settings(prosody))
    try:
        await gateway.astart()
        await asyncio.sleep(2)  # what start-up schedules (first prune, readiness) has run
        assert gateway.process is not None
        return memory(gateway.process.pid)
    finally:
        gateway.stop()


async def breakdown(workdir: Path, prosody: Prosody) -> tuple[dict[str, int], int, Counter[str]]:
    """Own RSS and own import time per top-level package, in the real ``portway run``."""
    gateway = GatewayProcess(workdir, settings(prosody))  # writes the config; not started
    table = workdir / "imports.json"
    times = workdir / "importtime.txt"
    with times.open("wb") as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                *("-X", "importtime", "-c", RECORDER.replace("OUT", repr(str(table)))),
                str(gateway.config_path),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            gateway.process = process
            await gateway.wait_health()
            await asyncio.sleep(2)
            data = json.loads(table.read_text())
        finally:
            process.terminate()
            process.wait(10)
    own_time: Counter[str] = Counter()
    for line in times.read_text().splitlines():
        head, _, rest = line.partition("|")
        if head.startswith("import time:") and not head.endswith("self [us] "):
            own_us = head.removeprefix("import time:").strip()
            name = rest.partition("|")[2].strip()
            if own_us.isdigit():
                own_time[name.partition(".")[0]] += int(own_us)
    return data["own"], data["rss"], own_time


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="starts to take the median of")
    parser.add_argument("--top", type=int, default=25, help="packages to list")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="portway-bench-") as tmp:
        workdir = Path(tmp)
        prosody = Prosody(
            workdir / "prosody",
            components=SECRETS,
            extra_config='modules_disabled = { "s2s"; "s2s_auth_certs"; "dialback"; "tls" }',
        )
        prosody.start()
        try:
            starts = []
            for n in range(1, args.rounds + 1):
                started = time.perf_counter()
                figures = await rss_at_start(workdir / f"gateway-{n}", prosody)
                starts.append(figures["VmRSS"])
                print(
                    f"start {n}: RSS {figures['VmRSS']:5.1f} MiB (anonymous"
                    f" {figures['RssAnon']:5.1f}, file-backed {figures['RssFile']:5.1f});"
                    f" attached in {time.perf_counter() - started:.1f} s",
                    flush=True,
                )
            own, total, own_time = await breakdown(workdir / "gateway-imports", prosody)
        finally:
            prosody.stop()
    median = statistics.median(starts)
    print(f"RSS at start, median of {len(starts)}: {median:.1f} MiB (target {TARGET_MIB} MiB)")
    print(f"\nwhere it goes, in the recording run (RSS {total / 2**20:.1f} MiB once attached):")
    print(f"{'package':28s} {'own RSS MiB':>11s} {'own import ms':>14s}")
    for name, added in sorted(own.items(), key=lambda item: -item[1])[: args.top]:
        print(f"{name:28s} {added / 2**20:11.1f} {own_time.get(name, 0) / 1000:14.1f}")
    charged = sum(own.values())
    print(f"{'(all imports)':28s} {charged / 2**20:11.1f} {sum(own_time.values()) / 1000:14.1f}")


if __name__ == "__main__":
    asyncio.run(main())
