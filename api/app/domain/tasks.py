"""Agent-task rules: ids, routing, status transitions and the summary documents.

Backends select rows; these pure functions turn rows into the documents the API
returns, so every backend produces byte-for-byte the same answers. `now` is always an
argument: nothing here reads the clock.
"""

from __future__ import annotations

import secrets
import shlex
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from app.errors import InvalidTransitionError
from app.models import (
    AgentTask,
    AgentTaskCreate,
    AgentTaskSummary,
    AgentTaskUpdate,
    TaskStatus,
    TaskType,
)

S = TaskStatus

TRANSITIONS: Mapping[TaskStatus, frozenset[TaskStatus]] = {
    S.pending: frozenset({S.running, S.failed}),
    S.running: frozenset({S.completed, S.failed, S.needs_decision}),
    S.needs_decision: frozenset({S.running, S.failed}),
    S.failed: frozenset({S.pending}),
    S.completed: frozenset(),
}
ATTENTION = (S.needs_decision, S.failed)
FINISHED = (S.completed, S.failed, S.needs_decision)
PHASES = (TaskType.spec, TaskType.impl, TaskType.test, TaskType.review)
STUCK_AFTER_SECONDS = 600


class ModelAssignment(BaseModel):
    """The model, tier and command a task type is routed to (TASK_ROUTING)."""

    model: str
    tier: str
    command: str


_A = ModelAssignment
DEFAULT_ROUTING: dict[TaskType, ModelAssignment] = {
    TaskType.spec: _A(model="claude-opus", tier="premium", command="agent-run spec"),
    TaskType.test: _A(model="claude-sonnet", tier="standard", command="agent-run test"),
    TaskType.impl: _A(model="claude-sonnet", tier="standard", command="agent-run impl"),
    TaskType.review: _A(model="claude-opus", tier="premium", command="agent-run review"),
    TaskType.heal: _A(model="claude-haiku", tier="economy", command="agent-run heal"),
}
TaskRouting = Mapping[TaskType, ModelAssignment]


def new_task_id() -> str:
    return "task_" + secrets.token_hex(8)


def new_task(
    data: AgentTaskCreate, now: datetime, routing: TaskRouting = DEFAULT_ROUTING
) -> AgentTask:
    route = routing[data.task_type]
    command = data.context.get("command_override")
    model = data.context.get("model_override")
    return AgentTask(
        id=new_task_id(),
        direction=data.direction,
        task_type=data.task_type,
        status=TaskStatus.pending,
        model=str(model)[:100] if model else route.model,
        command=str(command) if command else f"{route.command} {shlex.quote(data.direction)}",
        context=data.context,
        tier=route.tier,
        created_at=now,
    )


def check_transition(current: TaskStatus, requested: TaskStatus) -> None:
    if requested != current and requested not in TRANSITIONS[current]:
        raise InvalidTransitionError(current.value, requested.value)


def apply_update(task: AgentTask, update: AgentTaskUpdate, now: datetime) -> AgentTask:
    """The task after `update`, or InvalidTransitionError. A status equal to the current
    one is not a transition; a decision sent while needs_decision resumes the task."""
    changes: dict[str, Any] = {
        name: getattr(update, name) for name in update.model_fields_set if name != "status"
    }
    target = update.status
    if target is None and update.decision is not None and task.status == S.needs_decision:
        target = S.running
    if target is not None:
        check_transition(task.status, target)
        changes["status"] = target
        if target == S.running and task.started_at is None:
            changes["started_at"] = now
    changes["updated_at"] = now
    return task.model_copy(update=changes)


def newest_first(tasks: Iterable[AgentTask]) -> list[AgentTask]:
    return sorted(tasks, key=lambda t: (t.created_at, t.id), reverse=True)


def count_document(by_status: Mapping[str, int]) -> dict[str, Any]:
    full = {s.value: int(by_status.get(s.value, 0)) for s in TaskStatus}
    return {"total": sum(full.values()), "by_status": full}


