"""One OperatorSettings holds every variable the operator reads: no other module of the
operator touches os.environ (checked on the source), and the names are the chart's."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from storemigration_operator.settings import OperatorSettings

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "storemigration_operator"


def environ_reads(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv"):
            found.append(f"{path.name}:{node.lineno} os.{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module == "os" and any(
                a.name in ("environ", "getenv") for a in node.names):
            found.append(f"{path.name}:{node.lineno} from os import")
    return found


def test_no_module_of_the_operator_reads_the_environment_itself() -> None:
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 20
    assert [hit for path in sources for hit in environ_reads(path)] == []


def test_the_names_the_chart_and_the_local_cluster_set(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    env = {"WATCH_NAMESPACE": "sm", "OPERATOR_PEERING": "store-migration",
           "OPERATOR_VERBOSE": "1", "OPERATOR_LIVENESS": "http://0.0.0.0:8080/healthz",
           "OPERATOR_METRICS_PORT": "9100", "OPERATOR_TIMER_INTERVAL": "1",
           "OPERATOR_RETRY_DELAY": "2", "PROMETHEUS_URL": "http://prom:9090",
           "OPERATOR_GATE_READINGS_FILE": "/tmp/r.json", "KUBECONFIG": "/k"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = OperatorSettings()
    assert (s.watch_namespace, s.peering, s.verbose, s.liveness, s.metrics_port) == (
        "sm", "store-migration", True, "http://0.0.0.0:8080/healthz", 9100)
    assert (s.timer_interval, s.retry_delay, s.prometheus_url, s.kubeconfig) == (
        1.0, 2.0, "http://prom:9090", "/k")
    assert str(s.gate_readings_file) == "/tmp/r.json"


def test_empty_means_unset_and_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCH_NAMESPACE", "")  # the chart's cluster-wide scope
    monkeypatch.delenv("OPERATOR_TIMER_INTERVAL", raising=False)
    assert OperatorSettings().watch_namespace is None
    assert OperatorSettings().timer_interval == 60.0
    monkeypatch.setenv("OPERATOR_TIMER_INTERVAL", "soon")
    with pytest.raises(ValueError, match="timer_interval"):
        OperatorSettings()
