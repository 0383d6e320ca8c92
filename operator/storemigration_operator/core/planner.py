"""The planner: (spec, status, readings, Jobs, Deployment, now) -> Plan. Pure and level-based.

Every reconcile replays the same decision from what status remembers (phase entry, last step,
when the gate window last restarted, which Job attempt belongs to which stage), so an operator
restarted mid-interval neither repeats a step nor skips one. One call makes at most one
forward transition; rollbacks of reads are instant. See docs/ARCHITECTURE.md,
"The operator".

One reconcile is a Context (core.context) handed to plain functions: job_book (Job attempts
and the failure budget), gate_window (gate evaluations, read rollback), postgres_primary
(promotion, hold, lowered targetPhase, abort), read_switchover (read steps), promotion
(spec.promoteToken); this module holds the entry points, phases 0, 1, 4 and 5, and the
conditions written at the end.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from . import promotion
from .backfill_live import BackfillSample
from .conditions import set_condition
from .context import Context, Observed, start, t
from .durations import parse_time
from .env import env_diff
from .gate_window import NEXT_AFTER_ROLLBACK, evaluate_gates, reset_window
from .gates import GateReadings
from .job_book import TERMINAL, job, job_gate, sync_jobs
from .jobs import archived_by_snapshot
from .livestatus import pod_entries, switch_state
from .model import DeploymentObservation, JobObservation, Plan
from .outside import hold_for_outside_change
from .postgres_primary import abort, effective_target, postgres_primary, rollback_to_target
from .read_switchover import VERIFY_EARLY, act_on_verify, auto_repair, read_switchover
from .scaling import scale_out
from .spec import MigrationSpec, Phase
from .status import Adoption
from .switchset import LIVE_PHASES, PodObservation, adoption_names, confirmation
from .verify import note_freshness, stale_pass, verify_within_max_age

GATED = (Phase.ReadSwitchover, Phase.PostgresPrimary)


def gates_due(spec: MigrationSpec, status: Mapping[str, Any], now: datetime) -> bool:
    """Whether this reconcile should read Prometheus (phases 2-3, interval up; paused too:
    pause stops forward moves, never the gates). A nextGateTime more than one interval ahead
    means the clock went back: due now."""
    if status.get("phase") not in ("ReadSwitchover", "PostgresPrimary"):
        return False
    due = parse_time(status.get("nextGateTime"))
    return due is None or now >= due or due > now + spec.gates.interval


def plan(spec: MigrationSpec, status: Mapping[str, Any], readings: GateReadings | None,
         jobs: Mapping[str, JobObservation], deployment: DeploymentObservation | None,
         now: datetime, *, name: str, generation: int = 0, invalid: str | None = None,
         pods: tuple[PodObservation, ...] = (),
         backfill: tuple[BackfillSample, ...] = ()) -> Plan:
    """One reconcile's decision. With `invalid` (the error of a spec that failed to parse),
    `spec` is the last valid one kept in status: gates are still evaluated and a Failed gate
    still rolls back, but nothing moves forward. A valid spec is kept in status as
    lastValidSpec for that purpose. `backfill`: the API's backfill gauges, read while a
    backfill Job runs (status.backfill live)."""
    ctx = start(spec, status, Observed(readings, jobs, deployment, pods, backfill), now, name,
                generation, invalid)
    run(ctx)
    if invalid is None:
        ctx.st.last_valid_spec = spec
    return finish(ctx)


def holding(ctx: Context) -> tuple[str, str] | None:
    """(reason, message) when a person asked that nothing move forward."""
    spec = ctx.spec
    if spec.abort:
        return "Aborted", "spec.abort is true: reads on memory, nothing moves forward " \
                          "(kubectl storemigration resume to continue)"
    if spec.paused:
        return "Paused", "spec.paused is true: no forward move; gates are still evaluated " \
                         "and a failure still rolls back"
    if spec.gates.dry_run and ctx.phase in GATED:
        last = ctx.st.last_gate
        seen = f" (last: {last.result}: {last.reason})" if last else ""
        return "GatesDryRun", "spec.gates.dryRun is true: every gate is evaluated and " \
                              f"reported, nothing steps or rolls back on them{seen}"
    return None


def run(ctx: Context) -> None:
    st, spec = ctx.st, ctx.spec
    if spec.retry_token != st.retry_token:
        st.retry_token, st.retry_token_time, st.retries = spec.retry_token, ctx.now, 0
        st.retries_exhausted = None
        ctx.history("Retry", "spec.retryToken changed: failed Jobs and rollbacks retried")
    sync_jobs(ctx)
    if ctx.seen.deployment is None:
        ctx.degrade("DeploymentNotFound", f"Deployment {spec.deployment} not found in this "
                    "namespace: create it (spec.deployment cannot change)")
        return
    if not ctx.dep.container_found:
        ctx.degrade("ContainerNotFound",
                    f"container {spec.container} not in Deployment {ctx.dep.name}: fix "
                    "spec.container")
        return
    if ctx.invalid is not None:
        ctx.degrade("InvalidSpec", f"{ctx.invalid}; gates still run with the last valid "
                    "spec, nothing moves forward until the spec is fixed")
    if ctx.phase != Phase.PostgresPrimary or ctx.spec.target >= Phase.PostgresPrimary:
        if hold_for_outside_change(ctx):
            return
    elif ctx.st.outside_change is not None:  # the operator's own rollback takes over
        ctx.st.outside_change = None
    if rollback_to_target(ctx):
        return
    if spec.abort:
        abort(ctx)
    if ctx.seen.readings is not None and ctx.phase in GATED:
        evaluate_gates(ctx, ctx.seen.readings)
    ctx.replicas_block()  # reported on every reconcile, not only when a step is due
    if promotion.requested(spec, st):
        promotion.answer(ctx)
    hold = holding(ctx)
    if hold is not None or ctx.invalid is not None:
        # Holding stops forward moves only: gates above still roll back (except in dry
        # run), and so does a verify Job that failed; no new Job starts and no step is taken.
        if ctx.phase == Phase.ReadSwitchover:
            act_on_verify(ctx)
        if ctx.degraded is None and hold is not None:
            ctx.progress = (False, *hold)
        return
    said = ctx.progress
    if ctx.phase in LIVE_PHASES and not ctx.live_ready(ctx.phase != Phase.Preparation):
        # A step counts as done only once every pod confirmed it: no forward move before.
        # Preparation's switches are the API's defaults: it waits only for the adoption.
        if not pods_ahead(ctx):
            if ctx.phase == Phase.ReadSwitchover:
                act_on_verify(ctx)
            return
        ctx.progress = said
    PHASES[ctx.phase](ctx)


def pods_ahead(ctx: Context) -> bool:
    """Every pod already runs what this reconcile decides: an operator killed after its
    PUT and before its status write. The decision is taken again (same content, same
    revision) instead of being undone on the pods and then redone."""
    if not ctx.adopted() or not ctx.dep.observed():
        return False
    trial = copy.deepcopy(ctx)
    PHASES[trial.phase](trial)
    desired = trial.switches()
    return desired.revision != ctx.switches().revision and \
        confirmation(ctx.seen.pods, desired)[0]


# ---- phases ----
def preparation(ctx: Context) -> None:
    if effective_target(ctx.spec) > Phase.Preparation and not ctx.replicas_block():
        ctx.enter(Phase.DualWrite, "dual-write on; backfill follows once it is rolled out")


def dual_write(ctx: Context) -> None:
    st, spec = ctx.st, ctx.spec
    fresh = max(t(st.phase_entered_time), ctx.token_time())
    backfill = job(ctx, "backfill", fresh)
    if not job_gate(ctx, "backfill", backfill):
        return
    # A verify every verify.interval while held here, as in ReadSwitchover (the first right
    # after the backfill): one per interval, as nothing steps on its timing.
    verify = job(ctx, "verify", max(fresh, t(backfill.finished_at),
                                    ctx.now - spec.verify.interval))
    if spec.target > Phase.DualWrite and stale_pass(verify, spec.verify.max_age, ctx.now):
        verify = job(ctx, "verify", ctx.now)  # the freshness gate: verify again first
    if not job_gate(ctx, "verify", verify):
        return
    auto_repair(ctx)
    if spec.target > Phase.DualWrite and not verify_within_max_age(st, spec.verify.max_age,
                                                                    ctx.now):
        ctx.wait("WaitingForVerify", "no clean verify newer than spec.verify.maxAge")
        return
    if spec.target > Phase.DualWrite and not ctx.replicas_block():
        ctx.enter(Phase.ReadSwitchover, f"backfill and verify passed; reads start at "
                  f"{spec.read_step.start}%")
        ctx.set_percent(spec.read_step.start, "Step", "first read step")
        reset_window(ctx)
        ctx.event("Normal", "ReadStep", f"reads 0% -> {st.read_percent}%")


def cleanup(ctx: Context) -> None:
    st, spec = ctx.st, ctx.spec
    if not ctx.dep.rolled_out(*ctx.desired()):
        ctx.wait("WaitingForRollout", "waiting for the Deployment to run without flags")
        return
    if spec.cleanup.archive and not archived_by_snapshot(spec):  # else uploaded already
        entry = job(ctx, "archive", max(t(st.phase_entered_time), ctx.token_time()))
        if not job_gate(ctx, "archive", entry):
            return
    ctx.enter(Phase.Complete, "migration complete")


def complete(ctx: Context) -> None:
    ctx.progress = (False, "Complete", "migration complete; PostgreSQL is the only store")


PHASES = {Phase.Preparation: preparation, Phase.DualWrite: dual_write,
          Phase.ReadSwitchover: read_switchover, Phase.PostgresPrimary: postgres_primary,
          Phase.Cleanup: cleanup, Phase.Complete: complete}


# ---- output ----
def finish(ctx: Context) -> Plan:
    st, spec, now, dep = ctx.st, ctx.spec, ctx.now, ctx.seen.deployment
    if dep is not None and dep.container_found and effective_target(spec) >= \
            Phase.PostgresPrimary and not ctx.hold_switches:
        scale_out(ctx)
    if ctx.hold_switches:
        st.pods = pod_entries(ctx.seen.pods, ctx.switches(), now, st.pods)
    elif dep is not None and dep.container_found and ctx.phase in LIVE_PHASES:
        live(ctx)
    elif dep is not None and dep.container_found:
        to_set, to_remove = ctx.desired()
        stale = [n for n in st.owned_env if n not in to_set and n not in to_remove]
        to_remove = [*to_remove, *stale]  # ours once, not wanted now: back to the default
        ctx.plan.env_set, ctx.plan.env_remove = env_diff(dep.env, to_set, to_remove)
        st.owned_env = sorted(set(to_set) | {n for n in to_remove if n in dep.env})
    conds = st.conditions
    degraded = ctx.degraded
    if degraded is None and st.rolled_back:
        degraded = ("RolledBack", f"reads were rolled back (see history); "
                    f"{NEXT_AFTER_ROLLBACK}")
    if set_condition(conds, "Degraded", degraded is not None,
                     degraded[0] if degraded else "AsExpected",
                     degraded[1] if degraded else "", now) and degraded is not None \
            and degraded[0] not in ctx.evented:
        ctx.event("Warning", degraded[0], degraded[1])
    hold = holding(ctx)
    set_condition(conds, "Paused", hold is not None, hold[0] if hold else "NotPaused",
                  hold[1] if hold else "", now)
    progressing, reason, message = ctx.progress
    if reason == "Reconciling":
        progressing, reason, message = settled(ctx)
    set_condition(conds, "Progressing", progressing, reason, message, now)
    ready = ctx.phase == Phase.Complete or (
        ctx.phase == min(spec.target, Phase.Cleanup) and degraded is None and
        (ctx.phase != Phase.ReadSwitchover or st.read_percent == 100))
    set_condition(conds, "Ready", ready, "TargetReached" if ready else "NotYet",
                  f"{st.phase} reached" if ready else
                  f"in {st.phase} at {st.read_percent}% reads; targetPhase {spec.target_phase}",
                  now)
    st.reason, st.message = reason, message
    note_freshness(st, spec.verify.max_age, next_verify(ctx))
    ctx.plan.status = st.wire()
    return ctx.plan


def next_verify(ctx: Context) -> datetime | None:
    """When the planner starts the next verify Job (None: none is scheduled in this
    phase). In ReadSwitchover below 100%: early in the interval (read_switchover);
    otherwise, while a step waits in DualWrite: when the last clean verify goes stale."""
    st, spec = ctx.st, ctx.spec
    last = st.jobs.get("verify")
    if last is None or last.state not in TERMINAL:
        return None
    started = last.created_at
    if ctx.phase == Phase.ReadSwitchover and st.read_percent < 100:
        return started + min(spec.verify.interval, spec.verify.max_age) * VERIFY_EARLY
    if ctx.phase == Phase.DualWrite and spec.target > Phase.DualWrite and last.finished_at:
        return last.finished_at + spec.verify.max_age
    return None


def live(ctx: Context) -> None:
    """Phases 0-3: the switches go to the ConfigMap and every pod; the env is patched only
    to adopt the Deployment (its flags read from the ConfigMap), once."""
    st, desired = ctx.st, ctx.switches()
    names = adoption_names(tuple(ctx.spec.stores))
    if not ctx.adopted():
        ctx.plan.env_adopt = names
        if st.adoption is None:
            message = (f"env {', '.join(names)} now read from ConfigMap {desired.config_map} "
                       f"(valueFrom.configMapKeyRef): one restart, in {st.phase}, before any "
                       "further data moves; every later switch is applied live")
            st.adoption = Adoption(time=ctx.now, phase=st.phase, message=message)
            ctx.event("Normal", "Adopted", message)
    st.owned_env = names
    ctx.plan.switches = desired
    _, pending = confirmation(ctx.seen.pods, desired)
    ctx.plan.pod_targets = [p for p in ctx.seen.pods if p.ready and p.name in pending]
    st.pods = pod_entries(ctx.seen.pods, desired, ctx.now, st.pods)
    st.switches = switch_state(ctx.seen.pods, desired)


def settled(ctx: Context) -> tuple[bool, str, str]:
    target, st = ctx.spec.target, ctx.st
    if ctx.phase == Phase.ReadSwitchover and target == Phase.ReadSwitchover \
            and st.read_percent >= 100:
        return False, "TargetReached", "all reads on PostgreSQL; targetPhase reached"
    if ctx.phase >= target:
        return False, "TargetReached", f"{st.phase} is the target phase"
    return True, "Progressing", f"in {st.phase}"
