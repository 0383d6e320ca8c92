"""Long loops that share the event loop with requests, and hand it back often.

The API serves every request on one event loop, and the backfill's batches and the full
verify's chunks run on it too, because the in-memory records live in this process. A
batch of 5,000 records encoded for COPY, or a chunk of 5,000 record pairs compared field
by field, held the loop for tens to hundreds of milliseconds, and every request that
arrived meanwhile waited it out: the API's p95 was 4-45x its baseline while they ran
(docs/BENCHMARKS.md section 9). These loops now yield to the event loop whenever they
have held it for SLICE_SECONDS, so a request waits about one slice, not one batch. The
work takes as long in CPU; it only shares.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from time import perf_counter
from typing import TypeVar

T = TypeVar("T")

SLICE_SECONDS = 0.002


async def paced(items: Iterable[T], slice_seconds: float = SLICE_SECONDS) -> AsyncIterator[T]:
    """`items`, yielding to the event loop each time the loop has held it a slice."""
    since = perf_counter()
    for item in items:
        yield item
        if perf_counter() - since >= slice_seconds:
            await asyncio.sleep(0)
            since = perf_counter()
