"""review-summary, usage and pipeline-status: documents built over the tasks."""

from __future__ import annotations

import httpx

from tests.contract.helpers import ok, ts
from tests.contract.test_tasks import ALL_STATUSES, create, patch, task_in

PIPELINE_KEYS = {
    "running",
    "pending",
    "recent_completed",
    "running_by_phase",
    "latest_request",
    "latest_response",
    "attention",
}


async def test_review_summary(client: httpx.AsyncClient) -> None:
    empty = ok(await client.get("/api/agent/review-summary"))
    assert empty == {"by_status": {s: 0 for s in ALL_STATUSES}, "needs_attention": [], "total": 0}
    failed = await task_in(client, "failed")
    await task_in(client, "running")
    summary = ok(await client.get("/api/agent/review-summary"))
    assert summary["total"] == 2
    assert summary["by_status"]["failed"] == 1 and summary["by_status"]["running"] == 1
    assert [t["id"] for t in summary["needs_attention"]] == [failed["id"]]
    assert "command" not in summary["needs_attention"][0]


async def test_usage(client: httpx.AsyncClient) -> None:
    assert ok(await client.get("/api/agent/usage"))["by_model"] == {}
    a = await create(client, "impl")
    b = await create(client, "impl")
    c = await create(client, "heal", context={"model_override": "tiny"})
    moved = ok(await patch(client, b["id"], status="running"))
    usage = ok(await client.get("/api/agent/usage"))
    assert set(usage["by_model"]) == {a["model"], "tiny"}
    impl = usage["by_model"][a["model"]]
    assert impl["count"] == 2 and impl["by_status"] == {"pending": 1, "running": 1}
    assert ts(impl["last_used"]) == ts(moved["updated_at"])
    tiny = usage["by_model"]["tiny"]
    assert tiny["count"] == 1 and ts(tiny["last_used"]) == ts(c["created_at"])


async def test_pipeline_status_empty(client: httpx.AsyncClient) -> None:
    status = ok(await client.get("/api/agent/pipeline-status"))
    assert set(status) == PIPELINE_KEYS
    assert status["running"] == [] and status["pending"] == [] and status["recent_completed"] == []
    assert status["running_by_phase"] == {"spec": 0, "impl": 0, "test": 0, "review": 0}
    assert status["latest_request"] is None and status["latest_response"] is None
    assert status["attention"] == {
        "stuck": False,
        "repeated_failures": False,
        "output_empty": False,
        "executor_fail": False,
        "flags": [],
    }


async def test_pipeline_status_lists_and_phases(client: httpx.AsyncClient) -> None:
    waiting = [await create(client, t) for t in ("spec", "test")]
    running = await task_in(client, "running", task_type="impl")
    done = await create(client, "review")
    ok(await patch(client, done["id"], status="running"))
    done = ok(await patch(client, done["id"], status="completed", output="12345"))
    latest = await create(client, "heal", direction="newest")
    status = ok(await client.get("/api/agent/pipeline-status"))
    assert [t["id"] for t in status["running"]] == [running["id"]]
    assert status["running"][0]["running_seconds"] >= 0
    assert [t["id"] for t in status["pending"]] == [
        waiting[0]["id"],
        waiting[1]["id"],
        latest["id"],
    ]
    assert all(t["wait_seconds"] >= 0 for t in status["pending"])
    assert [t["id"] for t in status["recent_completed"]] == [done["id"]]
    assert status["recent_completed"][0]["output_len"] == 5
    assert status["recent_completed"][0]["duration_seconds"] >= 0
    assert status["running_by_phase"] == {"spec": 1, "impl": 1, "test": 1, "review": 0}
    assert status["latest_request"]["id"] == latest["id"]
    assert status["latest_request"]["direction"] == "newest"
    assert status["latest_response"]["id"] == done["id"]
    assert status["latest_response"]["output"] == "12345"
    assert status["attention"]["flags"] == []


async def test_pipeline_attention_flags(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await task_in(client, "failed")
    flags = ok(await client.get("/api/agent/pipeline-status"))["attention"]
    assert flags["repeated_failures"] and flags["executor_fail"]
    assert set(flags["flags"]) == {"repeated_failures", "executor_fail"}
    empty = await task_in(client, "running")
    ok(await patch(client, empty["id"], status="completed"))
    flags = ok(await client.get("/api/agent/pipeline-status"))["attention"]
    assert flags["output_empty"] and not flags["repeated_failures"]
    assert not flags["stuck"]
