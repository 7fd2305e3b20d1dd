"""Benchmark: webhook posts delivered by one and two gateway processes (not a timed test).

Run: ``python bench/scale_out.py [--posts 3000] [--concurrency 128] [--rounds 3]``.

It starts a throwaway ejabberd (which, unlike Prosody, takes several connections for one
component and so lets two processes serve one hook domain) and a throwaway PostgreSQL, and
measures, in alternating rounds (SQLite ×1, PostgreSQL ×1, PostgreSQL ×2, SQLite ×1, …), the
posts per second from the first POST until an XMPP client has received the last message.
With two processes the posting workers are split evenly between their HTTP ports, as a load
balancer would split them. Each round runs on a fresh database.

128 connections, not the 32 of bench/webhook.py: a post is answered once it is committed, so
the posts in flight divided by a commit's time bound what one process delivers, and with 32
in flight on PostgreSQL (a commit is several round trips) that bound, not the process, set
the figure: 4,660 posts/s for one process and 4,818 for two, each with 16 (one run of
December 2026; on 128, 5,876 and 6,700). More than 128 is not a fairer load either: past
a process's 128 connections the others wait their turn (component/listener.py), up to a
second, and a run of 3,000 posts measures mostly that wait.

The posts are sent by ``wrk`` and counted by the byte-scanning client, as in
bench/webhook.py (see bench/post_load.py): until December 2026 an aiohttp generator and a
slixmpp client in this process cost more CPU per post than a gateway, on a 2-core machine,
so the two-process round mostly measured the harness competing with two gateways.

For the PostgreSQL rounds it also prints what the database did per post: statements
(pg_stat_statements), transactions (commits), and how often a gateway's connection was seen
waiting on a lock (pg_stat_activity, sampled every 20 ms): the figures that tell whether the
database is the bottleneck, and where.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import asyncpg

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "tests"))
sys.path.insert(0, str(BENCH.parent))

from counting_client import CountingClient  # noqa: E402
from post_load import blast  # noqa: E402
from support.ejabberd import Ejabberd  # noqa: E402
from support.gateway import GatewayProcess  # noqa: E402
from support.postgres import Postgres  # noqa: E402
from webhook import TOKEN, cpu_seconds  # noqa: E402

HOOKS = "hooks.example.org"
COMPONENT = {HOOKS: "hooks-component-bench"}
SETUPS = (("SQLite", 1), ("PostgreSQL", 1), ("PostgreSQL", 2))


def settings(ejabberd: Ejabberd, database: str) -> dict[str, Any]:
    return {
        "database": database,
        "xmpp": {"host": "127.0.0.1", "port": ejabberd.component_port},
        "allowed_domains": ["example.org"],
        "log_level": "WARNING",
        "transports": {
            "webhook": {
                "jid": HOOKS,
                "secret": COMPONENT[HOOKS],
                "rate_per_minute": 10_000_000,
                "hooks": [{"name": "bench", "owner": "alice@example.org", "token": TOKEN}],
            }
        },
    }


class DatabaseWatch:
    """What one PostgreSQL database did during a round, from the server's own statistics."""

    def __init__(self, admin: asyncpg.Connection, database: str) -> None:
        self._admin = admin
        self._database = database
        self.waits: Counter[str] = Counter()
        self.samples = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._admin.execute("SELECT pg_stat_statements_reset()")
        self._task = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        """Count the round's busy connections by what they wait on (Lock:… is a lock)."""
        while True:
            rows = await self._admin.fetch(
                "SELECT wait_event_type, wait_event FROM pg_stat_activity"
                " WHERE datname = $1 AND state <> 'idle' AND pid <> pg_backend_pid()",
                self._database,
            )
            self.samples += 1
            for row in rows:
                self.waits[f"{row[0]}:{row[1]}" if row[0] else "running"] += 1
            await asyncio.sleep(0.02)

    async def stop(self) -> dict[str, Any]:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await asyncio.sleep(0.6)  # the statistics collector's flush
        statements = await self._admin.fetch(
            "SELECT query, calls FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid"
            " WHERE d.datname = $1 ORDER BY calls DESC",
            self._database,
        )
        return {"statements": statements}


