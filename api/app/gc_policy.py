"""Keep CPython's full garbage collections short while the memory store grows.

The in-memory stores hold every record as Python objects that the cyclic collector
tracks. CPython 3.11's full (generation 2) collection walks all of them, so its
stop-the-world pause grows with the data held: under the 10-minute load test at 1,000
req/s the pause grew from 46 ms to 210 ms in four minutes (measured with gc.callbacks,
docs/BENCHMARKS.md section 8), and every request in flight waited it out. That was the
p99 of the old run (a cause, not the only one: section 8).

At start (GC_FREEZE_AT_START, on by default): once the stores are loaded and before the
first request, one full collection, then gc.freeze(). What is frozen is what the process
holds for good: its modules, the app, and the records memory loaded from its journal (at
200,000 records a full collection took 400-600 ms, one every 2-4 s while a backfill or a
verify allocated: docs/BENCHMARKS.md section 9). No request is in flight then, so no
cycle of a request's is frozen; a loaded record that is later replaced is still freed by
reference counting (records hold no cycles). Records written after the start are not
frozen, so the pause grows again with what is written, not with what was loaded. The
loaded stores themselves do hold a cycle (a store and its journal refer to each other),
and the collector never takes anything from the permanent generation: so when this
process lets memory go (every store PostgreSQL-primary, app.migration.wiring) or shuts
its stores down, `thaw` hands everything frozen back to the collector, and the released
stores are freed by the next full collection instead of staying until the process ends.
Memory opened again later (a rollback out of PostgresPrimary) is not frozen: requests
are in flight by then, so its full collections walk its records until the next start.

The policy, when GC_FREEZE_AFTER_MS is set: after a full collection that paused longer
than GC_FREEZE_AFTER_MS, move its survivors to the permanent generation (gc.freeze()).
At that moment the young generations are empty, so what is frozen is exactly what
survived a full collection: the stores' records and the process's long-lived state.
Later full collections then walk only what was allocated since, and the pause stays near
the threshold however much the store holds.

The cost, measured: reference counting still frees frozen objects, but a frozen object
that later becomes part of a garbage *cycle* is never reclaimed. In the 10-minute run
with the policy at 10 ms the full pauses stayed at 18-78 ms per 30 s, but the process's
RSS grew ~15 MB a minute against ~4 MB without it (docs/BENCHMARKS.md section 8): cycles
among what was in flight at each freeze. So it is off by default (GC_FREEZE_AFTER_MS=0),
an option for a migration that holds many records for a short time; the pauses are
exported either way (storemigration_gc_pause_seconds), which is what to watch.
"""

from __future__ import annotations

import gc
from time import perf_counter
from typing import Any

from app.metrics import GC_FREEZES, GC_FROZEN, GC_PAUSES


class GcPolicy:
    """A gc callback that times each collection and freezes after a long full one."""

    def __init__(self, freeze_after_ms: float) -> None:
        self.freeze_after = freeze_after_ms / 1000
        self._started = 0.0
        self._children = [GC_PAUSES.labels(generation=str(g)) for g in range(3)]

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = perf_counter()
            return
        pause = perf_counter() - self._started
        generation = int(info["generation"])
        self._children[generation].observe(pause)
        if generation == 2 and 0 < self.freeze_after <= pause:
            gc.freeze()
            GC_FREEZES.inc()


def freeze_loaded() -> int:
    """Collect, then freeze the survivors (see the module's docstring); the number of
    objects now frozen."""
    gc.collect()
    gc.freeze()
    GC_FREEZES.inc()
    return gc.get_freeze_count()


def thaw() -> None:
    """Return what was frozen to the collector (see the module's docstring)."""
    gc.unfreeze()


def install(freeze_after_ms: float) -> GcPolicy:
    """Install the policy once per process (a second call replaces the first)."""
    for callback in list(gc.callbacks):
        if isinstance(callback, GcPolicy):
            gc.callbacks.remove(callback)
    policy = GcPolicy(freeze_after_ms)
    gc.callbacks.append(policy)
    GC_FROZEN.set_function(gc.get_freeze_count)
    return policy
