"""The StoreMigration status as pydantic models: what the planner remembers between reconciles.

Every key has a type and a description, and the CRD's status schema is generated from these
models, so `kubectl explain storemigration.status` documents all of it. The planner reads
status into `MigrationStatus`, changes it, and writes all of it back (core.statuswrite).
Job results are typed where the operator relies on them and keep every other key a Job
writes into its termination message.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_serializer,
    field_validator,
    model_validator,
)

from .fields import IntOrString, Reading, StatusModel, Timestamp
from .spec import MigrationSpec

PhaseName = Literal["Preparation", "DualWrite", "ReadSwitchover", "PostgresPrimary", "Cleanup",
                    "Complete"]
GateResultName = Literal["Successful", "Failed", "Inconclusive", "Error"]


class Condition(StatusModel):
    """A Kubernetes condition: Ready, Progressing, Degraded or Paused."""

    type: str = Field(description="Ready, Progressing, Degraded or Paused.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field("", description="One CamelCase word saying why (e.g. WaitingForGates, "
                        "RolledBack, BackfillFailed).")
    message: str = Field("", description="What is happening and what to do about it.")
    last_transition_time: Timestamp | None = Field(None, description="When status last "
                                                   "changed.")


class Thresholds(StatusModel):
    """The ceilings (and the traffic floor) a gate evaluation was held against."""

    error_rate: float = Field(description="gates.errorRateCeiling.")
    p95_seconds: float = Field(description="gates.p95CeilingSeconds.")
    p50_seconds: float | None = Field(None, description="gates.p50CeilingSeconds (absent: "
                                      "p50 is not gated).")
    p99_seconds: float | None = Field(None, description="gates.p99CeilingSeconds (absent: "
                                      "p99 is not gated).")
    mismatch_ratio: float = Field(description="gates.mismatchRatioCeiling.")
    min_requests: float = Field(description="gates.minRequests.")


class GateCheck(StatusModel):
    """One gate of one evaluation: its value beside its threshold, and the PromQL read."""

    gate: str = Field(description="errorRate, p50, p95, p99, mismatchRatio or requests (p50 "
                      "and p99 only when their ceiling is set).")
    value: Reading = Field(None, description="The value read: a number, \"+Inf\" or \"NaN\"; "
                           "absent when the query returned no data.")
    threshold: float = Field(description="The ceiling (or, for requests, the minimum).")
    comparison: Literal["<=", ">="] = Field(description="How value must compare with "
                                            "threshold to pass.")
    result: Literal["Passed", "Failed", "NoData"] = Field(description="Passed, Failed or NoData.")
    query: str = Field(description="The PromQL evaluated, window substituted.")


class GateEvaluation(StatusModel):
    """One evaluation of every gate, with what it decided."""

    time: Timestamp = Field(description="When Prometheus was read.")
    error_rate: Reading = Field(None, description="Error rate read (absent: no data).")
    p50_seconds: Reading = Field(None, description="p50 (median) latency read, in seconds.")
    p95_seconds: Reading = Field(None, description="p95 latency read, in seconds (\"+Inf\": "
                                 "above the top histogram bucket).")
    p99_seconds: Reading = Field(None, description="p99 latency read, in seconds (\"+Inf\": "
                                 "above the top histogram bucket).")
    mismatch_ratio: Reading = Field(None, description="Shadow-read mismatch ratio read.")
    requests: Reading = Field(None, description="Requests in the window.")
    result: GateResultName = Field(description="Successful, Failed (rolls back), Inconclusive "
                                   "or Error (both hold).")
    reason: str = Field(description="Why, with the values and the thresholds.")
    thresholds: Thresholds = Field(description="The thresholds applied.")
    dry_run: bool | None = Field(None, description="True when spec.gates.dryRun was on: "
                                 "reported only, nothing acted on it.")
    checks: list[GateCheck] | None = Field(None, description="Each gate with its threshold and "
                                           "PromQL (latest evaluation only).")


class GateCounts(StatusModel):
    """Gate evaluations by result since the current step began."""

    successful: int = Field(0, alias="Successful", description="Successful evaluations.")
    failed: int = Field(0, alias="Failed", description="Failed evaluations.")
    inconclusive: int = Field(0, alias="Inconclusive", description="Inconclusive evaluations.")
    error: int = Field(0, alias="Error", description="Evaluations that could not read "
                       "Prometheus.")

    def add(self, result: str) -> None:
        field = result.lower()
        setattr(self, field, int(getattr(self, field)) + 1)


class GateInterval(StatusModel):
    """The evaluations of the current interval: since the last step, phase change, rollback
    or abort, or since a failed evaluation restarted the window. `promote` needs every one of
    them to have passed."""

    since: Timestamp = Field(description="When this interval began.")
    evaluations: int = Field(0, description="Evaluations in this interval.")
    passed: int = Field(0, description="Of those, how many were Successful.")
    not_passed: GateEvaluation | None = Field(None, description="The latest evaluation in "
                                              "this interval that did not pass.")


class HistoryEntry(StatusModel):
    """A step, rollback, abort, phase change or retry (the latest 20 are kept)."""

    time: Timestamp = Field(description="When it happened.")
    type: str = Field(description="Phase, Step, Rollback, Abort or Retry.")
    phase: str = Field(description="The phase it happened in (Phase entries: the new one).")
    read_percent: int = Field(description="Reads on PostgreSQL when it happened.")
    reason: str = Field(description="Why.")
    from_: IntOrString | None = Field(None, alias="from", description="Read percent (Step, "
                                      "Rollback, Abort) or phase (Phase) before.")
    to: IntOrString | None = Field(None, description="Read percent or phase after.")
    readings: GateEvaluation | None = Field(None, description="The gate evaluation it was "
                                            "decided on.")


class JobResult(StatusModel):
    """A Job's JSON summary (its termination message). Keys the operator does not know are
    kept as the Job wrote them; a known key with a value of the wrong type is moved to
    `unreadable`."""

    model_config = ConfigDict(alias_generator=None, extra="allow",
                              json_schema_extra={"x-kubernetes-preserve-unknown-fields": True})

    ok: bool | None = Field(None, description="The script finished its work.")
    passed: bool | None = Field(None, description="verify: the stores agree within the "
                                "ceiling.")
    error: str | None = Field(None, description="Why the script could not do its work.")
    exit_code: int | None = Field(None, description="0 ok, 1 check failed, 2 usage or "
                                  "configuration, 3 unreachable.")
    mode: str | None = Field(None, description="api or snapshot.")
    checked: int | None = Field(None, description="verify: records compared.")
    mismatches: int | None = Field(None, description="verify: records missing or different.")
    missing_count: int | None = Field(None, description="verify: records missing in "
                                      "PostgreSQL.")
    different_count: int | None = Field(None, description="verify: records that differ.")
    mismatch_ratio: float | None = Field(None, description="verify: mismatches / checked.")
    records: int | None = Field(None, description="backfill: records examined.")
    written_total: int | None = Field(None, description="backfill: records written.")
    skipped_total: int | None = Field(None, description="backfill: records PostgreSQL "
                                      "already held.")
    rejected_total: int | None = Field(None, description="backfill: records PostgreSQL "
                                       "refused.")
    duration_seconds: float | None = Field(None, description="How long the work took.")
    truncated: bool | None = Field(None, description="The summary was cut to fit 4 KiB.")
    unreadable: dict[str, str] | None = Field(None, description="Known keys whose values had "
                                              "the wrong type, as text.")

    @model_validator(mode="wrap")
    @classmethod
    def _tolerant(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> JobResult:
        """Whatever a Job wrote is kept: a wrong-typed known key becomes text in
        `unreadable` instead of failing the whole status."""
        try:
            result: JobResult = handler(data)
            return result
        except ValidationError as e:
            if not isinstance(data, dict):
                raise
            bad = {str(err["loc"][0]) for err in e.errors() if err["loc"]}
        kept = {k: v for k, v in data.items() if k not in bad}
        fixed: JobResult = handler({**kept, "unreadable": {k: str(data[k])[:200] for k in bad}})
        return fixed

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> JobResult:
        return cls.model_validate(doc)


class JobEntry(StatusModel):
    """The latest attempt of one Job kind."""

    name: str = Field(description="The Job's name (<migration>-<kind>-<attempt>).")
    attempt: int = Field(description="Attempt number of this kind, from 1.")
    state: str = Field(description="Pending, Running, Succeeded or Failed.")
    created_at: Timestamp = Field(description="When the operator asked for it.")
    finished_at: Timestamp | None = Field(None, description="When it finished.")
    result: JobResult | None = Field(None, description="Its summary (termination message).")
    message: str | None = Field(None, description="The termination message, when it was not "
                                "JSON (first 300 characters).")
    outcome: Literal["passed", "failed", "error"] | None = Field(
        None, description="verify kinds: passed, failed (the stores differ: rolls back) or "
        "error (the check did not run: holds).")
    passed: bool | None = Field(None, description="verify kinds: outcome is passed.")
    why: str | None = Field(None, description="Why it did not pass.")
    retrying: str | None = Field(None, description="Why the previous attempt is being retried.")
    acted: bool | None = Field(None, description="Its failure has already rolled reads back.")
    failures: int = Field(0, description="Attempts of this kind that failed in a row, this "
                          "one included (spec.jobs.backoffLimit bounds it).")
    next_attempt_at: Timestamp | None = Field(None, description="When the next attempt may "
                                              "start (backoff after a failure).")


class KindProgress(StatusModel):
    """One record kind of a backfill run."""

    done: int = Field(0, description="Records copied (or found already there).")
    total: int = Field(0, description="Records the run covers: those that existed when it "
                       "began.")


class BackfillProgress(StatusModel):
    """The backfill run's progress: live from the API's metrics while the Job runs
    (observedAt set), then the checkpoint's as the Job reported it when it ended (also
    GET /api/admin/backfill/progress?run=RUN on the API)."""

    run: str | None = Field(None, description="The checkpoint's name (BACKFILL_RUN): the "
                            "attempts of one stage resume it.")
    done: int = Field(0, description="Records done, every kind.")
    total: int = Field(0, description="Records the run covers, every kind.")
    percent: float = Field(0.0, description="done / total, in percent.")
    rate_per_second: float | None = Field(None, description="Records per second since the "
                                          "run began.")
    eta_seconds: float | None = Field(None, description="Seconds left at that rate.")
    finished: bool = Field(False, description="Every kind is done.")
    kinds: dict[str, KindProgress] = Field(default_factory=dict, description="done/total "
                                           "per kind, in foreign-key order.")
    observed_at: Timestamp | None = Field(None, description="While the Job runs: when the "
                                          "operator read this from the API's metrics "
                                          "(Prometheus); unset once the Job's result wrote "
                                          "it.")

    @classmethod
    def from_result(cls, doc: dict[str, Any]) -> BackfillProgress | None:
        """From a backfill Job's summary; None when it is not a batched run's."""
        if not isinstance(doc.get("total"), int) or not isinstance(doc.get("kinds"), dict):
            return None
        try:
            return cls.model_validate({
                "run": doc.get("run"), "done": doc.get("done", 0), "total": doc["total"],
                "percent": doc.get("percent", 0.0),
                "rate_per_second": doc.get("rate_per_second"),
                "eta_seconds": doc.get("eta_seconds"), "finished": doc.get("finished", False),
                "kinds": {k: {"done": v.get("done", 0), "total": v.get("total", 0)}
                          for k, v in doc["kinds"].items() if isinstance(v, dict)}})
        except ValidationError:
            return None


class Rehydrate(StatusModel):
    """Rolling back from PostgresPrimary: memory is rebuilt from PostgreSQL at pod start."""

    started_at: Timestamp = Field(description="When the rollback began.")


class Promotion(StatusModel):
    """The operator's answer to the latest spec.promoteToken."""

    token: str = Field(description="The spec.promoteToken answered.")
    time: Timestamp = Field(description="When it was answered.")
    result: Literal["Accepted", "Refused"] = Field(description="Accepted (the step was taken "
                                                   "or begun) or Refused.")
    reason: str = Field(description="What was done, or why not.")


