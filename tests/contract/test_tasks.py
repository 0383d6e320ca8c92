"""Agent tasks: creation with routing, listings, transitions and their errors."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.contract.helpers import error, names_field, newest_first, ok, ts

ALL_STATUSES = ("pending", "running", "completed", "failed", "needs_decision")
VALID = {
    ("pending", "running"), ("pending", "failed"),
    ("running", "completed"), ("running", "failed"), ("running", "needs_decision"),
    ("needs_decision", "running"), ("needs_decision", "failed"),
    ("failed", "pending"),
}  # fmt: skip
# A path from pending to each status through valid transitions.
PATH = {
    "pending": [],
    "running": ["running"],
    "completed": ["running", "completed"],
    "failed": ["failed"],
    "needs_decision": ["running", "needs_decision"],
}


async def create(client: httpx.AsyncClient, task_type: str = "impl", **fields: Any) -> Any:
    body = {"direction": "build it", "task_type": task_type} | fields
    return ok(await client.post("/api/agent/tasks", json=body), 201)


async def patch(client: httpx.AsyncClient, task_id: str, **fields: Any) -> httpx.Response:
    return await client.patch(f"/api/agent/tasks/{task_id}", json=fields)


async def task_in(client: httpx.AsyncClient, status: str, **fields: Any) -> Any:
    task = await create(client, **fields)
    for step in PATH[status]:
        task = ok(await patch(client, task["id"], status=step))
    return task


async def test_create_uses_routing(client: httpx.AsyncClient) -> None:
    task = await create(client, "spec", direction="  write the spec  ", context={"k": 1})
    assert re.fullmatch(r"task_[0-9a-f]{16}", task["id"])
    assert task["status"] == "pending" and task["direction"] == "write the spec"
    assert task["model"] and task["tier"] and task["command"]
    assert task["context"] == {"k": 1}
    assert task["updated_at"] is None and task["started_at"] is None
    ts(task["created_at"])
    routing = ok(await client.get("/api/agent/usage"))["routing"]
    assert routing["spec"] == {"model": task["model"], "tier": task["tier"]}
    assert set(routing) == {"spec", "test", "impl", "review", "heal"}
    assert ok(await client.get(f"/api/agent/tasks/{task['id']}")) == task


async def test_create_overrides(client: httpx.AsyncClient) -> None:
    ctx = {"command_override": "make it", "model_override": "my-model"}
    task = await create(client, "heal", context=ctx)
    assert task["command"] == "make it" and task["model"] == "my-model"


async def test_create_errors(client: httpx.AsyncClient) -> None:
    for body, field in (
        ({"task_type": "impl"}, "direction"),
        ({"direction": "   ", "task_type": "impl"}, "direction"),
        ({"direction": "x" * 5001, "task_type": "impl"}, "direction"),
        ({"direction": "x", "task_type": "deploy"}, "task_type"),
        ({"direction": "x", "task_type": "impl", "status": "running"}, "status"),
        ({"direction": "x", "task_type": "impl", "context": []}, "context"),
    ):
        assert names_field(error(await client.post("/api/agent/tasks", json=body), 422), field)


async def test_get_missing_task_is_404(client: httpx.AsyncClient) -> None:
    for task_id in ("task_0000000000000000", "nope", "task_" + "z" * 16):
        assert error(await client.get(f"/api/agent/tasks/{task_id}"), 404) == "Task not found"
        assert error(await patch(client, task_id, status="running"), 404) == "Task not found"


async def test_list_filters_total_paging_newest_first(client: httpx.AsyncClient) -> None:
    made = [await create(client, t) for t in ("spec", "impl", "impl", "test", "impl")]
    ok(await patch(client, made[1]["id"], status="running"))
    everything = ok(await client.get("/api/agent/tasks"))
    assert everything["total"] == 5 and newest_first(everything["tasks"])
    assert [t["id"] for t in everything["tasks"]] == [t["id"] for t in reversed(made)]
    assert not {"command", "output", "context"} & set(everything["tasks"][0])
    impl = ok(await client.get("/api/agent/tasks", params={"task_type": "impl"}))
    assert impl["total"] == 3 and {t["task_type"] for t in impl["tasks"]} == {"impl"}
    both = ok(
        await client.get("/api/agent/tasks", params={"task_type": "impl", "status": "pending"})
    )
    assert both["total"] == 2 and [t["id"] for t in both["tasks"]] == [made[4]["id"], made[2]["id"]]
    page = ok(await client.get("/api/agent/tasks", params={"limit": 2, "offset": 1}))
    assert page["total"] == 5 and page["tasks"] == everything["tasks"][1:3]
    beyond = ok(await client.get("/api/agent/tasks", params={"offset": 10}))
    assert beyond == {"tasks": [], "total": 5}
    blank = ok(await client.get("/api/agent/tasks", params={"status": "", "task_type": ""}))
    assert blank == everything


async def test_list_parameter_errors(client: httpx.AsyncClient) -> None:
    for params, field in (
        ({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"offset": -1}, "offset"),
        ({"status": "done"}, "status"), ({"task_type": "deploy"}, "task_type"),
        ({"limit": "ten"}, "limit"),
    ):  # fmt: skip
        assert names_field(error(await client.get("/api/agent/tasks", params=params), 422), field)
    for bad in (0, 101):
        error(await client.get("/api/agent/tasks/attention", params={"limit": bad}), 422)


@pytest.mark.parametrize("current", ALL_STATUSES)
async def test_every_transition(client: httpx.AsyncClient, current: str) -> None:
    for target in ALL_STATUSES:
        task = await task_in(client, current)
        response = await patch(client, task["id"], status=target)
        if (current, target) in VALID or current == target:
            assert ok(response)["status"] == target
        else:
            detail = error(response, 409)
            assert current in detail and target in detail, detail
            assert ok(await client.get(f"/api/agent/tasks/{task['id']}"))["status"] == current


async def test_update_timestamps_and_started_at_once(client: httpx.AsyncClient) -> None:
    task = await create(client)
    assert task["updated_at"] is None
    running = ok(
        await patch(client, task["id"], status="running", progress_pct=10, current_step="compiling")
    )
    started = ts(running["started_at"])
    assert ts(running["updated_at"]) >= ts(task["created_at"])
    assert running["progress_pct"] == 10 and running["current_step"] == "compiling"
    asked = ok(
        await patch(client, task["id"], status="needs_decision", decision_prompt="which db?")
    )
    assert asked["decision_prompt"] == "which db?"
    resumed = ok(await patch(client, task["id"], decision="postgres"))
    assert resumed["status"] == "running" and resumed["decision"] == "postgres"
    assert ts(resumed["started_at"]) == started
    assert ts(resumed["updated_at"]) > ts(running["updated_at"])
    done = ok(await patch(client, task["id"], status="completed", output="all good"))
    assert done["output"] == "all good" and ts(done["started_at"]) == started
    assert ok(await client.get(f"/api/agent/tasks/{task['id']}")) == done


async def test_retry_after_failure(client: httpx.AsyncClient) -> None:
    task = await task_in(client, "failed")
    assert ok(await patch(client, task["id"], status="pending"))["status"] == "pending"
    again = ok(await patch(client, task["id"], status="running"))
    assert again["started_at"] is not None


async def test_patch_errors(client: httpx.AsyncClient) -> None:
    task = await create(client)
    response = await client.patch(f"/api/agent/tasks/{task['id']}", json={})
    assert error(response, 400) == "At least one field required"
    for body, field in (
        ({"status": "archived"}, "status"), ({"progress_pct": 101}, "progress_pct"),
        ({"progress_pct": -1}, "progress_pct"), ({"model": "x"}, "model"),
    ):  # fmt: skip
        assert names_field(error(await patch(client, task["id"], **body), 422), field)
    assert ok(await client.get(f"/api/agent/tasks/{task['id']}"))["updated_at"] is None


async def test_attention_and_count(client: httpx.AsyncClient) -> None:
    await task_in(client, "pending")
    await task_in(client, "running")
    failed = await task_in(client, "failed")
    asking = await task_in(client, "needs_decision")
    await task_in(client, "completed")
    attention = ok(await client.get("/api/agent/tasks/attention"))
    assert attention["total"] == 2
    assert [t["id"] for t in attention["tasks"]] == [asking["id"], failed["id"]]
    assert (
        len(ok(await client.get("/api/agent/tasks/attention", params={"limit": 1}))["tasks"]) == 1
    )
    count = ok(await client.get("/api/agent/tasks/count"))
    assert count == {"total": 5, "by_status": {s: 1 for s in ALL_STATUSES}}
