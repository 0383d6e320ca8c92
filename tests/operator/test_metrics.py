"""The operator's own metrics, served over HTTP as Prometheus scrapes them: the phase,
read percentage, gate readings, rollbacks and the last successful verify, which the
chart's alerts (tests/chart/alerts.test.yaml) are written against."""

from __future__ import annotations

import httpx
import pytest
from storemigration_operator import metrics

from devcluster.net import free_port, wait_http


def sample(text: str, metric: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(metric + "{"):
            continue
        body = line[len(metric) + 1 : line.index("}")]
        found = dict(part.split("=", 1) for part in body.split(","))
        if all(found.get(k) == f'"{v}"' for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {metric}{labels}")


def test_metrics_follow_status_and_are_served(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("OPERATOR_METRICS_PORT", str(port))
    monkeypatch.setenv("OPERATOR_METRICS_ADDR", "127.0.0.1")
    metrics.serve()
    wait_http(f"http://127.0.0.1:{port}/metrics", timeout=10)

    before = {"phase": "ReadSwitchover", "readPercent": 30, "rollbacks": 0}
    after = {
        "phase": "ReadSwitchover",
        "readPercent": 0,
        "rollbacks": 1,
        "lastGate": {"errorRate": 0.25, "p95Seconds": "+Inf", "requests": 400},
        "lastVerifySuccessTime": "2026-01-02T03:04:05.000Z",
        "pods": [{"name": "api-0", "confirmed": True,
                  "switches": {"graph.read_percent": "0", "graph.dual_write": "true",
                               "agent_task.read_percent": "30"}},
                 {"name": "api-1", "confirmed": False, "switches": {}}],
    }
    metrics.record("prod", "graph", before, after)
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text

    assert sample(text, "storemigration_operator_phase", name="graph",
                  phase="ReadSwitchover") == 1
    assert sample(text, "storemigration_operator_phase", name="graph", phase="DualWrite") == 0
    assert sample(text, "storemigration_operator_read_percent", name="graph") == 0
    assert sample(text, "storemigration_operator_gate_value", name="graph",
                  gate="errorRate") == 0.25
    assert sample(text, "storemigration_operator_gate_value", name="graph",
                  gate="p95Seconds") == float("inf")
    assert sample(text, "storemigration_operator_rollbacks_total", name="graph") >= 1
    assert sample(text, "storemigration_operator_pod_read_percent", name="graph", pod="api-0",
                  store="agent_task") == 30
    assert sample(text, "storemigration_operator_pod_read_percent", name="graph", pod="api-0",
                  store="graph") == 0
    assert sample(text, "storemigration_operator_pod_switches_confirmed", name="graph",
                  pod="api-1") == 0
    assert sample(text, "storemigration_operator_last_verify_success_timestamp_seconds",
                  name="graph") == 1767323045.0
    assert sample_plain(text, "storemigration_operator_running") == 1  # absent(): alert

    # The periodic verify's due time (the stale alert counts from it): last pass +
    # spec.verify.interval while periodic verifies run, gone once they stop.
    due = "storemigration_operator_verify_due_timestamp_seconds"
    assert not has_series(text, due, "graph")  # no lastValidSpec: nothing known
    spec = {"deployment": "api", "verify": {"interval": "12h"}}
    metrics.record("prod", "graph", after, {**after, "phase": "DualWrite",
                                            "lastValidSpec": spec})
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert sample(text, due, name="graph") == 1767323045.0 + 12 * 3600
    metrics.record("prod", "graph", after, {**after, "phase": "ReadSwitchover",
                                            "readPercent": 100, "lastValidSpec": spec})
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert not has_series(text, due, "graph")  # at 100% promotion verifies in full instead


def sample_plain(text: str, metric: str) -> float:
    for line in text.splitlines():
        if line.startswith(metric + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {metric}")


def has_series(text: str, metric: str, name: str) -> bool:
    return any(line.startswith(metric + "{") and f'name="{name}"' in line
               for line in text.splitlines())
