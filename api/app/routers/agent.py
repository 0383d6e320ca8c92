"""Agent tasks and the summaries over them, plus the store-status document: /api/agent.

Task ids that cannot be ids (wrong shape) are answered 404 without asking a store,
like any other id the store does not hold. An empty query parameter (`?status=`) means
"no filter", as the original service treated it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BeforeValidator

from app.container import Container
from app.errors import NotFoundError
from app.models import (
    AgentTask,
    AgentTaskCreate,
    AgentTaskSummary,
    AgentTaskUpdate,
    TaskList,
    TaskStatus,
    TaskType,
)
from app.routers.deps import BODY_LIMIT, Current, Tasks, errors, model_response
from app.settings import STORES

router = APIRouter(prefix="/api/agent", tags=["agent"], responses=BODY_LIMIT)

TASK_ID = re.compile(r"^task_[0-9a-f]{16}$")
TaskLimit = Annotated[int, Query(ge=1, le=100)]


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


StatusFilter = Annotated[TaskStatus | None, BeforeValidator(_blank_is_none), Query()]
TypeFilter = Annotated[TaskType | None, BeforeValidator(_blank_is_none), Query()]


def _not_found() -> NotFoundError:
    return NotFoundError("Task not found")


def _task_list(tasks: list[AgentTask], total: int) -> Response:
    return model_response(TaskList(tasks=[AgentTaskSummary.of(t) for t in tasks], total=total))


@router.post("/tasks", status_code=201, response_model=AgentTask)
async def create_task(data: AgentTaskCreate, store: Tasks) -> Response:
    return model_response(await store.create_task(data), 201)


@router.get("/tasks", response_model=TaskList)
async def list_tasks(
    store: Tasks,
    status: StatusFilter = None,
    task_type: TypeFilter = None,
    limit: TaskLimit = 20,
    offset: Annotated[int, Query(ge=0, le=2_147_483_647)] = 0,
) -> Response:
    tasks, total = await store.list_tasks(status, task_type, limit, offset)
    return _task_list(tasks, total)


@router.get("/tasks/attention", response_model=TaskList)
async def attention_tasks(store: Tasks, limit: TaskLimit = 20) -> Response:
    tasks, total = await store.get_attention_tasks(limit)
    return _task_list(tasks, total)


@router.get("/tasks/count")
async def task_count(store: Tasks) -> dict[str, Any]:
    return await store.get_task_count()


@router.get("/tasks/{task_id}", response_model=AgentTask, responses=errors(e404="Task not found"))
async def get_task(task_id: str, store: Tasks) -> Response:
    task = await store.get_task(task_id) if TASK_ID.match(task_id) else None
    if task is None:
        raise _not_found()
    return model_response(task)


@router.patch(
    "/tasks/{task_id}",
    response_model=AgentTask,
    responses=errors(e400="At least one field required", e404="Task not found",
                     e409="Invalid status transition"),
)
async def update_task(task_id: str, data: AgentTaskUpdate, store: Tasks) -> Response:
    if data.is_empty():
        return JSONResponse({"detail": "At least one field required"}, status_code=400)
    if not TASK_ID.match(task_id):
        raise _not_found()
    return model_response(await store.update_task(task_id, data))


@router.get("/review-summary")
async def review_summary(store: Tasks) -> dict[str, Any]:
    return await store.get_review_summary()


@router.get("/usage")
async def usage(store: Tasks) -> dict[str, Any]:
    return await store.get_usage_summary()


@router.get("/pipeline-status")
async def pipeline_status(store: Tasks) -> dict[str, Any]:
    return await store.get_pipeline_status()


def store_status_document(container: Container) -> dict[str, Any]:
    """The spec's store-status document; the migration router supplies its own when
    it runs (container.store_status), since only it knows live routing state."""
    if container.store_status is not None:
        return container.store_status()
    document: dict[str, Any] = {}
    for store in STORES:
        mode = container.settings.store_mode(store)
        document[f"{store}_store"] = {
            "write_target": mode.write_target,
            "read_target": mode.read_target,
            "read_from_postgres_percent": mode.effective_read_percent,
            "dual_write_enabled": mode.dual_write,
        }
    stats = container.postgres.stats() if container.postgres is not None else {}
    document["postgres"] = {
        "connected": bool(stats.get("connected", False)),
        "pool_size": int(stats.get("size", 0)),
        "pool_active": int(stats.get("active", 0)),
        "pool_idle": int(stats.get("idle", 0)),
    }
    return document


@router.get("/store-status")
async def store_status(container: Current) -> dict[str, Any]:
    return store_status_document(container)
