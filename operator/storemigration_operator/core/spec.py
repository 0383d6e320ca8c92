"""The StoreMigration spec as pydantic models: one set of defaults, and the CRD's source.

`parse_spec` is the single gate between user YAML and the planner: anything it accepts the
planner can act on, and anything it rejects becomes a PermanentError, a Degraded condition
(reason InvalidSpec) and a Warning event in the handlers. The CRD's openAPIV3Schema is
generated from these models (core.crd, scripts/sync_crd.py), so admission and the operator
check the same rules and every field's description is what `kubectl explain` prints.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from .durations import format_duration
from .fields import Duration, SpecModel

STORES = ("graph", "agent_task")
JOB_KINDS = ("backfill", "verify", "verify-full", "snapshot", "rehydrate", "archive", "repair")
StoreName = Literal["graph", "agent_task"]
TargetPhase = Literal["Preparation", "DualWrite", "ReadSwitchover", "PostgresPrimary", "Cleanup"]
GATE_NAMES = ("errorRate", "p50", "p95", "p99", "mismatchRatio", "requests")


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
    "p50": (
        "histogram_quantile(0.5, sum by (le) "
        '(rate(storemigration_store_operation_duration_seconds_bucket{backend="postgres"}[W])))'
    ),
    "p95": (
        "histogram_quantile(0.95, sum by (le) "
        '(rate(storemigration_store_operation_duration_seconds_bucket{backend="postgres"}[W])))'
    ),
    "p99": (
        "histogram_quantile(0.99, sum by (le) "
        '(rate(storemigration_store_operation_duration_seconds_bucket{backend="postgres"}[W])))'
    ),
    "requests": 'sum(increase(storemigration_store_operations_total{backend="postgres"}[W]))',
    "mismatchRatio": (
        'sum(rate(storemigration_shadow_reads_total{result="mismatch"}[W]))'
        " / sum(rate(storemigration_shadow_reads_total[W]))"
    ),
}


def all_stores() -> list[StoreName]:
    return ["graph", "agent_task"]


class InvalidSpec(ValueError):
    """The spec cannot be acted on; the message names the field."""


class ReadStep(SpecModel):
    """How reads move from memory to PostgreSQL during ReadSwitchover."""

    start: int = Field(10, ge=1, le=100, description="Percentage of reads served by "
                       "PostgreSQL at the first step.")
    step: int = Field(10, ge=1, le=100, description="Percentage points added at each later "
                      "step, up to 100.")
    interval: Duration = Field(timedelta(hours=24), description="How long every gate must "
                               "hold before the next step (Kubernetes duration: 90s, 5m, 24h).")


class GateQueries(SpecModel):
    """PromQL per gate; `[W]` is replaced by gates.window. Unset gates keep the default."""

    error_rate: str = Field(DEFAULT_QUERIES["errorRate"], min_length=1, pattern=r"\S",
                            description="Share of PostgreSQL store operations that failed.")
    p50: str = Field(DEFAULT_QUERIES["p50"], min_length=1, pattern=r"\S",
                     description="Median (p50) latency of PostgreSQL store operations, in "
                     "seconds.")
    p95: str = Field(DEFAULT_QUERIES["p95"], min_length=1, pattern=r"\S",
                     description="95th percentile latency of PostgreSQL store operations, in "
                     "seconds.")
    p99: str = Field(DEFAULT_QUERIES["p99"], min_length=1, pattern=r"\S",
                     description="99th percentile latency of PostgreSQL store operations, in "
                     "seconds.")
    requests: str = Field(DEFAULT_QUERIES["requests"], min_length=1, pattern=r"\S",
                          description="PostgreSQL store operations in the window (traffic "
                          "below gates.minRequests makes an evaluation Inconclusive).")
    mismatch_ratio: str = Field(DEFAULT_QUERIES["mismatchRatio"],
                                min_length=1, pattern=r"\S",
                                description="Share of shadow reads whose answers differed.")

    def get(self, gate: str) -> str:
        return {"errorRate": self.error_rate, "p50": self.p50, "p95": self.p95,
                "p99": self.p99, "requests": self.requests,
                "mismatchRatio": self.mismatch_ratio}[gate]


class Gates(SpecModel):
    """Prometheus gates, evaluated every interval over the last window."""

    prometheus_url: str | None = Field(None, alias="prometheusURL", description="Prometheus "
                                       "base URL (else the operator's PROMETHEUS_URL).")
    interval: Duration = Field(timedelta(minutes=1), description="How often the gates are "
                               "evaluated; must not exceed window.")
    window: Duration = Field(timedelta(minutes=5), description="The range each evaluation "
                             "covers (PromQL [W]).")
    error_rate_ceiling: float = Field(0.01, ge=0, le=1, description="Highest error rate that "
                                      "passes (0.01 = 1%).")
    p50_ceiling_seconds: float | None = Field(None, gt=0, description="Highest p50 "
                                              "(median) latency that passes, in seconds "
                                              "(unset: p50 is read and reported, not gated).")
    p95_ceiling_seconds: float = Field(0.5, gt=0, description="Highest p95 latency that "
                                       "passes, in seconds.")
    p99_ceiling_seconds: float | None = Field(None, gt=0, description="Highest p99 latency "
                                              "that passes, in seconds (unset: p99 is read "
                                              "and reported, not gated).")
    mismatch_ratio_ceiling: float = Field(0.01, ge=0, le=1, description="Highest shadow-read "
                                          "mismatch ratio that passes; also the verify Jobs' "
                                          "--max-mismatch.")
    min_requests: float = Field(100.0, ge=0, description="Fewest requests in a window for an "
                                "evaluation to count; fewer is Inconclusive (holds, never "
                                "rolls back).")
    dry_run: bool = Field(False, description="Evaluate and report every gate, but neither step "
                          "nor roll back on them: for tuning thresholds on live traffic.")
    queries: GateQueries = Field(default_factory=GateQueries,
                                 description="PromQL overrides per gate.")

    @model_validator(mode="after")
    def _interval_within_window(self) -> Gates:
        if self.interval > self.window:
            raise ValueError(
                f"gates.interval ({format_duration(self.interval)}) must not exceed "
                f"gates.window ({format_duration(self.window)}): each evaluation covers one "
                "window, and time between windows would go unseen (a step needs its whole "
                "interval covered)")
        return self

    def query(self, gate: str) -> str:
        """The PromQL for one gate with the window substituted for [W]."""
        return self.queries.get(gate).replace("[W]", f"[{format_duration(self.window)}]")


class EnvVar(SpecModel):
    """A plain environment variable added to a Job's container."""

    name: str = Field(min_length=1, description="Variable name.")
    value: str = Field("", description="Variable value.")


