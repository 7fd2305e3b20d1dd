"""Benchmark: a stranger connecting to the SMTP listener in a loop (not a timed test).

Run: ``python bench/smtp_flood.py [--seconds 10] [--tasks 8]`` (about 20 s).

It starts a throwaway Prosody and the real gateway (``portway run``) with its email
transport, and for ``--seconds``:

- ``--tasks`` connections at a time from 127.1.0.1 (or from ``--addresses`` addresses in
  127.1.0.0/16, as one client with many addresses), each reading the listener's first line
  and hanging up, then connecting again at once: the cheapest flood there is, and what a
  broken or hostile client does;
- meanwhile another sending server, from 127.0.0.2, sends a mail every 0.2 s.

It prints the connections the flood made and how they were answered (220 or 421), the
gateway's CPU time over the run, and how the other sender fared (mails accepted, and the
slowest). The figures to compare versions by are the gateway's CPU-seconds and the other
sender's mails; the flood's own rate moves with the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiosmtplib
import yaml

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from support.mail_world import JULIET, MAIL, SECRET, email_gateway, plain_mail  # noqa: E402
from support.ports import free_port  # noqa: E402
from support.prosody import Prosody  # noqa: E402
from support.smtp_sink import SmtpSink  # noqa: E402


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system, all threads) a process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def flood(port: int, until: float, source: str, answers: Counter[str]) -> None:
    """Connect from ``source``, read the first line, hang up; again until ``until``."""
    loop = asyncio.get_running_loop()
    while loop.time() < until:
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, local_addr=(source, 0)
            )
        except OSError:
            answers["connect failed"] += 1
            await asyncio.sleep(0.01)
            continue
        try:
            line = await asyncio.wait_for(reader.readline(), max(0.1, until - loop.time()))
            answers[line[:3].decode("ascii", "replace") or "closed"] += 1
        except (TimeoutError, OSError):
            answers["no answer"] += 1
        writer.close()


async def other_sender(port: int, until: float, refusals: Counter[str]) -> tuple[int, int, float]:
    """A mail every 0.2 s from another address: (sent, accepted, slowest seconds); what
    refused the others is counted in ``refusals``."""
    loop = asyncio.get_running_loop()
    sent = accepted = 0
    slowest = 0.0
    while loop.time() < until:
        started = loop.time()
        sent += 1
        try:
            client = aiosmtplib.SMTP(
                hostname="127.0.0.1",
                port=port,
                start_tls=False,
                timeout=30,
                source_address=("127.0.0.2", 0),
            )
            async with client:
                _, reply = await client.sendmail(
                    JULIET, [f"alice@{MAIL}"], plain_mail(f"Mail {sent}.", f"<m{sent}@x.lit>")
                )
        except Exception as error:  # a refused mail is a figure here
            reply = f"{type(error).__name__}: {error}"
        if reply.startswith("2"):
            accepted += 1
        else:
            refusals[reply[:60]] += 1
        slowest = max(slowest, loop.time() - started)
        await asyncio.sleep(max(0.0, started + 0.2 - loop.time()))
    return sent, accepted, slowest


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--tasks", type=int, default=8, help="flooding connections at a time")
    parser.add_argument(
        "--addresses", type=int, default=1, help="the flood's source addresses (127.1.x.y)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="portway-bench-smtp-") as tmp:
        workdir = Path(tmp)
        prosody = Prosody(workdir / "prosody", components={MAIL: SECRET}, log_level="warn")
        prosody.register("alice", "alice-pw")
        prosody.start()
        smtp_port = free_port()
        async with SmtpSink() as sink:
            gateway = email_gateway(workdir / "gateway", prosody, smtp_port, sink.port)
            # As a gateway runs in production: at DEBUG every line of every session is logged.
            gateway.config["log_level"] = "INFO"
            gateway.config_path.write_text(yaml.safe_dump(gateway.config))
            bound = gateway.cli("mappings", "add", "email", "alice@example.org", "alice")
            assert bound.returncode == 0, bound.stderr
            try:
                await gateway.astart()
                assert gateway.process is not None
                pid = gateway.process.pid
                counts = Counter[str]()
                loop = asyncio.get_running_loop()
                until = loop.time() + args.seconds
                cpu, started = cpu_seconds(pid), time.perf_counter()
                refusals = Counter[str]()
                results = await asyncio.gather(
                    other_sender(smtp_port, until, refusals),
                    *(
                        flood(smtp_port, until, source(index % args.addresses), counts)
                        for index in range(args.tasks)
                    ),
                )
                elapsed = time.perf_counter() - started
                used = cpu_seconds(pid) - cpu
            finally:
                gateway.stop()
                prosody.stop()
    sent, accepted, slowest = results[0]
    made = sum(counts.values())
    print(
        f"SMTP flood: {args.tasks} connections at a time from {args.addresses} address(es),"
        f" {elapsed:.1f} s"
        f" ({os.cpu_count()} cores)"
    )
    print(
        f"  the flood: {made} connections ({made / elapsed:.0f}/s); answers: "
        + ", ".join(f"{key} {value}" for key, value in sorted(counts.items()))
    )
    print(f"  the gateway: {used:.2f} CPU-seconds ({used / elapsed:.0%} of a core)")
    print(f"  another sender: {accepted} of {sent} mails accepted, the slowest in {slowest:.2f} s")
    for reply, count in sorted(refusals.items()):
        print(f"    {count} refused: {reply}")


def source(index: int) -> str:
    """The flood's ``index``-th address: 127.1.0.0/16, apart from the other sender's."""
    return f"127.1.{(index + 1) // 256}.{(index + 1) % 256}"


if __name__ == "__main__":
    asyncio.run(main())
