"""The StoreMigration spec as frozen dataclasses, with every default in one place.

`parse_spec` is the single gate between user YAML and the planner: anything it accepts the
planner can act on, and anything it rejects becomes a PermanentError, a Degraded condition
(reason InvalidSpec) and a Warning event in the handlers.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from .durations import parse_duration

STORES = ("graph", "agent_task")
JOB_KINDS = ("backfill", "verify", "verify-full", "snapshot", "rehydrate", "archive")


class Phase(enum.IntEnum):
    Preparation = 0
    DualWrite = 1
    ReadSwitchover = 2
    PostgresPrimary = 3
    Cleanup = 4
    Complete = 5


TARGET_PHASES = ("Preparation", "DualWrite", "ReadSwitchover", "PostgresPrimary", "Cleanup")

DEFAULT_QUERIES: Mapping[str, str] = {
    "errorRate": (
        'sum(rate(storemigration_store_operations_total{backend="postgres",outcome="error"}[W]))'
        ' / sum(rate(storemigration_store_operations_total{backend="postgres"}[W]))'
    ),
    "p95": (
        "histogram_quantile(0.95, sum by (le) "
        '(rate(storemigration_store_operation_duration_seconds_bucket{backend="postgres"}[W])))'
    ),
    "requests": 'sum(increase(storemigration_store_operations_total{backend="postgres"}[W]))',
    "mismatchRatio": (
        'sum(rate(storemigration_shadow_reads_total{result="mismatch"}[W]))'
        " / sum(rate(storemigration_shadow_reads_total[W]))"
    ),
}


class InvalidSpec(ValueError):
    """The spec cannot be acted on; the message names the field."""


@dataclass(frozen=True)
class ReadStep:
    start: int = 10
    step: int = 10
    interval: timedelta = timedelta(hours=24)


@dataclass(frozen=True)
class Gates:
    prometheus_url: str | None = None
    interval: timedelta = timedelta(minutes=1)
    window: str = "5m"
    error_rate_ceiling: float = 0.01
    p95_ceiling_seconds: float = 0.5
    mismatch_ratio_ceiling: float = 0.01
    min_requests: float = 100.0
    queries: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_QUERIES))

    def query(self, name: str) -> str:
        """The PromQL for one gate with the window substituted for [W]."""
        return self.queries[name].replace("[W]", f"[{self.window}]")


@dataclass(frozen=True)
class JobTemplate:
    image: str | None = None
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SecretRef:
    """A key of a Secret in the StoreMigration's namespace (env valueFrom.secretKeyRef)."""

    name: str
    key: str = "ADMIN_TOKEN"


@dataclass(frozen=True)
class Rollback:
    retry: bool = True
    max_retries: int = 3
    retry_after: timedelta | None = None


@dataclass(frozen=True)
class Cleanup:
    approved: bool = False
    archive: str | None = None


@dataclass(frozen=True)
class MigrationSpec:
    deployment: str
    container: str = "api"
    stores: tuple[str, ...] = STORES
    target_phase: Phase = Phase.PostgresPrimary
    paused: bool = False
    retry_token: str = ""
    api_url: str = "http://api:8000"
    snapshot_path: str = "/data/snapshots/final.json"
    admin_token_secret: SecretRef | None = None
    snapshot_claim: str | None = None
    read_step: ReadStep = ReadStep()
    gates: Gates = Gates()
    verify_interval: timedelta = timedelta(hours=24)
    primary_hold: timedelta = timedelta(hours=48)
    rollback: Rollback = Rollback()
    cleanup: Cleanup = Cleanup()
    jobs: Mapping[str, JobTemplate] = field(default_factory=dict)

    @property
    def retry_after(self) -> timedelta:
        return self.rollback.retry_after or self.read_step.interval


def _get(doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...], default: Any,
         where: str) -> Any:
    value = doc.get(key, default)
    if value is None:
        return default
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise InvalidSpec(f"{where}{key}: expected {getattr(kind, '__name__', kind)}, "
                          f"got {value!r}")
    return value


def _duration(doc: Mapping[str, Any], key: str, default: timedelta, where: str) -> timedelta:
    text = _get(doc, key, str, None, where)
    if text is None:
        return default
    try:
        return parse_duration(text)
    except ValueError as e:
        raise InvalidSpec(f"{where}{key}: {e}") from None


