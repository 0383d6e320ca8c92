"""Issue 6's main job, end to end: `python -m demo` as a user runs it (with the --fast
schedule), healthy and with PostgreSQL faults, judged by the summary it writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_demo(tmp_path: Path, *flags: str) -> tuple[int, str, dict[str, Any]]:
    out = tmp_path / "summary.json"
    proc = subprocess.run([sys.executable, "-m", "demo", "--fast", "--json", str(out), *flags],
                          cwd=ROOT, capture_output=True, text=True, timeout=420, check=False)
    text = proc.stdout + proc.stderr
    assert out.exists(), f"no summary written (exit {proc.returncode}):\n{text[-4000:]}"
    return proc.returncode, text, json.loads(out.read_text())


@pytest.mark.slow
def test_demo_migrates_to_complete_without_losing_a_write(tmp_path: Path) -> None:
    code, text, s = run_demo(tmp_path)
    assert code == 0, text[-4000:]
    assert s["reached"] and s["final_phase"] == "Complete"
    assert s["acknowledged_writes_checked"] > 0 and s["lost"] == 0
    assert "ZERO RECORDS LOST" in text
    assert s["backfill"]["ok"] and s["backfill"]["records"] > 0
    gating = [v for v in s["verify_runs"] if v["phase"] in ("DualWrite", "ReadSwitchover")]
    assert gating and all(v["passed"] and v["mismatches"] == 0 for v in gating)
    assert s["rollbacks"] == []
    assert sum(s["rows_in_postgres"].values()) > 0
    assert {"DualWrite", "ReadSwitchover", "PostgresPrimary"} <= set(s["p95_ms_by_phase"])
    assert s["traffic"]["errors_5xx"] == 0


@pytest.mark.slow
def test_demo_with_faults_ends_at_zero_percent_with_the_reason(tmp_path: Path) -> None:
    code, text, s = run_demo(tmp_path, "--faults")
    assert code == 0, text[-4000:]
    assert s["reached"] and s["final_phase"] == "ReadSwitchover"
    assert s["final_read_percent"] == 0
    assert s["fault_injected_at"] is not None
    rollback = s["rollbacks"][-1]  # the fault's; load alone may have caused an earlier one
    assert rollback["to"] == 0 and rollback["from"] >= 20
    assert "error rate" in rollback["reason"]
    assert rollback["readings"]["errorRate"] > 0.01
    assert s["acknowledged_writes_checked"] > 0 and s["lost"] == 0