def review_document(by_status: Mapping[str, int], attention: Sequence[AgentTask]) -> dict[str, Any]:
    counts = count_document(by_status)
    return {
        "by_status": counts["by_status"],
        "needs_attention": [summary(t) for t in attention],
        "total": counts["total"],
    }


def usage_document(
    rows: Iterable[tuple[str, str, int, datetime | None]],
    routing: TaskRouting = DEFAULT_ROUTING,
) -> dict[str, Any]:
    """rows: (model, status, count, last_used) where last_used is the latest
    updated_at-or-created_at of that model's tasks in that status."""
    by_model: dict[str, dict[str, Any]] = {}
    for model, status, count, last_used in rows:
        entry = by_model.setdefault(model, {"count": 0, "by_status": {}, "last_used": None})
        entry["count"] += int(count)
        entry["by_status"][status] = entry["by_status"].get(status, 0) + int(count)
        if last_used is not None and (entry["last_used"] is None or last_used > entry["last_used"]):
            entry["last_used"] = last_used
    return {
        "by_model": {m: by_model[m] for m in sorted(by_model)},
        "routing": {t.value: {"model": r.model, "tier": r.tier} for t, r in routing.items()},
    }


def summary(task: AgentTask) -> dict[str, Any]:
    return AgentTaskSummary.of(task).model_dump(mode="json")


def _seconds(later: datetime, earlier: datetime | None) -> float:
    return 0.0 if earlier is None else round(max(0.0, (later - earlier).total_seconds()), 3)


def pipeline_document(
    running: Sequence[AgentTask],
    pending: Sequence[AgentTask],
    recent_finished: Sequence[AgentTask],
    running_by_phase: Mapping[str, int],
    latest: AgentTask | None,
    latest_with_output: AgentTask | None,
    now: datetime,
) -> dict[str, Any]:
    """running: first 10 running, oldest start first; pending: the 20 oldest pending;
    recent_finished: the 10 newest finished (completed/failed/needs_decision) by
    updated_at; running_by_phase: counts over running + pending for spec/impl/test/review;
    latest: the newest task; latest_with_output: the finished task with output updated
    last."""
    finished = list(recent_finished)
    stuck = (
        bool(pending) and not running and _seconds(now, pending[0].created_at) > STUCK_AFTER_SECONDS
    )
    repeated = len(finished) >= 3 and all(t.status == S.failed for t in finished[:3])
    output_empty = any(t.status == S.completed and not t.output for t in finished[:5])
    executor_fail = any(t.status == S.failed and not t.output for t in finished[:5])
    attention = {
        "stuck": stuck,
        "repeated_failures": repeated,
        "output_empty": output_empty,
        "executor_fail": executor_fail,
    }
    return {
        "running": [
            summary(t) | {"running_seconds": _seconds(now, t.started_at or t.created_at)}
            for t in running
        ],
        "pending": [summary(t) | {"wait_seconds": _seconds(now, t.created_at)} for t in pending],
        "recent_completed": [
            summary(t)
            | {
                "duration_seconds": _seconds(t.updated_at or now, t.started_at or t.created_at),
                "output_len": len(t.output or ""),
            }
            for t in finished
        ],
        "running_by_phase": {p.value: int(running_by_phase.get(p.value, 0)) for p in PHASES},
        "latest_request": None
        if latest is None
        else {
            "id": latest.id,
            "task_type": latest.task_type.value,
            "direction": latest.direction,
            "created_at": latest.created_at.isoformat(),
        },
        "latest_response": None
        if latest_with_output is None
        else {
            "id": latest_with_output.id,
            "status": latest_with_output.status.value,
            "output": (latest_with_output.output or "")[:2000],
            "updated_at": (
                latest_with_output.updated_at or latest_with_output.created_at
            ).isoformat(),
        },
        "attention": attention | {"flags": [k for k, v in attention.items() if v]},
    }