class JobTemplate(SpecModel):
    """Overrides for one Job kind; unset parts use the default script in the API's image."""

    image: str | None = Field(None, description="Container image (default: the API "
                              "container's image).")
    command: list[str] = Field(default_factory=list, description="Command (default: python "
                               "api/scripts/<script>).")
    args: list[str] = Field(default_factory=list, description="Arguments (default: the "
                            "operator's contract for this kind).")
    env: list[EnvVar] = Field(default_factory=list, description="Extra plain env; "
                              "ADMIN_TOKEN always comes from adminTokenSecret.")


class Jobs(SpecModel):
    """The Jobs the operator runs, and how often it tries one that fails."""

    backoff_limit: int = Field(6, ge=1, description="Attempts of one Job kind that may fail "
                               "in a row (a failed Job, or a verify that could not run); "
                               "each waits twice as long as the last, then the migration is "
                               "Degraded until spec.retryToken changes.")
    backfill: JobTemplate | None = Field(None, description="The backfill Job "
                                         "(backfill_postgres.py).")
    verify: JobTemplate | None = Field(None, description="The periodic verify Job "
                                       "(verify_data_consistency.py).")
    verify_full: JobTemplate | None = Field(None, alias="verify-full", description="The full "
                                            "verify before PostgresPrimary (default: the "
                                            "verify template with every record compared).")
    snapshot: JobTemplate | None = Field(None, description="The final memory snapshot Job "
                                         "(snapshot_memory.py).")
    rehydrate: JobTemplate | None = Field(None, description="The memory rebuild Job "
                                          "(rehydrate_memory.py).")
    archive: JobTemplate | None = Field(None, description="The snapshot archive Job "
                                        "(archive_snapshot.py).")
    repair: JobTemplate | None = Field(None, description="The repair Job of "
                                       "spec.verify.autoRepair (verify_data_consistency.py "
                                       "--repair).")

    def template(self, kind: str) -> JobTemplate | None:
        value = getattr(self, kind.replace("-", "_"))
        assert value is None or isinstance(value, JobTemplate)
        return value


