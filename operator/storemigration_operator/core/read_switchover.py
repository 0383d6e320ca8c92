"""Phase 2: stepping reads from memory to PostgreSQL while gates and verify Jobs hold.

Each step waits a full interval in which every gate held and a verify Job passed recently;
a failed verify rolls reads back like a failed gate. At 100% the next move is promotion,
gated by a full verify instead: a periodic verify started then would run after memory
writes stop and compare PostgreSQL with memory that is stale by design. Promotion is refused
(Degraded, SnapshotNotDurable) while the final snapshot has nowhere durable to go.
"""

from __future__ import annotations

from .context import Context
from .durations import format_duration, format_time
from .gate_window import gates_holding, reset_window, rollback_reads, window_start
from .job_book import TERMINAL, job, report_failure
from .jobs import snapshot_not_durable
from .postgres_primary import promote
from .spec import Phase
from .verify import verify_fresh, verify_within_max_age

VERIFY_EARLY = 0.9  # re-verify at 90% of the interval so a fresh result is ready at step time


def schedule_verify(ctx: Context) -> None:
    early = min(ctx.spec.verify.interval, ctx.spec.verify.max_age) * VERIFY_EARLY
    job(ctx, "verify", max(ctx.now - early, ctx.token_time()))
    act_on_verify(ctx)


def auto_repair(ctx: Context) -> None:
    """spec.verify.autoRepair: a verify that passed with mismatches (a ratio above zero,
    under the ceiling) starts the repair Job, once per verify attempt."""
    entry = ctx.st.jobs.get("verify")
    if not ctx.spec.verify.auto_repair or entry is None or entry.outcome != "passed":
        return
    ratio = entry.result.mismatch_ratio if entry.result is not None else None
    if ratio is not None and ratio > 0 and entry.finished_at is not None:
        job(ctx, "repair", entry.finished_at)


def act_on_verify(ctx: Context) -> None:
    entry = ctx.st.jobs.get("verify")
    if entry is None:
        return
    auto_repair(ctx)
    if entry.outcome == "failed" and not entry.acted:
        entry.acted = True
        rollback_reads(ctx, f"verify Job {entry.name} failed: {entry.why}")
    elif entry.outcome == "error" or (entry.retrying and entry.state not in TERMINAL):
        report_failure(ctx, "verify", entry)


def read_switchover(ctx: Context) -> None:
    st, spec = ctx.st, ctx.spec
    percent, target = st.read_percent, spec.target
    if percent >= 100 and target > Phase.ReadSwitchover:
        act_on_verify(ctx)  # promotion: the full verify is the gate from here on
    else:
        schedule_verify(ctx)
    if percent >= 100 and target <= Phase.ReadSwitchover:
        return
    lost = snapshot_not_durable(spec) if percent >= 100 else None
    if lost is not None:
        ctx.degrade("SnapshotNotDurable", f"PostgresPrimary refused: {lost}")
        return
    if st.retries_exhausted:
        ctx.degrade("RetriesExhausted", f"rolled back {st.retries} times; change "
                    "spec.retryToken to try again (kubectl storemigration retry)")
        return
    interval = spec.retry_after if percent == 0 else spec.read_step.interval
    due = window_start(st) + interval
    st.next_step_time = max(due, ctx.now)
    under_way = percent >= 100 and st.promote_requested_at is not None  # promoted early
    if ctx.now < due and not ctx.promote_now and not under_way:
        ctx.wait_unless_said("WaitingForInterval", f"reads at {percent}%; next step at "
                             f"{format_time(due)} if every gate holds until then")
        return
    if not gates_holding(spec, st, ctx.now):
        ctx.wait_unless_said("WaitingForGates", "the latest gate evaluation did not "
                             "succeed or is older than gates.window")
        return
    if percent < 100 and not verify_fresh(st, spec.verify.interval, ctx.now):
        ctx.wait("WaitingForVerify", "no passing verify Job within spec.verify.interval")
        return
    if percent < 100 and not verify_within_max_age(st, spec.verify.max_age, ctx.now):
        ctx.wait("WaitingForVerify", "no clean verify newer than spec.verify.maxAge")
        return
    if ctx.replicas_block():
        return
    if percent < 100:
        step = spec.read_step
        new = step.start if percent < step.start else min(100, percent + step.step)
        why = "promoted (spec.promoteToken)" if ctx.promote_now and ctx.now < due else \
            f"every gate held for {format_duration(interval)}"
        ctx.set_percent(new, "Step", why, readings=st.last_gate)
        reset_window(ctx)
        ctx.event("Normal", "ReadStep", f"reads {percent}% -> {new}%")
        ctx.wait("Stepped", f"reads {percent}% -> {new}%")
        return
    promote(ctx)
