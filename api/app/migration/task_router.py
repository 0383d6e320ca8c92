"""MigratingAgentTaskStore: the AgentTaskStore the HTTP layer sees while agent tasks
move to PostgreSQL. Each call is routed by a `StoreRouting` (see router.py); a
create or an update copies the resulting task to the other store, never the command,
so the transition check runs once, in the trusted store.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.migration.router import RoutedStore, is_none
from app.models import AgentTask, AgentTaskCreate, AgentTaskUpdate, TaskStatus, TaskType
from app.stores.ports import TaskBackend


async def _put(pg: TaskBackend, task: AgentTask) -> None:
    await pg.put_task(task)


class MigratingAgentTaskStore(RoutedStore[TaskBackend]):
    STORE = "agent_task"

    async def create_task(self, data: AgentTaskCreate) -> AgentTask:
        return await self.route.write("create_task", lambda s: s.create_task(data), _put)

    async def update_task(self, task_id: str, data: AgentTaskUpdate) -> AgentTask:
        return await self.route.write("update_task", lambda s: s.update_task(task_id, data), _put)

    async def get_task(self, task_id: str) -> AgentTask | None:
        return await self.route.read("get_task", lambda s: s.get_task(task_id), is_none)

    async def list_tasks(
        self,
        status: TaskStatus | None = None,
        task_type: TaskType | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> tuple[list[AgentTask], int]:
        return await self.route.read(
            "list_tasks", lambda s: s.list_tasks(status, task_type, limit, offset)
        )

    async def get_attention_tasks(self, limit: int = 20) -> tuple[list[AgentTask], int]:
        return await self.route.read("get_attention_tasks", lambda s: s.get_attention_tasks(limit))

    async def get_task_count(self) -> dict[str, Any]:
        return await self.route.read("get_task_count", lambda s: s.get_task_count())

    async def get_review_summary(self) -> dict[str, Any]:
        return await self.route.read("get_review_summary", lambda s: s.get_review_summary())

    async def get_usage_summary(self) -> dict[str, Any]:
        return await self.route.read("get_usage_summary", lambda s: s.get_usage_summary())

    async def get_pipeline_status(self, now: datetime | None = None) -> dict[str, Any]:
        at = now or datetime.now(UTC)
        return await self.route.read("get_pipeline_status", lambda s: s.get_pipeline_status(at))
