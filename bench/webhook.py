"""Benchmark: inbound webhook posts delivered to an XMPP client (not a timed test).

Run: ``python bench/webhook.py [--posts 2000] [--concurrency 32] [--seconds 10]``.

It starts a throwaway Prosody and the real gateway (``portway run``), logs a client in, and
measures three numbers on this machine:

1. the ceiling: posts per second a plain aiohttp handler answering 202 takes, with the same
   client and concurrency;
2. throughput: posts per second from the first POST until the client has received the last
   message (every post is stored durably before its 202, then delivered over XMPP), with the
   gateway's CPU time per post;
3. p99 latency (POST sent → message received by the client) at a steady 100 posts/s.

The first two are measured in ``--rounds`` back-to-back pairs. The target is throughput at
least 30% of the ceiling, as the median of the rounds' ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from support.gateway import GatewayProcess  # noqa: E402
from support.ports import free_port  # noqa: E402
from support.prosody import Prosody  # noqa: E402
from support.xmpp_client import XmppClient  # noqa: E402

TOKEN = "bench-token-0123456789"
COMPONENT = {"hooks.example.org": "hooks-component-bench"}


async def ceiling(posts: int, concurrency: int) -> float:
    """Posts per second a bare aiohttp handler answering 202 takes."""

    async def accept(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"id": "x"}, status=202)

    app = web.Application()
    app.router.add_post("/hooks/{name}", accept)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        return await blast([f"http://127.0.0.1:{port}"], posts, concurrency, lambda _n: None)
    finally:
        await runner.cleanup()


async def blast(bases: list[str], posts: int, concurrency: int, on_accepted: Any) -> float:
    """POST ``posts`` messages with ``concurrency`` workers; posts/s until all answered.

    With several ``bases`` (gateway processes), the workers are spread evenly among them, as
    a load balancer in front of them would.
    """
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(posts):
        queue.put_nowait(n)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/plain"}

    async def worker(session: aiohttp.ClientSession, base: str) -> None:
        while not queue.empty():
            n = queue.get_nowait()
            async with session.post(f"{base}/hooks/bench", data=f"post {n}", headers=headers) as r:
                assert r.status == 202, await r.text()
            on_accepted(n)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session, bases[n % len(bases)]) for n in range(concurrency)))
        return posts / (time.perf_counter() - started)


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system, all threads) a process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def counting_posts(posts: int) -> tuple[asyncio.Event, Callable[[Any], None]]:
    """A message handler for the client, and the event it sets once ``posts`` posts came."""
    received = 0
    done = asyncio.Event()

    def on_message(msg: Any) -> None:
        nonlocal received
        if msg["body"].startswith("post "):
            received += 1
            if received == posts:
                done.set()

    return done, on_message


async def throughput(
    gateway: GatewayProcess, prosody: Prosody, client: XmppClient, posts: int, concurrency: int
) -> tuple[float, float, dict[str, float]]:
    """Posts per second answered 202 and delivered (from the first POST to the last message
    received), and CPU time per post of the gateway, Prosody and this process (the posting
    and receiving client): figures that other work on the machine does not move much, for
    comparing one version with the next, and that show which process limits the rate."""
    done, on_message = counting_posts(posts)
    client.xmpp.add_event_handler("message", on_message)
    assert gateway.process is not None and prosody.pid is not None
    pids = {"gateway": gateway.process.pid, "prosody": prosody.pid, "client": os.getpid()}
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.perf_counter()
    accepted = await blast([gateway.base_url], posts, concurrency, lambda _n: None)
    await asyncio.wait_for(done.wait(), 300)
    elapsed = time.perf_counter() - started
    cpu = {name: (cpu_seconds(pid) - cpu_before[name]) / posts for name, pid in pids.items()}
    client.xmpp.del_event_handler("message", on_message)
    return accepted, posts / elapsed, cpu


async def latency(
    gateway: GatewayProcess, client: XmppClient, rate: int, seconds: int
) -> list[float]:
    """Seconds from each POST to its message arriving, at a steady ``rate`` posts/s."""
    sent: dict[str, float] = {}
    arrived: dict[str, float] = {}
    total = rate * seconds
    done = asyncio.Event()

    def on_message(msg: Any) -> None:
        body = msg["body"]
        if body.startswith("lat ") and body in sent:
            arrived[body] = time.perf_counter()
            if len(arrived) == total:
                done.set()

    client.xmpp.add_event_handler("message", on_message)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/plain"}
    async with aiohttp.ClientSession() as session:

        async def one(body: str) -> None:
            sent[body] = time.perf_counter()
            async with session.post(
                f"{gateway.base_url}/hooks/bench", data=body, headers=headers
            ) as r:
                assert r.status == 202, await r.text()

        tasks = []
        start = time.perf_counter()
        for n in range(total):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(f"lat {n}")))
        await asyncio.gather(*tasks)
        await asyncio.wait_for(done.wait(), 120)
    client.xmpp.del_event_handler("message", on_message)
    return sorted(arrived[body] - sent[body] for body in arrived)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=10, help="length of the 100/s run")
    parser.add_argument("--rounds", type=int, default=5, help="ceiling-then-gateway rounds")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="portway-bench-") as tmp:
        workdir = Path(tmp)
        # No MAM here: Prosody's file-backed archive cleans itself on every message once over
        # quota, and the benchmark would measure that instead of the gateway.
        prosody = Prosody(
            workdir / "prosody",
            components=COMPONENT,
            extra_config='modules_disabled = { "s2s"; "s2s_auth_certs"; "dialback"; "tls"; "mam" }',
        )
        prosody.register("alice", "alice-pw")
        prosody.start()
        gateway = GatewayProcess(
            workdir / "gateway",
            {
                "xmpp": {"host": "127.0.0.1", "port": prosody.component_port},
                "allowed_domains": ["example.org"],
                "log_level": "WARNING",
                "transports": {
                    "webhook": {
                        "jid": "hooks.example.org",
                        "secret": COMPONENT["hooks.example.org"],
                        "rate_per_minute": 10_000_000,
                        "hooks": [{"name": "bench", "owner": "alice@example.org", "token": TOKEN}],
                    }
                },
            },
        )
        client = XmppClient("alice@example.org", "alice-pw", "127.0.0.1", prosody.c2s_port)
        try:
            await gateway.astart()
            await client.connect()
            # Rounds of (ceiling, gateway) back to back: the machine's other work moves both
            # figures from one minute to the next, so each ratio compares like with like, and
            # the median of the rounds is the result.
            ratios = []
            for round_number in range(1, args.rounds + 1):
                roof = await ceiling(args.posts, args.concurrency)
                accepted, rate, cpu = await throughput(
                    gateway, prosody, client, args.posts, args.concurrency
                )
                ratios.append(rate / roof)
                print(
                    f"round {round_number}: ceiling {roof:6.0f} posts/s; gateway answered"
                    f" {accepted:6.0f}/s, delivered {rate:6.0f}/s ({rate / roof:.0%}); CPU per"
                    " post: "
                    + ", ".join(f"{name} {seconds * 1e6:4.0f} µs" for name, seconds in cpu.items()),
                    flush=True,
                )
            delays = await latency(gateway, client, 100, args.seconds)
        finally:
            await client.disconnect()
            gateway.stop()
            prosody.stop()

    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
    print(
        f"delivered over XMPP, median of {len(ratios)} rounds: {statistics.median(ratios):.0%}"
        " of the ceiling (target 30%)"
    )
    print(
        f"latency at 100 posts/s:         p50 {statistics.median(delays) * 1000:.1f} ms,"
        f" p99 {p99 * 1000:.1f} ms ({len(delays)} posts)"
    )


if __name__ == "__main__":
    asyncio.run(main())
