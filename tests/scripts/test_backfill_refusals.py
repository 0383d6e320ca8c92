"""A backfill that could not copy a record has not succeeded: PostgreSQL already holds,
behind the router's back, a contributor with the email memory gives another; the
backfill Job exits 1 naming the refused record, and the operator, reading that Job's
termination message, goes Degraded with the record's id in the reason's message. Once
the cause is removed, a retried backfill copies it and a full verify passes."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import httpx

from tests.operator.sim import Sim
from tests.operator.test_planner import BASE, H
from tests.scripts.conftest import SECRET, RunningApi
from tests.scripts.jobrun import run_job
from tests.scripts.test_job_contract import spec_doc


async def owner_sql(owner_dsn: str, sql: str, *args: object) -> None:
    conn = await asyncpg.connect(owner_dsn)
    try:
        await conn.execute(sql, *args)
    finally:
        await conn.close()


HOLD = ("INSERT INTO contributors (id, type, name, email, email_key, metadata, created_at,"
        " updated_at) VALUES ($1, 'HUMAN', 'elsewhere', $2, $3, '{}', now(), now())")


async def test_refused_records_fail_the_job_and_are_named_in_status(
    running_api: RunningApi, tmp_path: Path
) -> None:
    squatter = uuid.uuid4()
    await owner_sql(running_api.admin_dsn, HOLD, squatter, "taken@x.io", "taken@x.io")
    async with httpx.AsyncClient(base_url=running_api.url, timeout=10) as c:
        made = await c.post("/v1/contributors", json={"name": "dup", "email": "taken@x.io"})
        assert made.status_code == 201  # memory is trusted; the copy failed and was counted
        refused_id = made.json()["id"]
        ok = await c.post("/v1/contributors", json={"name": "fine"})
        assert ok.status_code == 201

    run = run_job("backfill", spec_doc(running_api, tmp_path), tmp_path, SECRET)
    assert run.code == 1, run.stderr
    assert run.summary["ok"] is False and run.summary["rejected_total"] == 1
    assert run.summary["rejected_ids"] == {"contributors": [refused_id]}
    assert refused_id in run.summary["error"] and refused_id in run.stderr
    assert run.termination is not None and refused_id in run.termination["error"]

    sim = Sim(dict(BASE))
    sim.job_outcome = lambda kind: ("Failed", run.termination) if kind == "backfill" else (
        "Succeeded", {"mismatch_ratio": 0.0})
    sim.tick()
    for _ in range(5):
        sim.tick(H)
    degraded = sim.condition("Degraded")
    assert sim.phase == "DualWrite" and degraded["reason"] == "BackfillFailed"
    assert refused_id in degraded["message"], degraded

    # Repaired at the source (the row behind the router's back removed), a retried
    # backfill copies the record and a full verify finds both stores identical.
    await owner_sql(running_api.admin_dsn, "DELETE FROM contributors WHERE id = $1", squatter)
    again = run_job("backfill", spec_doc(running_api, tmp_path), tmp_path, SECRET)
    assert again.code == 0 and again.summary["rejected_total"] == 0, again.stderr
    full = run_job("verify-full", spec_doc(running_api, tmp_path), tmp_path, SECRET)
    assert full.code == 0, full.stderr
    assert full.summary["missing_count"] == 0 and full.summary["different_count"] == 0
