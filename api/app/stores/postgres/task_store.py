"""PostgresAgentTaskStore: the AgentTaskStore and AgentTaskReplica protocols on PostgreSQL.

The rules live in app.domain.tasks; this adapter only selects rows. update_task locks
the row (SELECT ... FOR UPDATE) and applies app.domain.tasks.apply_update, so two
concurrent updates are serialized exactly as the in-memory store's lock does, and the
transition check sees the committed status.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from app.domain import tasks as rules
from app.errors import ConflictError, NotFoundError
from app.models import (
    AgentTask,
    AgentTaskCreate,
    AgentTaskUpdate,
    TaskStatus,
    TaskType,
)
from app.pacing import paced
from app.stores.ports import ImportStats
from app.stores.postgres import task_queries as q
from app.stores.postgres.pool import ConstraintErrors, Database

TASK_NOT_FOUND = "Task not found"
CONSTRAINTS: ConstraintErrors = {"agent_tasks_pkey": ConflictError("Task already exists")}


def _now() -> datetime:
    return datetime.now(UTC)


def _tick(previous: datetime) -> datetime:
    """Now, strictly after `previous`: updated_at always moves forward, as in memory."""
    now = _now()
    return now if now > previous else previous + timedelta(microseconds=1)


def _task(row: asyncpg.Record) -> AgentTask:
    return AgentTask.model_validate(dict(row))


_PART_COLUMNS = ("part", "ord", "n")


def _task_of_part(row: asyncpg.Record) -> AgentTask:
    return AgentTask.model_validate({k: v for k, v in row.items() if k not in _PART_COLUMNS})


def _stamp(t: AgentTask) -> datetime:
    return t.updated_at or t.created_at


def _args(t: AgentTask) -> tuple[Any, ...]:
    return (t.id, t.direction, t.task_type.value, t.status.value, t.model, t.command, t.output,
            t.context, t.progress_pct, t.current_step, t.decision_prompt, t.decision, t.tier,
            t.started_at, t.created_at, t.updated_at)


class PostgresAgentTaskStore:
    def __init__(
        self, database: Database, routing: rules.TaskRouting = rules.DEFAULT_ROUTING
    ) -> None:
        self.db = database
        self.routing = routing

    async def create_task(self, data: AgentTaskCreate) -> AgentTask:
        task = rules.new_task(data, _now(), self.routing)
        async with self.db.acquire(CONSTRAINTS) as conn:
            await conn.execute(q.INSERT_TASK, *_args(task))
        return task

    async def get_task(self, task_id: str) -> AgentTask | None:
        async with self.db.acquire() as conn:
            row = await conn.fetchrow(q.GET_TASK, task_id)
        return None if row is None else _task(row)

    async def list_tasks(
        self,
        status: TaskStatus | None = None,
        task_type: TaskType | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> tuple[list[AgentTask], int]:
        s = None if status is None else status.value
        t = None if task_type is None else task_type.value
        async with self.db.acquire() as conn:
            rows = await conn.fetch(q.LIST_TASKS, s, t, limit, offset)
            total = rows[0]["total"] if rows else await conn.fetchval(q.COUNT_TASKS, s, t)
        tasks = [AgentTask.model_validate({k: v for k, v in r.items() if k != "total"})
                 for r in rows]
        return tasks, int(total)

    async def update_task(self, task_id: str, data: AgentTaskUpdate) -> AgentTask:
        async with self.db.transaction(CONSTRAINTS) as conn:
            row = await conn.fetchrow(q.GET_TASK_FOR_UPDATE, task_id)
            if row is None:
                raise NotFoundError(TASK_NOT_FOUND)
            held = _task(row)
            task = rules.apply_update(held, data, _tick(_stamp(held)))
            await conn.execute(
                q.UPDATE_TASK, task.id, task.status.value, task.output, task.progress_pct,
                task.current_step, task.decision_prompt, task.decision, task.started_at,
                task.updated_at,
            )
        return task

    async def get_attention_tasks(self, limit: int = 20) -> tuple[list[AgentTask], int]:
        async with self.db.acquire() as conn:
            rows = await conn.fetch(q.ATTENTION_TASKS, limit)
            total = await conn.fetchval(q.COUNT_ATTENTION)
        return [_task(r) for r in rows], int(total)

    async def _by_status(self, conn: asyncpg.Connection) -> dict[str, int]:
        return {r["status"]: int(r["n"]) for r in await conn.fetch(q.COUNT_BY_STATUS)}

    async def get_task_count(self) -> dict[str, Any]:
        async with self.db.acquire() as conn:
            return rules.count_document(await self._by_status(conn))

    async def get_review_summary(self) -> dict[str, Any]:
        async with self.db.transaction() as conn:
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            by_status = await self._by_status(conn)
            attention = [_task(r) for r in await conn.fetch(q.ATTENTION_TASKS, 20)]
        return rules.review_document(by_status, attention)

    async def get_usage_summary(self) -> dict[str, Any]:
        async with self.db.acquire() as conn:
            rows = await conn.fetch(q.USAGE)
        return rules.usage_document(
            ((r["model"], r["status"], int(r["n"]), r["last_used"]) for r in rows), self.routing
        )

    async def get_pipeline_status(self, now: datetime | None = None) -> dict[str, Any]:
        async with self.db.acquire() as conn:
            rows = await conn.fetch(q.PIPELINE_STATUS)
        parts: list[list[AgentTask]] = [[], [], [], [], [], []]
        by_phase: dict[str, int] = {}
        for r in rows:
            part = r["part"]
            if part == 3:
                by_phase[r["task_type"]] = int(r["n"])
            else:
                parts[part].append(_task_of_part(r))
        running, pending, finished, _, latest, with_output = parts
        return rules.pipeline_document(
            running, pending, finished, by_phase,
            latest[0] if latest else None,
            with_output[0] if with_output else None,
            now or _now(),
        )

    # ------------------------------------------------------------ replica

    async def put_task(self, task: AgentTask) -> None:
        async with self.db.acquire(CONSTRAINTS) as conn:
            await conn.execute(q.PUT_TASK, *_args(task))

    async def export_tasks(self) -> list[AgentTask]:
        async with self.db.acquire() as conn:
            return [_task(r) for r in await conn.fetch(q.EXPORT_TASKS)]

    async def import_tasks(self, tasks: list[AgentTask]) -> ImportStats:
        stats = ImportStats(written={"agent_tasks": 0}, skipped={"agent_tasks": 0})
        if not tasks:
            return stats
        latest: dict[str, AgentTask] = {}
        for t in tasks:
            held = latest.get(t.id)
            if held is None or _stamp(t) > _stamp(held):
                latest[t.id] = t
        rows = ((*a[:7], json.dumps(t.context), *a[8:])
                for t in latest.values() for a in (_args(t),))
        async with self.db.transaction(CONSTRAINTS) as conn:
            await conn.execute(q.TEMP_TASKS)
            await conn.copy_records_to_table("import_tasks", records=paced(rows))
            written = int(await conn.fetchval(q.IMPORT_TASKS))
        stats.written["agent_tasks"], stats.skipped["agent_tasks"] = written, len(tasks) - written
        return stats