class PodSwitches(StatusModel):
    """The switches one API pod reports it runs with."""

    name: str = Field(description="Pod name.")
    switches: dict[str, str] = Field(default_factory=dict, description="Switch name to value "
                                     "as the pod applied it.")
    observed_at: Timestamp | None = Field(None, description="When the pod reported them.")
    address: str | None = Field(None, description="Where the operator reached the pod "
                                "(podIP:port).")
    desired_revision: str | None = Field(None, description="The desired_revision the pod "
                                         "reports it applied last.")
    fingerprint: str | None = Field(None, description="The pod's switch fingerprint.")
    confirmed: bool = Field(False, description="The pod reports the desired switches.")
    confirmed_at: Timestamp | None = Field(None, description="When the pod first reported "
                                           "the desired revision (kept while it holds).")
    error: str | None = Field(None, description="Why the pod could not be reached or refused "
                              "the switches (it is retried).")


class SwitchState(StatusModel):
    """The switch set the operator wants on every pod, and whether they all confirmed."""

    config_map: str = Field(description="The ConfigMap (owned by this StoreMigration) the "
                            "API's env reads the switches from.")
    revision: str = Field(description="The desired_revision every pod must report.")
    desired: dict[str, str] = Field(default_factory=dict, description="The ConfigMap's data.")
    confirmed: bool = Field(False, description="Every ready pod reported the revision.")
    pending: list[str] = Field(default_factory=list, description="Pods that have not "
                               "confirmed yet (named, and retried).")


