"""The AgentTaskStore protocol: agent tasks, their transitions and the summaries over them.

Routers depend on `AgentTaskStore` only; `AgentTaskReplica` is the record-copying face
the migration router, backfill and verifier use (see graph_store.py for why records,
not commands, are copied).

Rules every backend keeps:
- create_task assigns id (`task_` + 16 hex), status pending, model/tier/command from
  the routing table (app.domain.tasks), created_at now, updated_at None.
- update_task checks app.domain.tasks.check_transition and raises
  InvalidTransitionError (409) on a bad one, NotFoundError("Task not found") on a
  missing id; it sets updated_at, sets started_at on the first entry to running, and a
  decision sent while needs_decision moves the task to running.
- Listings are newest first by (created_at, id) descending.
- Summaries are built by the pure functions in app.domain.tasks from the rows each
  backend selects, so every backend returns the same document.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from app.models import AgentTask, AgentTaskCreate, AgentTaskUpdate, TaskStatus, TaskType
from app.stores.ports import ImportStats


@runtime_checkable
class AgentTaskStore(Protocol):
    async def create_task(self, data: AgentTaskCreate) -> AgentTask: ...

    async def get_task(self, task_id: str) -> AgentTask | None: ...

    async def list_tasks(
        self,
        status: TaskStatus | None = None,
        task_type: TaskType | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> tuple[list[AgentTask], int]: ...

    async def update_task(self, task_id: str, data: AgentTaskUpdate) -> AgentTask: ...

    async def get_attention_tasks(self, limit: int = 20) -> tuple[list[AgentTask], int]: ...

    async def get_task_count(self) -> dict[str, Any]: ...

    async def get_review_summary(self) -> dict[str, Any]: ...

    async def get_usage_summary(self) -> dict[str, Any]: ...

    async def get_pipeline_status(self, now: datetime | None = None) -> dict[str, Any]: ...


@runtime_checkable
class AgentTaskReplica(Protocol):
    async def put_task(self, task: AgentTask) -> None: ...

    async def export_tasks(self) -> list[AgentTask]: ...

    async def import_tasks(self, tasks: list[AgentTask]) -> ImportStats: ...
