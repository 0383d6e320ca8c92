"""The resumable backfill over real HTTP and PostgreSQL: a backfill Job (the script,
a real process) killed with SIGKILL at about half way and started again under the same
run continues after the last committed batch, copies no more than one batch twice,
and ends with a full verify in complete agreement."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from app.metrics import render
from prometheus_client.parser import text_string_to_metric_families

from tests.harness.postgres import PgDatabase
from tests.migration.admin_server import TOKEN, AdminServer
from tests.migration.conftest import populate
from tests.migration.test_rollback import SCRIPTS, run, summary

BATCH = 20
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def backfill_gauges(text: str) -> dict[tuple[str, str, str], float]:
    """storemigration_backfill_records by (run, kind, count) from a /metrics page."""
    return {(s.labels["run"], s.labels["kind"], s.labels["count"]): s.value
            for family in text_string_to_metric_families(text)
            if family.name == "storemigration_backfill_records" for s in family.samples}


def _progress(server: AdminServer, run_name: str) -> dict[str, Any] | None:
    answer = httpx.get(f"{server.url}/api/admin/backfill/progress", params={"run": run_name},
                       headers=AUTH, timeout=10)
    return answer.json() if answer.status_code == 200 else None


def _start(server: AdminServer, run_name: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(SCRIPTS / "backfill_postgres.py"), "--api-url", server.url,
         "--run", run_name, "--batch-size", str(BATCH), "--delay", "0.15", "--quiet"],
        env={**os.environ, "ADMIN_TOKEN": TOKEN}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)


async def test_backfill_killed_half_way_resumes_from_its_checkpoint(
    pg_database: PgDatabase, tmp_path: Path,
) -> None:
    memory_only = {"dual_write_mode": False}  # PostgreSQL starts empty
    with AdminServer(pg_database.app_dsn, phase_env=memory_only) as server:
        state = server.app.state.migration
        for tag in "abcd":
            server.call(populate(state.memory_graph, state.memory_tasks, n=10, tag=tag))
        job = _start(server, "bf-1")
        seen: dict[str, Any] | None = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            seen = _progress(server, "bf-1")
            if seen and seen["percent"] >= 45:
                break
            await asyncio.sleep(0.05)
        job.send_signal(signal.SIGKILL)
        job.wait(10)
        assert seen is not None and 45 <= seen["percent"] < 80, seen
        await asyncio.sleep(0.5)  # a batch the API was copying when the Job died completes
        at_kill = _progress(server, "bf-1")
        assert at_kill is not None and not at_kill["finished"]
        total = at_kill["total"]
        assert total == 276 and at_kill["kinds"]["projects"]["total"] == 40
        # the API's gauges (what Prometheus scrapes from /metrics and the operator's status
        # shows) agree; this in-process server mounts only the admin routes, so the registry
        # is rendered as /metrics renders it
        gauges = backfill_gauges(render()[0].decode())
        assert gauges[("bf-1", "projects", "total")] == 40
        assert sum(v for (r, _, c), v in gauges.items() if r == "bf-1" and c == "done") \
            == at_kill["done"]
        assert sum(v for (r, _, c), v in gauges.items() if c == "total") == total

        again = run("backfill_postgres.py", "--api-url", server.url, "--run", "bf-1",
                    "--batch-size", str(BATCH))
        assert again.returncode == 0, again.stderr
        out = summary(again)
        assert out["finished"] is True and out["done"] == total and out["percent"] == 100.0
        # the second Job copied exactly what the first had not committed
        assert out["this_job"]["records"] == total - at_kill["done"]
        copied_twice = at_kill["done"] + out["this_job"]["records"] - total
        assert 0 <= copied_twice <= BATCH
        assert out["written_total"] == total and out["skipped_total"] <= BATCH
        assert set(out["kinds"]) == {"projects", "contributors", "assets", "dependencies",
                                     "contributions", "tasks"}
        assert all(k["finished"] and k["done"] == k["total"] for k in out["kinds"].values())
        assert out["eta_seconds"] == 0.0 and out["rate_per_second"] > 0

        # a third run of the finished checkpoint copies nothing; --restart copies anew
        idle = summary(run("backfill_postgres.py", "--api-url", server.url, "--run", "bf-1"))
        assert idle["this_job"]["records"] == 0 and idle["finished"] is True

        verified = run("verify_data_consistency.py", "--api-url", server.url, "--mode", "full",
                       "--chunk", "50", "--report", str(tmp_path / "full.jsonl"))
        report = summary(verified)
        assert (tmp_path / "full.jsonl").read_text() == ""
        assert verified.returncode == 0, verified.stderr
        assert report["checked"] == total and report["mismatches"] == 0
        assert report["extra_count"] == 0 and report["in_flight_count"] == 0
