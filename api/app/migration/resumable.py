"""The resumable backfill: one keyset-paginated batch per call, its place checkpointed.

A Job calls the API once per batch (the in-memory records live in the API process).
Each call, under one lock per process, reads the run's checkpoint from PostgreSQL
(migration 014), copies the next `limit` records of the first unfinished kind after
the checkpoint's last key (kinds in foreign-key order, keys in app.migration.keyed's
order), then advances the checkpoint. So a Job killed at any moment and started again
under the same run name continues after the last committed batch: only a batch whose
copy committed but whose checkpoint did not (the API itself stopping between the two)
is copied twice, which the newer-wins imports make harmless (total_cost only through
the contribution trigger).

The run covers the records that existed when it started (`cutoff`, recorded on its
first call): dual-write carries everything newer, so the run is bound to finish. The
sorted index of those records is built once per process and run (references to
memory's immutable records, no copies) and rebuilt from the cutoff after a restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from app.migration.backfill import CopyReport, graph_put, import_chunk
from app.migration.keyed import KINDS, Ordered, from_json, order_all, sort_key, to_json
from app.stores.ports import AgentTaskReplica, GraphReplica, RangeStore

MAX_REFUSED_LISTED = 1000


@dataclass
class RunBook:
    """The ordered indexes of the runs this process serves (at most `keep`)."""

    keep: int = 2
    runs: dict[str, dict[str, Ordered]] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def remember(self, run: str, ordered: dict[str, Ordered]) -> None:
        self.runs.pop(run, None)
        while len(self.runs) >= self.keep:
            self.runs.pop(next(iter(self.runs)))
        self.runs[run] = ordered

    def forget(self, run: str) -> None:
        self.runs.pop(run, None)


def _seconds(a: datetime, b: datetime) -> float:
    return max((b - a).total_seconds(), 0.0)


def progress(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """done/total per kind and overall, percent, rate and ETA, from the checkpoint."""
    kinds = {
        r["kind"]: {"done": r["done"], "total": r["total"], "batches": r["batches"],
                    "written": r["written"], "skipped": r["skipped"],
                    "refused": len(r["refused_ids"]), "finished": r["finished_at"] is not None}
        for r in rows
    }
    done = sum(r["done"] for r in rows)
    total = sum(r["total"] for r in rows)
    started = min((r["started_at"] for r in rows), default=None)
    updated = max((r["updated_at"] for r in rows), default=None)
    elapsed = _seconds(started, updated) if started and updated else 0.0
    rate = done / elapsed if elapsed > 0 else 0.0
    finished = bool(rows) and all(r["finished_at"] is not None for r in rows)
    refused = {r["kind"]: list(r["refused_ids"]) for r in rows if r["refused_ids"]}
    return {
        "done": done, "total": total,
        "percent": round(100.0 * done / total, 2) if total else 100.0,
        "rate_per_second": round(rate, 1),
        "eta_seconds": 0.0 if finished else (round((total - done) / rate, 1) if rate else None),
        "finished": finished,
        "cutoff": rows[0]["cutoff"].isoformat() if rows else None,
        "started_at": started.isoformat() if started else None,
        "updated_at": updated.isoformat() if updated else None,
        "written_total": sum(r["written"] for r in rows),
        "skipped_total": sum(r["skipped"] for r in rows),
        "rejected": {kind: len(ids) for kind, ids in refused.items()},
        "rejected_ids": {kind: ids[:MAX_REFUSED_LISTED] for kind, ids in refused.items()},
        "rejected_total": sum(len(ids) for ids in refused.values()),
        "kinds": kinds,
    }


async def _ordered(
    memory_graph: GraphReplica | None, memory_tasks: AgentTaskReplica | None,
    cutoff: datetime | None,
) -> dict[str, Ordered]:
    graph = await memory_graph.export_graph() if memory_graph is not None else None
    tasks = await memory_tasks.export_tasks() if memory_tasks is not None else None
    return order_all(graph, tasks, cutoff)


async def backfill_batch(
    run: str,
    memory_graph: GraphReplica | None,
    memory_tasks: AgentTaskReplica | None,
    postgres_graph: GraphReplica | None,
    postgres_tasks: AgentTaskReplica | None,
    ranges: RangeStore,
    book: RunBook,
    *,
    limit: int,
    restart: bool = False,
    retry_refused: bool = False,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, Any]:
    """Copy the run's next batch and advance its checkpoint; the run's progress, with
    what this batch did under `batch`. A finished run copies nothing. `retry_refused`
    (a Job's first call) copies again each kind PostgreSQL refused a record of."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    async with book.lock:
        if restart:
            await ranges.reset_checkpoint(run)
            book.forget(run)
        elif retry_refused:
            await ranges.retry_refused(run)
        rows = await ranges.checkpoint(run)
        if not rows:
            cutoff = now()
            ordered = await _ordered(memory_graph, memory_tasks, cutoff)
            await ranges.start_checkpoint(
                run, [(k, len(ordered[k])) for k in KINDS if k in ordered], cutoff)
            book.remember(run, ordered)
            rows = await ranges.checkpoint(run)
        row = next((r for r in rows if r["finished_at"] is None), None)
        batch: dict[str, Any] = {"kind": None, "records": 0}
        if row is not None:
            ordered = book.runs.get(run) or {}
            if not ordered:  # another process began the run, or this one restarted
                ordered = await _ordered(memory_graph, memory_tasks, rows[0]["cutoff"])
                book.remember(run, ordered)
            batch = await _copy_next(run, row, ordered[row["kind"]], postgres_graph,
                                     postgres_tasks, ranges, limit)
            rows = await ranges.checkpoint(run)
        done = progress(rows)
        if done["finished"]:
            book.forget(run)
    return {"run": run, **done, "batch": batch}


async def _copy_next(
    run: str, row: dict[str, Any], index: Ordered, postgres_graph: GraphReplica | None,
    postgres_tasks: AgentTaskReplica | None, ranges: RangeStore, limit: int,
) -> dict[str, Any]:
    kind = row["kind"]
    last = from_json(kind, row["last_key"])
    part = index.after(last, limit)
    report = CopyReport()
    if part:
        if kind == "tasks":
            assert postgres_tasks is not None
            await import_chunk(kind, part, postgres_tasks.import_tasks, report)
        else:
            assert postgres_graph is not None
            await import_chunk(kind, part, graph_put(postgres_graph, kind), report)
    new_last = sort_key(kind, part[-1]) if part else last
    written = sum(report.written.values())
    skipped = sum(report.skipped.values())
    refused = [i for ids in report.rejected.values() for i in ids]
    await ranges.advance_checkpoint(
        run, kind, to_json(kind, new_last), len(part), written, skipped, refused,
        index.remaining(new_last) == 0,
    )
    return {"kind": kind, "records": len(part), "written": written, "skipped": skipped,
            "refused": len(refused)}
