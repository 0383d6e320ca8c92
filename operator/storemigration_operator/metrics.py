"""The operator's own Prometheus metrics, so the chart's alerts can watch the migration."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prometheus_client import Counter, Gauge, start_http_server
from pydantic import ValidationError

from .core.durations import parse_time
from .core.spec import Phase
from .core.status import MigrationStatus
from .core.verify import verify_due
from .settings import OperatorSettings

PHASE = Gauge("storemigration_operator_phase", "1 for the current phase",
              ["namespace", "name", "phase"])
READ_PERCENT = Gauge("storemigration_operator_read_percent", "reads served by PostgreSQL",
                     ["namespace", "name"])
GATE_VALUE = Gauge("storemigration_operator_gate_value", "last gate reading",
                   ["namespace", "name", "gate"])
ROLLBACKS = Counter("storemigration_operator_rollbacks_total", "read rollbacks",
                    ["namespace", "name"])
POD_READ_PERCENT = Gauge("storemigration_operator_pod_read_percent",
                         "reads served by PostgreSQL as each API pod reports it applied "
                         "(actual; storemigration_operator_read_percent is configured)",
                         ["namespace", "name", "pod", "store"])
POD_CONFIRMED = Gauge("storemigration_operator_pod_switches_confirmed",
                      "1 when the pod reports the configured switch revision",
                      ["namespace", "name", "pod"])
LAST_VERIFY = Gauge("storemigration_operator_last_verify_success_timestamp_seconds",
                    "when a verify Job last passed", ["namespace", "name"])
VERIFY_DUE = Gauge("storemigration_operator_verify_due_timestamp_seconds",
                   "when the next periodic verify must have passed (last pass + "
                   "spec.verify.interval); absent while none is scheduled",
                   ["namespace", "name"])
RUNNING = Gauge("storemigration_operator_running", "1 while the operator serves metrics "
                "(the chart alerts on its absence)")


def _verify_due(status: dict[str, Any]) -> datetime | None:
    """The next periodic verify's due time, from the status keys it depends on."""
    keys = ("phase", "readPercent", "lastVerifySuccessTime", "lastValidSpec")
    try:
        st = MigrationStatus.model_validate({k: status[k] for k in keys if k in status})
    except ValidationError:
        return None
    return verify_due(st, st.last_valid_spec) if st.last_valid_spec is not None else None


def serve() -> None:
    settings = OperatorSettings()
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_addr)
        RUNNING.set(1)


def record(namespace: str, name: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    for phase in Phase:
        PHASE.labels(namespace, name, phase.name).set(1 if new.get("phase") == phase.name else 0)
    READ_PERCENT.labels(namespace, name).set(new.get("readPercent", 0))
    gate = new.get("lastGate") or {}
    for key in ("errorRate", "p50Seconds", "p95Seconds", "p99Seconds", "mismatchRatio",
                "requests"):
        value = gate.get(key)
        if isinstance(value, str):
            value = float(value)  # "+Inf": JSON has no infinity, Prometheus does
        if value is not None:
            GATE_VALUE.labels(namespace, name, key).set(value)
    added = int(new.get("rollbacks", 0)) - int(old.get("rollbacks", 0))
    if added > 0:
        ROLLBACKS.labels(namespace, name).inc(added)
    for pod in new.get("pods") or []:
        POD_CONFIRMED.labels(namespace, name, pod["name"]).set(1 if pod.get("confirmed") else 0)
        for key, value in (pod.get("switches") or {}).items():
            store, _, switch = key.partition(".")
            if switch == "read_percent":
                POD_READ_PERCENT.labels(namespace, name, pod["name"], store).set(float(value))
    verified = parse_time(new.get("lastVerifySuccessTime"))
    if verified is not None:
        LAST_VERIFY.labels(namespace, name).set(verified.timestamp())
    due = _verify_due(new)
    if due is not None:
        VERIFY_DUE.labels(namespace, name).set(due.timestamp())
    else:
        try:
            VERIFY_DUE.remove(namespace, name)
        except KeyError:
            pass