def _section(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = doc.get(key) or {}
    if not isinstance(value, Mapping):
        raise InvalidSpec(f"{key}: expected an object")
    return value


def _ratio(doc: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value: float = _get(doc, key, float, default, where)
    if not 0.0 <= value <= 1.0:
        raise InvalidSpec(f"{where}{key}: must be between 0 and 1, got {value}")
    return value


def _percent(doc: Mapping[str, Any], key: str, default: int, where: str, low: int = 0) -> int:
    value: int = _get(doc, key, int, default, where)
    if not low <= value <= 100:
        raise InvalidSpec(f"{where}{key}: must be between {low} and 100, got {value}")
    return value


def _job_template(doc: Mapping[str, Any], kind: str) -> JobTemplate:
    where = f"jobs.{kind}."
    command = _get(doc, "command", list, [], where)
    args = _get(doc, "args", list, [], where)
    env_doc = _get(doc, "env", list, [], where)
    env: list[tuple[str, str]] = []
    for item in env_doc:
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise InvalidSpec(f"{where}env: items need a name and a value")
        env.append((item["name"], str(item.get("value", ""))))
    return JobTemplate(
        image=_get(doc, "image", str, None, where),
        command=tuple(str(c) for c in command),
        args=tuple(str(a) for a in args),
        env=tuple(env),
    )


def _secret_ref(doc: Mapping[str, Any], key: str) -> SecretRef | None:
    if doc.get(key) is None:
        return None
    ref = _section(doc, key)
    name = _get(ref, "name", str, "", f"{key}.")
    secret_key = _get(ref, "key", str, "ADMIN_TOKEN", f"{key}.")
    if not name or not secret_key:
        raise InvalidSpec(f"{key}: needs a Secret name and a non-empty key")
    return SecretRef(name=name, key=secret_key)


def parse_spec(doc: Mapping[str, Any]) -> MigrationSpec:
    """Validate a StoreMigration's .spec and fill in defaults; raise InvalidSpec."""
    if not isinstance(doc, Mapping):
        raise InvalidSpec("spec: expected an object")
    deployment = _get(doc, "deployment", str, None, "")
    if not deployment:
        raise InvalidSpec("deployment: required (the name of the API Deployment)")
    stores = tuple(_get(doc, "stores", list, list(STORES), ""))
    if not stores or any(s not in STORES for s in stores) or len(set(stores)) != len(stores):
        raise InvalidSpec(f"stores: a non-empty list of distinct {STORES}, got {list(stores)}")
    target = _get(doc, "targetPhase", str, "PostgresPrimary", "")
    if target not in TARGET_PHASES:
        raise InvalidSpec(f"targetPhase: one of {TARGET_PHASES}, got {target!r}")

    rs = _section(doc, "readStep")
    read_step = ReadStep(
        start=_percent(rs, "start", 10, "readStep.", low=1),
        step=_percent(rs, "step", 10, "readStep.", low=1),
        interval=_duration(rs, "interval", timedelta(hours=24), "readStep."),
    )
    g = _section(doc, "gates")
    queries = dict(DEFAULT_QUERIES)
    for name, query in _section(g, "queries").items():
        if name not in DEFAULT_QUERIES or not isinstance(query, str) or not query.strip():
            raise InvalidSpec(f"gates.queries.{name}: unknown gate or empty query")
        queries[name] = query
    window = _get(g, "window", str, "5m", "gates.")
    _duration(g, "window", timedelta(minutes=5), "gates.")
    gates = Gates(
        prometheus_url=_get(g, "prometheusURL", str, None, "gates."),
        interval=_duration(g, "interval", timedelta(minutes=1), "gates."),
        window=window,
        error_rate_ceiling=_ratio(g, "errorRateCeiling", 0.01, "gates."),
        p95_ceiling_seconds=_get(g, "p95CeilingSeconds", float, 0.5, "gates."),
        mismatch_ratio_ceiling=_ratio(g, "mismatchRatioCeiling", 0.01, "gates."),
        min_requests=_get(g, "minRequests", float, 100.0, "gates."),
        queries=queries,
    )
    if gates.p95_ceiling_seconds <= 0 or gates.min_requests < 0:
        raise InvalidSpec("gates: p95CeilingSeconds must be > 0 and minRequests >= 0")
    if gates.interval > _duration(g, "window", timedelta(minutes=5), "gates."):
        raise InvalidSpec(f"gates.interval ({g.get('interval')}) must not exceed gates.window "
                          f"({window}): each evaluation covers one window, and time between "
                          "windows would go unseen (a step needs its whole interval covered)")
    rb = _section(doc, "rollback")
    rollback = Rollback(
        retry=_get(rb, "retry", bool, True, "rollback."),
        max_retries=_get(rb, "maxRetries", int, 3, "rollback."),
        retry_after=_duration(rb, "retryAfter", timedelta(0), "rollback.") or None,
    )
    cu = _section(doc, "cleanup")
    archive = _get(cu, "archive", str, None, "cleanup.")
    if archive is not None and not (archive.startswith("/") or archive.startswith("s3://")):
        raise InvalidSpec(f"cleanup.archive: an absolute volume path or an s3:// URL: {archive!r}")
    cleanup = Cleanup(approved=_get(cu, "approved", bool, False, "cleanup."), archive=archive)
    jobs_doc = _section(doc, "jobs")
    for kind in jobs_doc:
        if kind not in JOB_KINDS:
            raise InvalidSpec(f"jobs.{kind}: unknown Job kind; one of {JOB_KINDS}")
    jobs = {kind: _job_template(_section(jobs_doc, kind), kind) for kind in jobs_doc}
    return MigrationSpec(
        deployment=deployment,
        container=_get(doc, "container", str, "api", ""),
        stores=stores,
        target_phase=Phase[target],
        paused=_get(doc, "paused", bool, False, ""),
        retry_token=str(doc.get("retryToken") or ""),
        api_url=_get(doc, "apiURL", str, "http://api:8000", ""),
        snapshot_path=_get(doc, "snapshotPath", str, "/data/snapshots/final.json", ""),
        admin_token_secret=_secret_ref(doc, "adminTokenSecret"),
        snapshot_claim=_get(_section(doc, "snapshotVolume"), "claimName", str, None,
                            "snapshotVolume.") or None,
        read_step=read_step,
        gates=gates,
        verify_interval=_duration(_section(doc, "verify"), "interval", timedelta(hours=24),
                                  "verify."),
        primary_hold=_duration(doc, "primaryHold", timedelta(hours=48), ""),
        rollback=rollback,
        cleanup=cleanup,
        jobs=jobs,
    )
