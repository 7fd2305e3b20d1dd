"""Handlers that await at different speeds still finish one user's work in arrival order."""

from __future__ import annotations

import asyncio
import random

from component.ordering import InArrivalOrder


async def test_one_key_in_arrival_order_others_in_parallel() -> None:
    order = InArrivalOrder()
    done: list[str] = []
    rng = random.Random(3)

    async def handle(key: str, n: int) -> None:
        async with order.turn(key):
            await asyncio.sleep(rng.uniform(0, 0.01))  # database calls of varying speed
            done.append(f"{key}{n}")

    await asyncio.gather(*(handle(key, n) for n in range(20) for key in "ab"))
    assert [d for d in done if d[0] == "a"] == [f"a{n}" for n in range(20)]
    assert [d for d in done if d[0] == "b"] == [f"b{n}" for n in range(20)]
    assert done != sorted(done)  # the two keys did interleave
    assert order._locks == {}  # nothing kept once everyone is done
