"""The gate window: recording each Prometheus evaluation and rolling reads back on a failure.

A step needs every gate to have held for a whole interval. The window is the span the
successful evaluations cover; any Failed evaluation restarts it, and during ReadSwitchover
also sends reads back to memory at once. With spec.gates.dryRun the same bookkeeping runs
and is reported, but nothing acts on it.
"""

from __future__ import annotations

from datetime import datetime

from .context import Context
from .durations import EPOCH
from .gates import GateReadings, GateResult, checks, evaluate
from .spec import MigrationSpec, Phase
from .status import GateCounts, GateEvaluation, MigrationStatus, Thresholds

NEXT_AFTER_ROLLBACK = ("reads step again once every gate held for rollback.retryAfter "
                       "(after rollback.maxRetries rollbacks: kubectl storemigration retry)")


def evaluation_of(ctx: Context, readings: GateReadings) -> GateEvaluation:
    gates = ctx.spec.gates
    verdict = evaluate(readings, gates)
    return GateEvaluation(
        time=ctx.now, error_rate=readings.error_rate, p50_seconds=readings.p50_seconds,
        p95_seconds=readings.p95_seconds, p99_seconds=readings.p99_seconds,
        mismatch_ratio=readings.mismatch_ratio, requests=readings.requests,
        result=verdict.result.value, reason=verdict.reason,
        thresholds=Thresholds(error_rate=gates.error_rate_ceiling,
                              p95_seconds=gates.p95_ceiling_seconds,
                              p50_seconds=gates.p50_ceiling_seconds,
                              p99_seconds=gates.p99_ceiling_seconds,
                              mismatch_ratio=gates.mismatch_ratio_ceiling,
                              min_requests=gates.min_requests),
        dry_run=True if gates.dry_run else None, checks=checks(readings, gates))


def evaluate_gates(ctx: Context, readings: GateReadings) -> None:
    st, gates = ctx.st, ctx.spec.gates
    evaluation = evaluation_of(ctx, readings)
    result = GateResult(evaluation.result)
    previous = st.last_gate.result if st.last_gate else None
    st.next_gate_time = ctx.now + gates.interval
    st.last_gate = evaluation
    st.gate_counts.add(result.value)
    if st.gate_interval is None:
        ctx.restart_interval()
    assert st.gate_interval is not None
    st.gate_interval.evaluations += 1
    if result == GateResult.Successful:
        st.gate_interval.passed += 1
        # Each evaluation covers [now - window, now]: successes at most one window apart
        # cover the time between them. After a longer gap (an outage, a pause, a run of
        # Errors) nobody saw what happened, so the window restarts at now - window.
        last = st.last_gate_success_time
        if last is None or ctx.now - last > gates.window:
            st.gate_window_start = ctx.now - gates.window
            st.gate_successes_in_window = 1
        else:
            st.gate_successes_in_window = (st.gate_successes_in_window or 0) + 1
        st.last_gate_success_time = ctx.now
        return
    st.gate_interval.not_passed = evaluation
    if result == GateResult.Failed:
        st.gate_window_start = ctx.now
        st.gate_successes_in_window = 0
        ctx.restart_interval(first=evaluation)
    if gates.dry_run:
        if previous != result.value:
            ctx.event("Warning" if result == GateResult.Failed else "Normal",
                      f"DryRunGate{result.value}", f"dry run, nothing acted on it: "
                      f"{evaluation.reason}")
    elif result != GateResult.Failed:
        ctx.wait(f"Gate{result.value}", f"holding: {evaluation.reason}")
    elif ctx.phase == Phase.ReadSwitchover:
        rollback_reads(ctx, f"gate failed: {evaluation.reason}")
    else:
        if previous != GateResult.Failed.value:  # an event per transition, not per minute
            ctx.event("Warning", "GateFailed", f"in PostgresPrimary: {evaluation.reason}; "
                      "hold restarted (lower targetPhase to roll back)")
        ctx.degrade("GateFailed", f"{evaluation.reason}; the hold restarted (to send reads "
                    "back to memory: lower targetPhase, or kubectl storemigration abort)")


def gates_holding(spec: MigrationSpec, st: MigrationStatus, now: datetime) -> bool:
    """The latest evaluation succeeded and is recent enough to cover up to now."""
    last = st.last_gate_success_time
    latest = st.last_gate.result if st.last_gate else None
    return latest == GateResult.Successful.value and last is not None and \
        now - last <= spec.gates.window


def rollback_reads(ctx: Context, reason: str) -> None:
    st = ctx.st
    if st.rehydrate is not None:
        ctx.degrade("GateFailed", f"{reason}; reads stay on PostgreSQL until memory is "
                    "rebuilt, then return to memory")
        return
    st.gate_window_start = ctx.now
    st.gate_successes_in_window = 0
    st.promote_requested_at = None
    if not st.read_percent:
        ctx.degrade("GateFailed", f"{reason} (reads already at 0%; they step again once "
                    "the gates hold)")
        return
    old = st.read_percent
    ctx.set_percent(0, "Rollback", reason, readings=st.last_gate)
    st.rollbacks += 1
    st.retries += 1
    st.rolled_back = True
    st.last_rollback_time = ctx.now
    rb = ctx.spec.rollback
    if not rb.retry or st.retries > rb.max_retries:
        st.retries_exhausted = True
    ctx.event("Warning", "RolledBack", f"reads {old}% -> 0%: {reason}")
    ctx.degrade("RolledBack", f"reads {old}% -> 0%: {reason}; {NEXT_AFTER_ROLLBACK}")


def reset_window(ctx: Context) -> None:
    """A step was taken: the next one needs a whole new interval of holding gates."""
    ctx.st.gate_window_start = ctx.now
    ctx.st.gate_successes_in_window = 0
    ctx.st.gate_counts = GateCounts()
    ctx.st.rolled_back = None
    ctx.restart_interval()


def window_start(st: MigrationStatus) -> datetime:
    """Where the current interval's clock started: the last step or the last failure."""
    return max(st.last_step_time or EPOCH, st.gate_window_start or EPOCH)
