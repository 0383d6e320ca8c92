"""Copy every record memory holds into PostgreSQL (and back, see rehydrate.py).

The copy goes through the replica's bulk import, which is idempotent and never
overwrites a row PostgreSQL holds at a newer updated_at; an asset's total_cost is never
written (PostgreSQL's contribution trigger counts each contribution once), so running
the backfill twice, or after dual-write already copied some rows, changes nothing.
Records are imported kind by kind in foreign-key order, in chunks, so a caller can show
progress and a large import never holds one huge transaction. A chunk the target refuses
as data (a NUL character PostgreSQL cannot store, a uniqueness rule it folds
differently) is retried row by row: the refused records are skipped and reported by id,
and the rest of the chunk, and the Job, go on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from app.errors import ConflictError, InvalidDataError
from app.migration.keyed import label
from app.stores.ports import AgentTaskReplica, GraphRecords, GraphReplica, ImportStats

RefusedError = (InvalidDataError, ConflictError)
MAX_LISTED = 1000

GRAPH_ORDER = ("projects", "contributors", "assets", "dependencies", "contributions")
log = logging.getLogger("app.migration")
CHUNK = 20_000
Progress = Callable[[int, int], None]


@dataclass
class CopyReport:
    records: int = 0
    written: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, list[str]] = field(default_factory=dict)
    duration_seconds: float = 0.0

    def add(self, stats: ImportStats) -> None:
        for kind, n in stats.written.items():
            self.written[kind] = self.written.get(kind, 0) + n
        for kind, n in stats.skipped.items():
            self.skipped[kind] = self.skipped.get(kind, 0) + n

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "written": self.written,
            "skipped": self.skipped,
            "written_total": sum(self.written.values()),
            "skipped_total": sum(self.skipped.values()),
            "rejected": {kind: len(ids) for kind, ids in self.rejected.items()},
            "rejected_ids": {kind: ids[:MAX_LISTED] for kind, ids in self.rejected.items()},
            "rejected_total": sum(len(ids) for ids in self.rejected.values()),
            "duration_seconds": round(self.duration_seconds, 3),
        }


async def import_chunk(
    kind: str,
    part: list[Any],
    put: Callable[[list[Any]], Awaitable[ImportStats]],
    report: CopyReport,
) -> None:
    """One chunk; if the target refuses it as data, halves of it down to single rows,
    skipping (and reporting) only the refused rows."""
    try:
        report.add(await put(part))
        return
    except RefusedError:
        if len(part) == 1:
            report.rejected.setdefault(kind, []).append(label(kind, part[0]))
            log.warning("copy refused a record: kind=%s id=%s", kind, label(kind, part[0]))
            return
    half = len(part) // 2
    await import_chunk(kind, part[:half], put, report)
    await import_chunk(kind, part[half:], put, report)


def graph_put(
    target: GraphReplica, kind: str
) -> Callable[[list[Any]], Awaitable[ImportStats]]:
    async def put(rows: list[Any]) -> ImportStats:
        return await target.import_graph(GraphRecords(**{kind: rows}))

    return put


async def copy_records(
    graph: GraphRecords | None,
    tasks: list[Any] | None,
    graph_target: GraphReplica | None,
    task_target: AgentTaskReplica | None,
    *,
    chunk: int = CHUNK,
    progress: Progress | None = None,
) -> CopyReport:
    """Import `graph` and `tasks` into the targets in chunks; `progress(done, total)`."""
    started = time.monotonic()
    report = CopyReport()
    total = (graph.count() if graph is not None else 0) + len(tasks or [])
    report.records = total
    done = 0
    if progress:
        progress(0, total)
    if graph is not None and graph_target is not None:
        for kind in GRAPH_ORDER:
            rows = getattr(graph, kind)
            put_graph = graph_put(graph_target, kind)
            for start in range(0, len(rows), chunk):
                part = rows[start : start + chunk]
                await import_chunk(kind, part, put_graph, report)
                done += len(part)
                if progress:
                    progress(done, total)
    if tasks is not None and task_target is not None:
        for start in range(0, len(tasks), chunk):
            part = tasks[start : start + chunk]
            await import_chunk("tasks", part, task_target.import_tasks, report)
            done += len(part)
            if progress:
                progress(done, total)
    report.duration_seconds = time.monotonic() - started
    return report


async def backfill(
    memory_graph: GraphReplica | None,
    memory_tasks: AgentTaskReplica | None,
    postgres_graph: GraphReplica | None,
    postgres_tasks: AgentTaskReplica | None,
    *,
    chunk: int = CHUNK,
    progress: Progress | None = None,
) -> CopyReport:
    """Memory export -> PostgreSQL import, for each store pair given."""
    graph = await memory_graph.export_graph() if memory_graph and postgres_graph else None
    tasks = await memory_tasks.export_tasks() if memory_tasks and postgres_tasks else None
    return await copy_records(
        graph, tasks, postgres_graph, postgres_tasks, chunk=chunk, progress=progress
    )
