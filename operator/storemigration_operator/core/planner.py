"""The planner: (spec, status, readings, Jobs, Deployment, now) -> Plan. Pure and level-based.

Every reconcile replays the same decision from what status remembers (phase entry, last step,
when the gate window last restarted, which Job attempt belongs to which stage), so an operator
restarted mid-interval neither repeats a step nor skips one. One call makes at most one
forward transition; rollbacks of reads are instant. See docs/ARCHITECTURE.md,
"The operator".

One reconcile is a _Run, built up in layers so each module reads alone: run_state (status,
events, history), job_book (Job attempts), gate_window (gate evaluations, read rollback),
postgres_primary (promotion, hold, lowered targetPhase), read_switchover (read steps); this
module holds the entry points, phases 0, 1, 4 and 5, and the conditions written at the end.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .conditions import set_condition
from .durations import parse_time
from .env import env_diff
from .gates import GateReadings
from .model import DeploymentObservation, JobObservation, Plan
from .read_switchover import ReadSwitchoverSteps
from .spec import MigrationSpec, Phase


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
         now: datetime, *, name: str, generation: int = 0,
         spec_doc: Mapping[str, Any] | None = None, invalid: str | None = None) -> Plan:
    """One reconcile's decision. With `invalid` (the error of a spec that failed to parse),
    `spec` is the last valid one kept in status: gates are still evaluated and a Failed gate
    still rolls back, but nothing moves forward. A valid `spec_doc` is kept in status as
    lastValidSpec for that purpose."""
    run = _Run(spec, status, readings, jobs, deployment, now, name, generation)
    run.invalid = invalid
    run.run()
    if spec_doc is not None and invalid is None:
        run.st["lastValidSpec"] = copy.deepcopy(dict(spec_doc))
    return run.finish()


class _Run(ReadSwitchoverSteps):
    """One reconcile: run() decides, finish() turns the state into a Plan."""

    def run(self) -> None:
        if self.spec.retry_token != self.st["retryToken"]:
            self.st.update(retryToken=self.spec.retry_token, retryTokenTime=self.nows, retries=0)
            self.st.pop("retriesExhausted", None)
            self.history("Retry", "spec.retryToken changed: failed Jobs and rollbacks retried")
        self.sync_jobs()
        if self.dep is None:
            self.degrade("DeploymentNotFound", f"Deployment {self.spec.deployment} not found")
            return
        if not self.dep.container_found:
            self.degrade("ContainerNotFound",
                         f"container {self.spec.container} not in Deployment {self.dep.name}")
            return
        if self.invalid is not None:
            self.degrade("InvalidSpec", f"{self.invalid}; gates still run with the last valid "
                         "spec, nothing moves forward until the spec is fixed")
        if self.rollback_to_target():
            return
        if self.readings is not None and self.phase in (Phase.ReadSwitchover,
                                                        Phase.PostgresPrimary):
            self.evaluate_gates(self.readings)
        self.replicas_block()  # reported on every reconcile, not only when a step is due
        if self.spec.paused or self.invalid is not None:
            # Holding stops forward moves only: gates above still roll back, and so does a
            # verify Job that failed; no new Job starts and no step is taken.
            if self.phase == Phase.ReadSwitchover:
                self.act_on_verify()
            if self.degraded is None:
                self.progress = (False, "Paused", "spec.paused is true: no forward move; "
                                 "gates are still evaluated and a failure still rolls back")
            return
        step = {Phase.Preparation: self.preparation, Phase.DualWrite: self.dual_write,
                Phase.ReadSwitchover: self.read_switchover,
                Phase.PostgresPrimary: self.postgres_primary, Phase.Cleanup: self.cleanup,
                Phase.Complete: self.complete}[self.phase]
        step()

    # ---- phases ----
    def preparation(self) -> None:
        if self.spec.target_phase > Phase.Preparation and not self.replicas_block():
            self.enter(Phase.DualWrite, "dual-write on; backfill follows once it is rolled out")

    def dual_write(self) -> None:
        assert self.dep is not None
        if not self.dep.rolled_out(*self.desired()):
            self.wait("WaitingForRollout", "waiting for the Deployment to run with dual-write on")
            return
        fresh = max(self.t("phaseEnteredTime"), self.token_time())
        backfill = self.job("backfill", fresh)
        if not self.job_gate("backfill", backfill):
            return
        verify = self.job("verify", max(fresh, self.t_of(backfill, "finishedAt")))
        if not self.job_gate("verify", verify):
            return
        if self.spec.target_phase > Phase.DualWrite and not self.replicas_block():
            self.enter(Phase.ReadSwitchover, f"backfill and verify passed; reads start at "
                       f"{self.spec.read_step.start}%")
            self.set_percent(self.spec.read_step.start, "Step", "first read step")
            self.reset_window()
            self.event("Normal", "ReadStep", f"reads 0% -> {self.st['readPercent']}%")

    def cleanup(self) -> None:
        assert self.dep is not None
        if not self.dep.rolled_out(*self.desired()):
            self.wait("WaitingForRollout", "waiting for the Deployment to run without flags")
            return
        if self.spec.cleanup.archive:
            entry = self.job("archive", max(self.t("phaseEnteredTime"), self.token_time()))
            if not self.job_gate("archive", entry):
                return
        self.enter(Phase.Complete, "migration complete")

    def complete(self) -> None:
        self.progress = (False, "Complete", "migration complete; PostgreSQL is the only store")

    # ---- output ----
    def finish(self) -> Plan:
        st, nows = self.st, self.nows
        if self.dep is not None and self.dep.container_found:
            to_set, to_remove = self.desired()
            stale = [n for n in st["ownedEnv"] if n not in to_set and n not in to_remove]
            to_remove = [*to_remove, *stale]  # ours once, not wanted now: back to the default
            self.plan.env_set, self.plan.env_remove = env_diff(self.dep.env, to_set, to_remove)
            st["ownedEnv"] = sorted(set(to_set) | {n for n in to_remove if n in self.dep.env})
        conds: list[dict[str, Any]] = st["conditions"]
        degraded = self.degraded
        if degraded is None and st.get("rolledBack"):
            degraded = ("RolledBack", "reads were rolled back; see history")
        if set_condition(conds, "Degraded", degraded is not None,
                         degraded[0] if degraded else "AsExpected",
                         degraded[1] if degraded else "", nows) and degraded is not None \
                and degraded[0] not in self.evented:
            self.event("Warning", degraded[0], degraded[1])
        set_condition(conds, "Paused", self.spec.paused, "Paused" if self.spec.paused else
                      "NotPaused", "spec.paused is true" if self.spec.paused else "", nows)
        progressing, reason, message = self.progress
        if reason == "Reconciling":
            progressing, reason, message = self.settled()
        set_condition(conds, "Progressing", progressing, reason, message, nows)
        ready = self.phase == Phase.Complete or (
            self.phase == min(self.spec.target_phase, Phase.Cleanup) and degraded is None and
            (self.phase != Phase.ReadSwitchover or st["readPercent"] == 100))
        set_condition(conds, "Ready", ready, "TargetReached" if ready else "NotYet",
                      f"{st['phase']} reached" if ready else "", nows)
        st["reason"], st["message"] = reason, message
        self.plan.status = st
        return self.plan

    def settled(self) -> tuple[bool, str, str]:
        target = self.spec.target_phase
        if self.phase == Phase.ReadSwitchover and target == Phase.ReadSwitchover \
                and self.st["readPercent"] >= 100:
            return False, "TargetReached", "all reads on PostgreSQL; targetPhase reached"
        if self.phase >= target:
            return False, "TargetReached", f"{self.st['phase']} is the target phase"
        return True, "Progressing", f"in {self.st['phase']}"
