"""The webhook benchmarks' load generator: ``wrk`` (C), driven by bench/posts.lua.

The generator used to be an aiohttp client in the benchmark's own Python process. At about
300 µs of CPU a post it cost more than the bare handler it loaded (≈ 200 µs), and in the
gateway round it shared the 2 cores with the gateway, Prosody and the receiving client: the
ratio measured the harness nearly as much as the gateway. wrk answers the same posts for a
few µs each, so both rounds now spend their CPU on the servers they measure.

Both rounds of bench/webhook.py, and every round of bench/scale_out.py, post through
:func:`blast`: the same tool, the same number of keep-alive connections, the same headers and
the same bodies (``post N``, numbered), so the comparison stays like with like.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import time
from pathlib import Path

from packages import ensure_packages

LUA = Path(__file__).resolve().parent / "posts.lua"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
SUMMARY = re.compile(rb"portway-posts answered=(\d+) refused=(\d+)")


async def blast(
    bases: list[str], posts: int, concurrency: int, token: str, prefix: str = "post"
) -> float:
    """POST ``posts`` bodies over ``concurrency`` connections; posts/s until all answered 202.

    With several ``bases`` (gateway processes, bench/scale_out.py) the posts and the
    connections are split evenly among them, one wrk process each, as a load balancer in
    front of them would split them. Raises if any post was not answered 202.
    """
    ensure_packages({"wrk": "wrk"})
    shares = [posts // len(bases) + (n < posts % len(bases)) for n in range(len(bases))]
    firsts = [sum(shares[:n]) for n in range(len(bases))]
    started = time.perf_counter()
    processes = [
        await asyncio.create_subprocess_exec(
            WRK,
            "-t1",
            f"-c{max(1, concurrency // len(bases))}",
            "-d300s",
            "--timeout",
            "60s",
            "-s",
            str(LUA),
            "-H",
            f"Authorization: Bearer {token}",
            "-H",
            "Content-Type: text/plain",
            f"{base}/hooks/bench",
            "--",
            str(share),
            str(first),
            prefix,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        for base, share, first in zip(bases, shares, firsts, strict=True)
    ]
    for process in processes:
        assert process.stdout is not None
        while b"portway-posts-done" not in (line := await process.stdout.readline()):
            if not line:
                break
    elapsed = time.perf_counter() - started
    for process in processes:
        process.send_signal(signal.SIGINT)  # wrk sleeps out its -d otherwise; it then reports
    outputs = [(await process.communicate())[0] for process in processes]
    for share, output in zip(shares, outputs, strict=True):
        found = SUMMARY.search(output)
        if found is None:
            raise RuntimeError(f"wrk failed: {output.decode(errors='replace')}")
        answered, refused = (int(group) for group in found.groups())
        if (answered, refused) != (share, 0):
            raise RuntimeError(
                f"wrk: {answered} posts answered, {refused} of them not 202"
                f" (expected {share}): {output.decode(errors='replace')}"
            )
    return posts / elapsed
