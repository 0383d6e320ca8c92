"""app.pacing: a long loop hands the event loop back once it has held it for a slice."""

from __future__ import annotations

import asyncio
from time import perf_counter

from app.pacing import paced


def hold(seconds: float) -> None:
    """CPU work that holds the event loop."""
    until = perf_counter() + seconds
    while perf_counter() < until:
        pass


async def progress_seen_by_another_task(paced_loop: bool) -> list[int]:
    """How far a 40-item loop of CPU work had got each time another task ran."""
    ran_at: list[int] = []
    done = 0

    async def other() -> None:
        while True:
            ran_at.append(done)
            await asyncio.sleep(0)

    side = asyncio.create_task(other())
    await asyncio.sleep(0)
    if paced_loop:
        async for _ in paced(range(40), slice_seconds=0.001):
            hold(0.0005)
            done += 1
    else:
        for _ in range(40):
            hold(0.0005)
            done += 1
    await asyncio.sleep(0)
    side.cancel()
    return ran_at


async def test_a_paced_loop_lets_other_tasks_run_while_it_works() -> None:
    ran_at = await progress_seen_by_another_task(paced_loop=True)
    inside = [n for n in ran_at if 0 < n < 40]
    assert len(inside) >= 10, ran_at  # ~every second item, not only before and after


async def test_a_paced_loop_yields_every_item_in_order() -> None:
    assert [x async for x in paced(iter("abcdef"), slice_seconds=0)] == list("abcdef")


async def test_without_pacing_the_loop_is_held_throughout() -> None:
    ran_at = await progress_seen_by_another_task(paced_loop=False)
    assert not [n for n in ran_at if 0 < n < 40], ran_at
