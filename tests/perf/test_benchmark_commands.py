"""The benchmark and load-test commands run end to end and produce numbers.

Short versions of `python -m benchmarks stores` and `python -m benchmarks load`, each
as a real subprocess against a real PostgreSQL (and, for the load test, the real API
under uvicorn driven by wrk). They assert that every phase produced numbers, that the
load saw zero HTTP errors and that a full verify afterwards finds nothing missing or
different (a dual-write copy that failed meanwhile must have been copied again by the
retry queue); never latencies, which belong to the benchmark output.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_benchmark(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    done = subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_store_benchmark_measures_every_operation_on_every_backend(tmp_path: Path) -> None:
    out = tmp_path / "stores.json"
    done = run_benchmark("stores", "--smoke", "--out", str(out), timeout=300)
    result = json.loads(out.read_text())
    ops = result["operations"]
    assert len(ops) == 27 and "search (2k projects)" in ops and "get_pipeline_status" in ops
    for row in ops.values():
        for backend in ("memory", "postgres", "direct", "cleanup-router", "dual-write",
                        "read-50%"):
            assert row[backend]["n"] == 20 and row[backend]["p99_ms"] >= row[backend]["p50_ms"]
            assert row[backend]["ops_s"] > 0
        for backend in ("direct", "cleanup-router"):
            assert row[backend]["p50_ratio_to_postgres"] > 0
    for backend in ("direct", "cleanup-router"):
        ratio = result["vs_postgres"][backend]
        assert ratio["operations"] == 27 and ratio["min"] <= ratio["median"] <= ratio["max"]
    bulk = result["bulk_import"]["1000"]
    assert bulk["import_graph_s"] > 0 and bulk["raw_copy_s"] > 0
    assert "of COPY speed" in done.stdout and "p50 ratio to postgres" in done.stdout


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is installed by scripts/bootstrap.sh")
def test_load_test_quick_run_has_zero_errors_and_verify_finds_nothing(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    done = run_benchmark("load", "--quick", "--out", str(out), timeout=300)
    result = json.loads(out.read_text())
    for phase in ("fixed", "max"):
        r = result[phase]
        assert r["requests"] > 0 and r["req_s"] > 0 and r["p99_ms"] >= r["p50_ms"] > 0
        assert r["errors"] == 0, (phase, r["error_detail"], result["non_2xx_by_route"])
        assert len(r["slices"]) == 2 and sum(s["requests"] for s in r["slices"]) == r["requests"]
        assert r["dual_write_failures"] == sum(s["dual_write_failures"] for s in r["slices"])
        assert min(s["p50_ms"] for s in r["slices"]) <= r["p50_ms"] <= r["p99_ms"] <= r["max_ms"]
    assert result["non_2xx_by_route"] == {}
    for store in ("graph_store", "agent_task_store"):
        status = result["store_status"][store]
        assert status["write_target"] == "dual" and status["copy_retry"]["enabled"]
        assert status["reads_served"]["postgres"] > 0 and status["reads_served"]["memory"] > 0
    verify = result["verify"]
    assert verify["passed"] and verify["missing"] == 0 and verify["different"] == 0, verify
    seeded = sum(result["seeded"].values())
    assert verify["checked"] > seeded, "the verify covers the seeded and the loaded records"
    assert verify["queue_depth_at_verify"] == 0
    assert "dual-write copy failures" in done.stdout and "full verify after the run" in done.stdout


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is installed by scripts/bootstrap.sh")
def test_scale_benchmark_small_run_backfills_verifies_and_copies(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    done = run_benchmark("scale", "--records", "3000", "--baseline-seconds", "2",
                         "--batch-size", "1000", "--chunk", "1000", "--out", str(out),
                         timeout=300)
    result = json.loads(out.read_text())
    assert sum(result["mix"].values()) == 3000 and result["mix"]["contributions"] == 1050
    p = result["phases"]
    for name in ("baseline", "backfill", "verify"):
        load = p[name]["load"]
        assert load["requests"] > 0 and load["p95_ms"] > 0 and load["errors"] == 0, (name, load)
        assert len(p[name]["loadavg_at_start"]) == 3
    backfill = p["backfill"]["summary"]
    assert backfill["exit_code"] == 0 and backfill["finished"]
    assert backfill["done"] == backfill["total"] >= 3000 and backfill["rejected_total"] == 0
    verify = p["verify"]["summary"]
    assert verify["exit_code"] == 0 and verify["checked"] >= 3000
    assert verify["missing_count"] == verify["different_count"] == verify["extra_count"] == 0
    assert p["verify"]["api_rss_mb_peak"] > 0 and p["copy"]["rows"] >= 3000
    assert p["backfill"]["rate_ratio_to_copy"] > 0 and p["verify"]["p95_ratio_to_baseline"] > 0
    assert "of COPY" in done.stdout and "API RSS" in done.stdout