class Adoption(StatusModel):
    """The one env change that made the Deployment read its switches from the ConfigMap."""

    time: Timestamp = Field(description="When the Deployment's env was patched.")
    phase: PhaseName = Field(description="The phase it was adopted in (Preparation: before "
                             "any data moved).")
    message: str = Field(description="What was done.")


class OutsideChange(StatusModel):
    """Switches that someone other than this operator set on the API pods (the rollback
    script, a manual PUT) and that turned a store's writes off."""

    time: Timestamp = Field(description="When the operator first saw them.")
    pods: list[str] = Field(description="The pods that ran them.")
    message: str = Field(description="What was seen, and how to go on.")


class MigrationStatus(StatusModel):
    """What the operator observed and decided; written whole on every reconcile."""

    observed_generation: int = Field(0, description="The spec generation this status is for.")
    phase: PhaseName = Field("Preparation", description="The current phase.")
    read_percent: int = Field(0, ge=0, le=100, description="Reads served by PostgreSQL.")
    reason: str = Field("", description="Why it waits or what it did (the Progressing "
                        "reason).")
    message: str = Field("", description="The same, in words.")
    conditions: list[Condition] = Field(default_factory=list, description="Ready, "
                                        "Progressing, Degraded and Paused.")
    history: list[HistoryEntry] = Field(default_factory=list, description="The latest steps, "
                                        "rollbacks, aborts, phase changes and retries.")
    owned_env: list[str] = Field(default_factory=list, description="The container env names "
                                 "the operator set and owns.")
    jobs: dict[str, JobEntry] = Field(default_factory=dict, description="The latest attempt "
                                      "of each Job kind.")
    gate_counts: GateCounts = Field(default_factory=GateCounts, description="Gate evaluations "
                                    "by result since the current step began.")
    gate_interval: GateInterval | None = Field(None, description="The evaluations of the "
                                               "current interval (what promote checks).")
    rollbacks: int = Field(0, description="Read rollbacks so far.")
    retries: int = Field(0, description="Rollbacks since spec.retryToken last changed.")
    retry_token: str | None = Field(None, description="The spec.retryToken last acted on.")
    retry_token_time: Timestamp | None = Field(None, description="When spec.retryToken last "
                                               "changed.")
    retries_exhausted: bool | None = Field(None, description="More rollbacks than "
                                           "rollback.maxRetries: waits for a new retryToken.")
    phase_entered_time: Timestamp | None = Field(None, description="When the phase began.")
    last_step_time: Timestamp | None = Field(None, description="When reads or the phase last "
                                             "moved.")
    next_gate_time: Timestamp | None = Field(None, description="When the gates are read next.")
    next_step_time: Timestamp | None = Field(None, description="When the next step is due if "
                                             "every gate holds; message says what it waits "
                                             "for.")
    last_gate: GateEvaluation | None = Field(None, description="The latest gate evaluation.")
    gate_window_start: Timestamp | None = Field(None, description="Since when the gates have "
                                                "held without a failure.")
    gate_successes_in_window: int | None = Field(None, description="Successful evaluations "
                                                 "since gateWindowStart.")
    last_gate_success_time: Timestamp | None = Field(None, description="The latest Successful "
                                                     "evaluation.")
    last_verify_success_time: Timestamp | None = Field(None, description="When a periodic "
                                                       "verify Job last passed.")
    backfill: BackfillProgress | None = Field(None, description="The latest backfill run's "
                                              "progress (done/total per kind, rate, ETA).")
    last_clean_verify_time: Timestamp | None = Field(None, description="When a verify Job "
                                                     "(periodic or full) last passed.")
    verify_stale_time: Timestamp | None = Field(None, description="When that clean verify "
                                                "becomes older than spec.verify.maxAge: no "
                                                "step after it without a new one.")
    next_verify_time: Timestamp | None = Field(None, description="When the next verify Job "
                                               "is due to start.")
    rolled_back: bool | None = Field(None, description="Reads were rolled back since the last "
                                     "step (keeps Degraded/RolledBack).")
    last_rollback_time: Timestamp | None = Field(None, description="The latest read rollback.")
    rehydrate: Rehydrate | None = Field(None, description="Set while rolling back from "
                                        "PostgresPrimary.")
    promote_requested_at: Timestamp | None = Field(None, description="When promotion into "
                                                   "PostgresPrimary began (full verify, then "
                                                   "snapshot).")
    promotion: Promotion | None = Field(None, description="The answer to the latest "
                                        "spec.promoteToken.")
    last_valid_spec: MigrationSpec | None = Field(None, description="The latest spec that "
                                                  "parsed: it keeps the gates running while "
                                                  "the spec is being fixed.")
    pods: list[PodSwitches] | None = Field(None, description="Each API pod's applied "
                                           "switches, when the pods report them.")
    switches: SwitchState | None = Field(None, description="The live switch set: "
                                         "configured (the ConfigMap) against actual (pods).")
    adoption: Adoption | None = Field(None, description="When the Deployment's env was "
                                      "moved to the ConfigMap (one restart).")
    outside_change: OutsideChange | None = Field(
        None, description="Switches turned a store's writes off outside the operator: it "
        "applies nothing until spec.retryToken changes, then backfills again from DualWrite.")
    kopf: dict[str, Any] | None = Field(
        None, description="kopf's own bookkeeping; not the planner's.",
        json_schema_extra={"type": "object", "x-kubernetes-preserve-unknown-fields": True})

    @field_validator("last_valid_spec", mode="wrap")
    @classmethod
    def _forget_unparsable_spec(cls, value: Any, handler: Any) -> MigrationSpec | None:
        """A stored spec this version cannot read is forgotten, not a crash."""
        try:
            result: MigrationSpec | None = handler(value)
        except ValidationError:
            return None
        return result

    @field_serializer("last_valid_spec")
    def _spec_as_given(self, spec: MigrationSpec | None) -> dict[str, Any] | None:
        """Only what differs from the defaults: the spec as a person would have written it."""
        if spec is None:
            return None
        return spec.model_dump(mode="json", by_alias=True, exclude_defaults=True)

    def wire(self) -> dict[str, Any]:
        """Status as the API server holds it (camelCase, RFC 3339 times, no empty keys)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def read_status(doc: Any) -> MigrationStatus:
    """Status as stored (kopf's part dropped); {} or None is a new migration."""
    data = {k: v for k, v in dict(doc or {}).items() if k != "kopf"}
    return MigrationStatus.model_validate(data)