class SecretRef(SpecModel):
    """A key of a Secret in the StoreMigration's namespace (env valueFrom.secretKeyRef)."""

    name: str = Field(min_length=1, description="Secret name.")
    key: str = Field("ADMIN_TOKEN", min_length=1, description="Key within the Secret.")


class DatabaseSecretRef(SecretRef):
    """A key of a Secret that holds a PostgreSQL URL."""

    key: str = Field("DATABASE_URL", min_length=1, description="Key within the Secret.")


class SnapshotVolume(SpecModel):
    """The PersistentVolumeClaim the snapshot and archive Jobs share. Promotion into
    PostgresPrimary needs it, or an s3:// cleanup.archive, so the final snapshot outlives
    the Job's pod."""

    claim_name: str = Field(min_length=1, description="PersistentVolumeClaim name.")


class Verify(SpecModel):
    """The periodic verify Job during DualWrite and ReadSwitchover."""

    interval: Duration = Field(timedelta(hours=24), description="How often a verify Job "
                               "runs in DualWrite and ReadSwitchover; a read step needs one "
                               "that passed within this long.")
    max_age: Duration = Field(timedelta(hours=24), description="The freshness gate: no read "
                              "step, no move into ReadSwitchover and no move into "
                              "PostgresPrimary without a clean verify newer than this; an "
                              "older one is replaced by a new verify Job first.")
    auto_repair: bool = Field(False, description="When a verify passes with a mismatch ratio "
                              "above zero (under gates.mismatchRatioCeiling), run the repair "
                              "Job once for it: a full verify, then memory's records copied "
                              "to PostgreSQL for the missing and different keys "
                              "(verify_data_consistency.py --mode full --repair).")
    database_secret: DatabaseSecretRef | None = Field(
        None, description="Secret key the full verify and repair Jobs read DATABASE_URL "
        "from. Set, they compare in their own process (--compare-here): they read "
        "PostgreSQL themselves and the API only serves memory's side of each key range, "
        "which at 1,000,000 records kept the API's p95 within 2x of its p95 without the "
        "verify (docs/BENCHMARKS.md section 9). Unset, the API compares.")


class Backfill(SpecModel):
    """The backfill Job's throttle (backfill_postgres.py, resumable by batches)."""

    batch_size: int = Field(1000, ge=1, le=100_000, description="Records per batch; the "
                            "checkpoint advances after each. Smaller batches hold the API's "
                            "event loop for less: at 1,000,000 records 1000 kept its p95 "
                            "at 1.3-1.9x of its p95 without the backfill, 5000 at 4x, at "
                            "two thirds of the speed (docs/BENCHMARKS.md section 9).")
    delay: Duration = Field(timedelta(0), description="Wait between two batches.")
    p95_ceiling_seconds: float | None = Field(None, gt=0, description="Pause while the API's "
                                              "own p95 latency (its /metrics) is above this "
                                              "many seconds; unset: no pause.")


class Rollback(SpecModel):
    """What happens after a gate or a verify sends reads back to memory."""

    retry: bool = Field(True, description="Step again after retryAfter once the gates hold.")
    max_retries: int = Field(3, ge=0, description="Rollbacks before the migration stops until "
                             "spec.retryToken changes.")
    retry_after: Duration | None = Field(None, description="Wait after a rollback before "
                                         "reads step again (default: readStep.interval).")


class Cleanup(SpecModel):
    """Phase 4: the migration flags removed for good. Cannot be undone."""

    approved: bool = Field(False, description="Set to true to allow cleanup after "
                           "primaryHold (kubectl storemigration approve-cleanup).")
    archive: str | None = Field(None, pattern=r"^(/|s3://)", description="Where the archive "
                                "Job copies the snapshot: an absolute volume path or s3:// URL. "
                                "Without spec.snapshotVolume an s3:// URL is required before "
                                "PostgresPrimary: the snapshot Job then uploads the snapshot "
                                "itself, before memory writes stop.")


