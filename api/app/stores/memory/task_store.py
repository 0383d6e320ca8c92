"""MemoryAgentTaskStore: agent tasks in dicts, made durable by journal.py.

The store only selects rows; every document it returns is built by the pure functions
in app.domain.tasks (new_task, apply_update, count/review/usage/pipeline documents), so
it answers exactly as the PostgreSQL adapter does. Checks and writes happen without an
`await` in between, so two concurrent PATCHes cannot both pass a transition check
against the same old state.

Indexes (sorted keys, see memory_index.SortedKeys) make the listings cost
O(limit + offset): all tasks, and per status, per type and per (status, type), by
(created_at, id); finished tasks (completed/failed/needs_decision) by
(updated_at or created_at, id) for the pipeline's recent_completed, and per (model,
status) by the same key for the usage summary (count and last_used without a scan).

`MemoryAgentTaskStore()` is volatile (tests); `await MemoryAgentTaskStore.open(data_dir)`
keeps its journal and snapshots in `data_dir/agent_tasks/`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.domain.tasks import (
    ATTENTION,
    DEFAULT_ROUTING,
    FINISHED,
    PHASES,
    TaskRouting,
    apply_update,
    count_document,
    new_task,
    newest_first,
    pipeline_document,
    review_document,
    usage_document,
)
from app.errors import NotFoundError
from app.models import AgentTask, AgentTaskCreate, AgentTaskUpdate, TaskStatus, TaskType
from app.stores import snapshot as snap
from app.stores.memory.index import SortedKeys, tick
from app.stores.memory.journaled import Journaled
from app.stores.ports import ImportStats

SUBDIR = "agent_tasks"
REVIEW_ATTENTION_LIMIT = 20
TaskKey = tuple[datetime, str]


def _activity(task: AgentTask) -> datetime:
    return task.updated_at or task.created_at


class MemoryAgentTaskStore(Journaled):
    """AgentTaskStore and AgentTaskReplica in memory; durable when opened on a directory."""

    SUBDIR = SUBDIR

    def __init__(self, routing: TaskRouting = DEFAULT_ROUTING) -> None:
        self.routing = routing
        self._tasks: dict[str, AgentTask] = {}
        self._all: SortedKeys[TaskKey] = SortedKeys()
        self._by_status = {s: SortedKeys[TaskKey]() for s in TaskStatus}
        self._by_type = {t: SortedKeys[TaskKey]() for t in TaskType}
        self._by_pair = {(s, t): SortedKeys[TaskKey]() for s in TaskStatus for t in TaskType}
        self._finished: SortedKeys[TaskKey] = SortedKeys()
        self._usage: dict[tuple[str, TaskStatus], SortedKeys[TaskKey]] = {}

    @classmethod
    async def open(
        cls,
        directory: Path,
        *,
        fsync: str = "always",
        fsync_interval_ms: int = 50,
        snapshot_every: int = 50_000,
        routing: TaskRouting = DEFAULT_ROUTING,
    ) -> MemoryAgentTaskStore:
        """A durable store journaling in `directory/agent_tasks/`."""
        store = cls(routing)
        await store._attach(
            directory,
            fsync=fsync,
            fsync_interval_ms=fsync_interval_ms,
            snapshot_every=snapshot_every,
        )
        return store

    # ------------------------------------------------------------------ journal glue

    def _write(self, task: AgentTask) -> int | None:
        position = None
        if self._journal is not None:
            position = self._journal.append({"task": task.model_dump(mode="json")})
        self._set(task)
        return position

    def _replay(self, record: dict[str, Any]) -> None:
        self._set(AgentTask.model_validate(record["task"]))

    def _capture(self) -> Any:
        tasks = list(self._tasks.values())

        def serialize() -> bytes:
            return snap.dumps(snap.Snapshot(snap.now(), agent_tasks=tasks))

        return serialize

    def snapshot_records(self) -> list[AgentTask]:
        """Every task, oldest first (a consistent copy: tasks are immutable)."""
        return [self._tasks[k[1]] for k in self._all.oldest()]

    def restore(self, snapshot: snap.Snapshot) -> None:
        """Load a snapshot's tasks into this (empty) store, without journaling them."""
        if snapshot.agent_tasks is None:
            raise snap.SnapshotFormatError("the snapshot holds no agent_tasks")
        for task in snapshot.agent_tasks:
            self._set(task)

    def _restore_bytes(self, data: bytes) -> None:
        self.restore(snap.loads(data))

    def _set(self, task: AgentTask) -> None:
        old = self._tasks.get(task.id)
        if old is not None:
            self._unindex(old)
        self._tasks[task.id] = task
        key = (task.created_at, task.id)
        self._all.add(key)
        self._by_status[task.status].add(key)
        self._by_type[task.task_type].add(key)
        self._by_pair[(task.status, task.task_type)].add(key)
        if task.status in FINISHED:
            self._finished.add((_activity(task), task.id))
        self._usage.setdefault((task.model, task.status), SortedKeys()).add(
            (_activity(task), task.id)
        )

    def _unindex(self, task: AgentTask) -> None:
        key = (task.created_at, task.id)
        self._all.discard(key)
        self._by_status[task.status].discard(key)
        self._by_type[task.task_type].discard(key)
        self._by_pair[(task.status, task.task_type)].discard(key)
        if task.status in FINISHED:
            self._finished.discard((_activity(task), task.id))
        group = self._usage[(task.model, task.status)]
        group.discard((_activity(task), task.id))
        if not len(group):
            del self._usage[(task.model, task.status)]

    def _rows(self, keys: list[TaskKey]) -> list[AgentTask]:
        return [self._tasks[k[1]] for k in keys]

    # ------------------------------------------------------------------ store face

    async def create_task(self, data: AgentTaskCreate) -> AgentTask:
        task = new_task(data, datetime.now(UTC), self.routing)
        while task.id in self._tasks:
            task = new_task(data, task.created_at, self.routing)
        await self._durable(self._write(task))
        return task

    async def get_task(self, task_id: str) -> AgentTask | None:
        return self._tasks.get(task_id)

    async def list_tasks(
        self,
        status: TaskStatus | None = None,
        task_type: TaskType | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> tuple[list[AgentTask], int]:
        if status is not None and task_type is not None:
            index = self._by_pair[(TaskStatus(status), TaskType(task_type))]
        elif status is not None:
            index = self._by_status[TaskStatus(status)]
        elif task_type is not None:
            index = self._by_type[TaskType(task_type)]
        else:
            index = self._all
        return self._rows(index.newest(limit, offset)), len(index)

    async def update_task(self, task_id: str, data: AgentTaskUpdate) -> AgentTask:
        task = self._tasks.get(task_id)
        if task is None:
            raise NotFoundError("Task not found")
        updated = apply_update(task, data, tick(task.updated_at or task.created_at))
        await self._durable(self._write(updated))
        return updated

    def _attention(self, limit: int) -> tuple[list[AgentTask], int]:
        lists = [self._by_status[s] for s in ATTENTION]
        candidates = [t for index in lists for t in self._rows(index.newest(limit))]
        return newest_first(candidates)[: max(0, limit)], sum(len(i) for i in lists)

    async def get_attention_tasks(self, limit: int = 20) -> tuple[list[AgentTask], int]:
        return self._attention(limit)

    def _by_status_counts(self) -> dict[str, int]:
        return {s.value: len(index) for s, index in self._by_status.items()}

    async def get_task_count(self) -> dict[str, Any]:
        return count_document(self._by_status_counts())

    async def get_review_summary(self) -> dict[str, Any]:
        attention, _ = self._attention(REVIEW_ATTENTION_LIMIT)
        return review_document(self._by_status_counts(), attention)

    async def get_usage_summary(self) -> dict[str, Any]:
        rows = [
            (model, status.value, len(keys), keys.newest(1)[0][0])
            for (model, status), keys in self._usage.items()
        ]
        return usage_document(rows, self.routing)

    async def get_pipeline_status(self, now: datetime | None = None) -> dict[str, Any]:
        running_all = self._rows(self._by_status[TaskStatus.running].oldest())
        running = sorted(running_all, key=lambda t: (t.started_at or t.created_at, t.id))[:10]
        pending = self._rows(self._by_status[TaskStatus.pending].oldest(20))
        finished = [self._tasks[k[1]] for k in self._finished.newest(10)]
        by_phase = {
            p.value: len(self._by_pair[(TaskStatus.running, p)])
            + len(self._by_pair[(TaskStatus.pending, p)])
            for p in PHASES
        }
        latest_keys = self._all.newest(1)
        latest = self._tasks[latest_keys[0][1]] if latest_keys else None
        with_output = None
        for _, task_id in self._finished.descending():
            if self._tasks[task_id].output:
                with_output = self._tasks[task_id]
                break
        return pipeline_document(
            running, pending, finished, by_phase, latest, with_output, now or datetime.now(UTC)
        )

    # ------------------------------------------------------------------ replica face

    def _put(self, task: AgentTask) -> tuple[bool, int | None]:
        held = self._tasks.get(task.id)
        if held is not None and (_activity(held) > _activity(task) or held == task):
            return False, None
        return True, self._write(task)

    async def put_task(self, task: AgentTask) -> None:
        await self._durable(self._put(task)[1])

    async def export_tasks(self) -> list[AgentTask]:
        return self.snapshot_records()

    async def import_tasks(self, tasks: list[AgentTask]) -> ImportStats:
        stats = ImportStats(written={"agent_tasks": 0}, skipped={"agent_tasks": 0})
        last: int | None = None
        try:
            for task in tasks:
                written, position = self._put(task)
                stats.written["agent_tasks"] += written
                stats.skipped["agent_tasks"] += not written
                last = position if position is not None else last
        finally:
            await self._durable(last)
        return stats