async def one_round(
    workdir: Path,
    ejabberd: Ejabberd,
    client: CountingClient,
    database: str,
    processes: int,
    args: argparse.Namespace,
    watch: DatabaseWatch | None,
) -> tuple[float, float, float, dict[str, Any] | None]:
    """Posts/s delivered by ``processes`` gateways on ``database``, their CPU per post, and
    how busy the whole machine was (every process on it, other people's too)."""
    gateways = [
        GatewayProcess(workdir / f"gateway-{n}", settings(ejabberd, database))
        for n in range(processes)
    ]
    done = client.count(b"post", args.posts)

    try:
        await asyncio.gather(*(gateway.astart() for gateway in gateways))
        pids = [gateway.process.pid for gateway in gateways if gateway.process is not None]
        if watch is not None:
            await watch.start()
        cpu_before = sum(cpu_seconds(pid) for pid in pids)
        machine_before = machine_times()
        started = time.perf_counter()
        bases = [gateway.base_url for gateway in gateways]
        await blast(bases, args.posts, args.concurrency, TOKEN)
        await asyncio.wait_for(done.wait(), 300)
        rate = args.posts / (time.perf_counter() - started)
        cpu = (sum(cpu_seconds(pid) for pid in pids) - cpu_before) / args.posts
        (busy_after, total_after), (busy_before, total_before) = machine_times(), machine_before
        busy, total = busy_after - busy_before, total_after - total_before
        figures = await watch.stop() if watch is not None else None
        return rate, cpu, busy / total, figures
    finally:
        client.on_body = None
        for gateway in gateways:
            gateway.stop()


def machine_times() -> tuple[int, int]:
    """The machine's busy and total CPU ticks so far, all cores (``/proc/stat``)."""
    ticks = [int(field) for field in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle and iowait
    return sum(ticks) - idle, sum(ticks)


def describe(figures: dict[str, Any], posts: int, watch: DatabaseWatch) -> list[str]:
    """The database's work per post, and where its connections waited."""
    calls = sum(row["calls"] for row in figures["statements"])
    commits = sum(row["calls"] for row in figures["statements"] if row["query"] == "COMMIT")
    lines = [
        f"    database: {calls / posts:.2f} statements per post (BEGIN and COMMIT included;"
        f" {commits / posts:.2f} explicit COMMITs, the other statements commit alone)"
    ]
    for row in figures["statements"][:6]:
        query = " ".join(row["query"].split())[:90]
        lines.append(f"      {row['calls'] / posts:6.2f}/post  {query}")
    busy = sum(watch.waits.values())
    if busy:
        shares = [f"{name} {count / busy:.0%}" for name, count in watch.waits.most_common(4)]
        lines.append(
            f"    connections in a transaction or a statement: {busy / max(watch.samples, 1):.2f}"
            f" on average; they were {', '.join(shares)} (Lock:… = waiting on a lock,"
            " Client:ClientRead = waiting for the gateway)"
        )
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each setup")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="portway-bench-") as tmp:
        workdir = Path(tmp)
        postgres = Postgres(workdir / "postgres")
        postgres.start()
        ejabberd = Ejabberd(workdir / "ejabberd", components=COMPONENT, log_level="warning")
        ejabberd.register("alice", "alice-pw")
        ejabberd.start()
        client = CountingClient("alice@example.org", "alice-pw", "127.0.0.1", ejabberd.c2s_port)
        rates: dict[tuple[str, int], list[float]] = defaultdict(list)
        try:
            # pg_stat_statements is loaded at server start only
            admin = await asyncpg.connect(postgres.admin_url)
            await admin.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
            await admin.close()
            postgres.stop()
            postgres.start()
            admin = await asyncpg.connect(postgres.admin_url)
            await admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            await client.connect()
            for round_number in range(1, args.rounds + 1):
                for kind, processes in SETUPS:
                    name = f"r{round_number}_{kind.lower()}_{processes}"
                    watch = None
                    if kind == "SQLite":
                        database = f"sqlite:///{workdir / name}.db"
                    else:
                        await admin.execute(f'CREATE DATABASE "{name}" OWNER {postgres.user}')
                        database = postgres.url.rsplit("/", 1)[0] + "/" + name
                        watch = DatabaseWatch(admin, name)
                    rate, cpu, busy, figures = await one_round(
                        workdir / name, ejabberd, client, database, processes, args, watch
                    )
                    rates[(kind, processes)].append(rate)
                    print(
                        f"round {round_number}: {kind:10s} × {processes}: {rate:6.0f} posts/s"
                        f" delivered; gateway CPU {cpu * 1e6:4.0f} µs per post; machine"
                        f" {busy:.0%} busy",
                        flush=True,
                    )
                    if figures is not None and watch is not None:
                        print("\n".join(describe(figures, args.posts, watch)), flush=True)
            await admin.close()
        finally:
            await client.close()
            ejabberd.stop()
            postgres.cleanup()
    medians = {setup: statistics.median(values) for setup, values in rates.items()}
    for (kind, processes), value in medians.items():
        print(f"median {kind:10s} × {processes}: {value:6.0f} posts/s")
    one, two = medians[("PostgreSQL", 1)], medians[("PostgreSQL", 2)]
    pairs = zip(rates[("PostgreSQL", 1)], rates[("PostgreSQL", 2)], strict=True)
    ratios = [two_rate / one_rate for one_rate, two_rate in pairs]
    print(
        f"two processes / one on PostgreSQL: {two / one:.2f}× (per round:"
        f" {', '.join(f'{ratio:.2f}' for ratio in ratios)}); on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    asyncio.run(main())
