"""Phase 3 in and out: promotion into PostgresPrimary, the hold, walking a lowered
targetPhase back, and abort.

Promotion is the one step that cannot be taken back cheaply (memory writes stop), so it waits
for a full verify and a final snapshot; rolling back from PostgresPrimary turns memory writes
on again and rebuilds memory from PostgreSQL before reads return to it, after the Deployment
is back at one Recreate replica (core.scaling). spec.abort is a
lowered target that also holds: reads go back to memory by the same paths.
"""

from __future__ import annotations

from .context import Context, t
from .durations import format_time
from .gate_window import gates_holding, reset_window, rollback_reads
from .job_book import job, job_gate
from .scaling import scale_in, scaled_out
from .spec import MigrationSpec, Phase
from .status import Rehydrate
from .verify import stale_pass


def effective_target(spec: MigrationSpec) -> Phase:
    """targetPhase, lowered to ReadSwitchover (reads on memory) while spec.abort is set."""
    return min(spec.target, Phase.ReadSwitchover) if spec.abort else spec.target


def rollback_to_target(ctx: Context) -> bool:
    """Walk back toward a lowered targetPhase. True when nothing else should happen now."""
    st, target = ctx.st, effective_target(ctx.spec)
    if ctx.phase >= Phase.Cleanup and target < Phase.Cleanup:
        ctx.degrade("CleanupIrreversible",
                    "cleanup has begun and cannot be undone; targetPhase and abort are ignored")
        return ctx.phase == Phase.Complete
    if ctx.phase == Phase.PostgresPrimary and target < Phase.PostgresPrimary:
        # Memory writes come back on: that needs one Recreate replica, as in phases 0-2.
        if not scale_in(ctx):
            return True
        ctx.enter(Phase.ReadSwitchover, "rolling back: memory writes on, memory rebuilt "
                  "from PostgreSQL live on every pod; reads stay on PostgreSQL until every "
                  "pod confirms")
        st.read_percent = 100
        st.rehydrate = Rehydrate(started_at=ctx.now)
        return True
    if st.rehydrate is not None and ctx.phase == Phase.ReadSwitchover:
        if ctx.replicas_block():
            return True
        if not ctx.live_ready():
            ctx.wait("WaitingForRehydrate", "waiting for every pod to rebuild memory from "
                     "PostgreSQL (live, in PUT /api/admin/switches) and confirm")
            return True
        st.rehydrate = None
        ctx.set_percent(0, "Rollback", "rolled back from PostgresPrimary: memory rebuilt "
                        "from PostgreSQL, reads back on memory")
        ctx.event("Warning", "RolledBack", "reads returned to memory after the rehydrate")
        if target == Phase.ReadSwitchover and not ctx.spec.abort:
            st.rolled_back = True
        return True
    if ctx.phase == Phase.ReadSwitchover and target < Phase.ReadSwitchover:
        if st.read_percent:
            ctx.set_percent(0, "Rollback", "targetPhase lowered: reads back on memory")
        ctx.enter(Phase.DualWrite, "targetPhase lowered")
    if ctx.phase == Phase.DualWrite and target < Phase.DualWrite:
        ctx.enter(Phase.Preparation, "targetPhase lowered: dual-write off")
    return False


def abort(ctx: Context) -> None:
    """spec.abort in ReadSwitchover: reads to 0% at once (PostgresPrimary went through
    rollback_to_target first)."""
    st = ctx.st
    if ctx.phase == Phase.ReadSwitchover and st.read_percent and st.rehydrate is None:
        old = st.read_percent
        st.gate_window_start = ctx.now
        st.gate_successes_in_window = 0
        st.promote_requested_at = None
        ctx.set_percent(0, "Abort", "spec.abort: reads back on memory")
        ctx.event("Warning", "Aborted", f"reads {old}% -> 0%: spec.abort")


def promote(ctx: Context) -> None:
    """Into PostgresPrimary: a full verify (every record, none missing) must pass, then
    the final snapshot is taken; only then are memory writes turned off."""
    st = ctx.st
    if st.promote_requested_at is None:
        st.promote_requested_at = ctx.now
    fresh = max(st.promote_requested_at, ctx.token_time())
    full = job(ctx, "verify-full", fresh)
    if stale_pass(full, ctx.spec.verify.max_age, ctx.now):
        full = job(ctx, "verify-full", ctx.now)  # the freshness gate: a new full verify
    if full.outcome == "failed":
        rollback_reads(ctx, f"full verify Job {full.name} failed before PostgresPrimary: "
                       f"{full.why}")
        return
    if not job_gate(ctx, "verify-full", full):
        return
    snapshot = job(ctx, "snapshot", max(fresh, t(full.finished_at)))
    if job_gate(ctx, "snapshot", snapshot):
        st.promote_requested_at = None
        ctx.enter(Phase.PostgresPrimary, "full verify passed and final snapshot taken; "
                  "memory writes off")
        reset_window(ctx)


def postgres_primary(ctx: Context) -> None:
    st, spec = ctx.st, ctx.spec
    if spec.target < Phase.Cleanup:
        return
    hold_end = max(t(st.phase_entered_time), t(st.gate_window_start)) + spec.primary_hold
    st.next_step_time = max(hold_end, ctx.now)
    if ctx.now < hold_end and not ctx.promote_now:
        ctx.wait_unless_said("Holding", f"PostgreSQL primary; hold ends {format_time(hold_end)}")
        return
    if not gates_holding(spec, st, ctx.now):
        ctx.wait_unless_said("WaitingForGates", "hold passed; waiting for a current "
                             "successful gate evaluation")
        return
    if not scaled_out(ctx):
        return
    if not spec.cleanup.approved:
        ctx.progress = (False, "CleanupApprovalRequired",
                        "hold passed; set spec.cleanup.approved: true to clean up (cannot be "
                        "undone; kubectl storemigration approve-cleanup)")
        return
    ctx.enter(Phase.Cleanup, "approved: migration flags removed, STORE_BACKEND=postgres")
