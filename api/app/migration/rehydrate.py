"""Rebuild memory from PostgreSQL, the newest truth, before rolling back phase 3.

While PostgreSQL is primary, memory is kept but not written; rolling back must not
lose the writes made since, so memory imports PostgreSQL's export. The memory store's
import keeps the same rules as PostgreSQL's (idempotent, never overwrites a newer
record, total_cost derived from contributions), so a rehydrate can be repeated.
"""

from __future__ import annotations

from app.migration.backfill import CHUNK, CopyReport, Progress, copy_records
from app.stores.ports import AgentTaskReplica, GraphReplica


async def rehydrate(
    postgres_graph: GraphReplica | None,
    postgres_tasks: AgentTaskReplica | None,
    memory_graph: GraphReplica | None,
    memory_tasks: AgentTaskReplica | None,
    *,
    chunk: int = CHUNK,
    progress: Progress | None = None,
) -> CopyReport:
    graph = await postgres_graph.export_graph() if postgres_graph and memory_graph else None
    tasks = await postgres_tasks.export_tasks() if postgres_tasks and memory_tasks else None
    return await copy_records(
        graph, tasks, memory_graph, memory_tasks, chunk=chunk, progress=progress
    )