class MigrationSpec(SpecModel):
    """One gated, reversible move of the API's in-memory stores to PostgreSQL."""

    deployment: str = Field(min_length=1, description="The API Deployment to drive "
                            "(immutable).", json_schema_extra={"x-kubernetes-validations": [
                                {"rule": "self == oldSelf",
                                 "message": "deployment is immutable; create a new "
                                 "StoreMigration"}]})
    container: str = Field("api", min_length=1, description="The container of that "
                           "Deployment whose env the operator owns.")
    stores: list[StoreName] = Field(
        default_factory=all_stores, min_length=1, max_length=2,
        description="The stores to move (immutable).",
        json_schema_extra={"x-kubernetes-list-type": "set", "x-kubernetes-validations": [
            {"rule": "self == oldSelf",
             "message": "stores is immutable; create a new StoreMigration"}]})
    target_phase: TargetPhase = Field("PostgresPrimary", description="The phase to walk to; "
                                      "lower it to roll back.")
    paused: bool = Field(False, description="No forward move while true; gates still run and a "
                         "failure still rolls back.")
    abort: bool = Field(False, description="Reads back on memory (0%) and hold while true "
                        "(kubectl storemigration abort); resume clears it.")
    retry_token: str = Field("", description="Change to retry failed Jobs or exhausted "
                             "rollbacks (kubectl storemigration retry).")
    promote_token: str = Field("", description="Change to take the next step now, if every "
                               "gate evaluation of the current interval passed (kubectl "
                               "storemigration promote); the answer is in status.promotion.")
    api_url: str = Field("http://api:8000", alias="apiURL", description="API service URL the "
                         "Jobs call.")
    snapshot_path: str = Field("/data/snapshots/final.json", description="Where the snapshot "
                               "Job writes the final memory snapshot.")
    admin_token_secret: SecretRef | None = Field(None, description="Secret key the Jobs read "
                                                 "ADMIN_TOKEN from (env valueFrom.secretKeyRef).")
    snapshot_volume: SnapshotVolume | None = Field(None, description="PersistentVolumeClaim "
                                                   "the snapshot and archive Jobs mount at the "
                                                   "snapshot's directory; PostgresPrimary is "
                                                   "refused without it unless cleanup.archive "
                                                   "is an s3:// URL.")
    primary_hold: Duration = Field(timedelta(hours=48), description="How long PostgresPrimary "
                                   "must hold before cleanup.")
    replicas: int | None = Field(None, ge=1, le=100, description="API replicas once memory "
                                 "is no longer written: when every pod confirmed "
                                 "PostgresPrimary the operator sets the Deployment to this "
                                 "many (RollingUpdate, maxUnavailable 0, maxSurge 1), and "
                                 "back to 1 (Recreate) before any rollback into a phase that "
                                 "writes memory. Unset: replicas are left as they are from "
                                 "PostgresPrimary on.")
    read_step: ReadStep = Field(default_factory=ReadStep, description="Read switchover steps.")
    gates: Gates = Field(default_factory=Gates, description="Prometheus gates.")
    verify: Verify = Field(default_factory=Verify, description="Periodic verify Jobs.")
    backfill: Backfill = Field(default_factory=Backfill, description="The backfill Job's "
                               "batch size and throttle.")
    rollback: Rollback = Field(default_factory=Rollback, description="Rollback and retry.")
    cleanup: Cleanup = Field(default_factory=Cleanup, description="Cleanup approval and "
                             "archive.")
    jobs: Jobs = Field(default_factory=Jobs, description="Job templates and the failure "
                       "budget.")

    @field_validator("stores")
    @classmethod
    def _distinct(cls, stores: list[str]) -> list[str]:
        if len(set(stores)) != len(stores):
            raise ValueError(f"a non-empty list of distinct {STORES}, got {stores}")
        return stores

    @property
    def target(self) -> Phase:
        return Phase[self.target_phase]

    @property
    def retry_after(self) -> timedelta:
        return self.rollback.retry_after or self.read_step.interval

    def wire(self) -> dict[str, Any]:
        """The spec as YAML would hold it (camelCase, durations as text)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def explain(error: ValidationError) -> str:
    """A ValidationError as one line naming each field by its YAML path."""
    parts = []
    for err in error.errors():
        where = ".".join(str(p) for p in err["loc"])
        message = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def parse_spec(doc: Any) -> MigrationSpec:
    """Validate a StoreMigration's .spec and fill in defaults; raise InvalidSpec."""
    if not isinstance(doc, Mapping):
        raise InvalidSpec("spec: expected an object")
    try:
        return MigrationSpec.model_validate(dict(doc))
    except ValidationError as e:
        raise InvalidSpec(explain(e)) from None
