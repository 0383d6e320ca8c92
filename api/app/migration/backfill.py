"""Copy every record memory holds into PostgreSQL (and back, see rehydrate.py).

The copy goes through the replica's bulk import, which is idempotent and never
overwrites a row PostgreSQL holds at a newer updated_at; an asset's total_cost is never
written (PostgreSQL's contribution trigger counts each contribution once), so running
the backfill twice, or after dual-write already copied some rows, changes nothing.
Records are imported kind by kind in foreign-key order, in chunks, so a caller can show
progress and a large import never holds one huge transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.adapters.agent_task_store import AgentTaskReplica
from app.adapters.graph_store import GraphRecords, GraphReplica, ImportStats

GRAPH_ORDER = ("projects", "contributors", "assets", "dependencies", "contributions")
CHUNK = 20_000
Progress = Callable[[int, int], None]


@dataclass
class CopyReport:
    records: int = 0
    written: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
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
            "duration_seconds": round(self.duration_seconds, 3),
        }


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
            for start in range(0, len(rows), chunk):
                part = rows[start : start + chunk]
                report.add(await graph_target.import_graph(GraphRecords(**{kind: part})))
                done += len(part)
                if progress:
                    progress(done, total)
    if tasks is not None and task_target is not None:
        for start in range(0, len(tasks), chunk):
            part = tasks[start : start + chunk]
            report.add(await task_target.import_tasks(part))
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
