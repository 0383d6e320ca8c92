"""The benchmark and load-test commands run end to end and produce numbers.

Short versions of `python -m benchmarks stores` and `python -m benchmarks load`, each
as a real subprocess against a real PostgreSQL (and, for the load test, the real API
under uvicorn driven by wrk). They assert that every phase produced numbers and that
the load saw zero errors; never latencies, which belong to the benchmark output.
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
        for backend in ("memory", "postgres", "dual-write", "read-50%"):
            assert row[backend]["n"] == 20 and row[backend]["p99_ms"] >= row[backend]["p50_ms"]
            assert row[backend]["ops_s"] > 0
    bulk = result["bulk_import"]["1000"]
    assert bulk["import_graph_s"] > 0 and bulk["raw_copy_s"] > 0
    assert "of COPY speed" in done.stdout


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is installed by scripts/bootstrap.sh")
def test_load_test_quick_run_has_zero_errors(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    run_benchmark("load", "--quick", "--out", str(out), timeout=300)
    result = json.loads(out.read_text())
    for phase in ("fixed", "max"):
        r = result[phase]
        assert r["requests"] > 0 and r["req_s"] > 0 and r["p99_ms"] >= r["p50_ms"] > 0
        assert r["errors"] == 0, (phase, r["error_detail"], result["non_2xx_by_route"])
    assert result["non_2xx_by_route"] == {}
    for store in ("graph_store", "agent_task_store"):
        status = result["store_status"][store]
        assert status["write_target"] == "dual" and status["dual_write_failures"] == 0
        assert status["reads_served"]["postgres"] > 0 and status["reads_served"]["memory"] > 0
