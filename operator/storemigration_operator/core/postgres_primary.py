"""Phase 3 in and out: promotion into PostgresPrimary, the hold, and walking a lowered
targetPhase back.

Promotion is the one step that cannot be taken back cheaply (memory writes stop), so it waits
for a full verify and a final snapshot; rolling back from PostgresPrimary turns memory writes
on again and rebuilds memory from PostgreSQL before reads return to it.
"""

from __future__ import annotations

from .durations import format_time
from .gate_window import GateWindow
from .spec import Phase


class PostgresPrimarySteps(GateWindow):
    def rollback_to_target(self) -> bool:
        """Walk back toward a lowered targetPhase. True when nothing else should happen now."""
        target = self.spec.target_phase
        if self.phase >= Phase.Cleanup and target < Phase.Cleanup:
            self.degrade("CleanupIrreversible",
                         "cleanup has begun and cannot be undone; targetPhase is ignored")
            return self.phase == Phase.Complete
        if self.phase == Phase.PostgresPrimary and target < Phase.PostgresPrimary:
            # Memory writes come back on: that needs one replica, as in phases 0-2.
            assert self.dep is not None
            if self.dep.replicas > 1:
                self.degrade("MultipleReplicas",
                             f"rolling back from PostgresPrimary turns memory writes back on, "
                             f"which needs Deployment {self.dep.name} at 1 replica (it has "
                             f"{self.dep.replicas}): scale it to 1; the operator does not")
                return True
            self.enter(Phase.ReadSwitchover, "rolling back: memory writes on, rebuilt from "
                       "PostgreSQL at start-up (REHYDRATE_ON_START); reads stay on PostgreSQL "
                       "until the new pods run")
            self.st["readPercent"] = 100
            self.st["rehydrate"] = {"startedAt": self.nows}
            return True
        if self.st.get("rehydrate") and self.phase == Phase.ReadSwitchover:
            assert self.dep is not None
            if self.replicas_block():
                return True
            if not self.dep.rolled_out(*self.desired()):
                self.wait("WaitingForRehydrate", "waiting for the pods that rebuild memory "
                          "from PostgreSQL before they serve")
                return True
            self.st.pop("rehydrate")
            self.set_percent(0, "Rollback", "rolled back from PostgresPrimary: memory rebuilt "
                             "from PostgreSQL, reads back on memory")
            self.event("Warning", "RolledBack", "reads returned to memory after the rehydrate")
            if target == Phase.ReadSwitchover:
                self.st["rolledBack"] = True
            return True
        if self.phase == Phase.ReadSwitchover and target < Phase.ReadSwitchover:
            if self.st["readPercent"]:
                self.set_percent(0, "Rollback", "targetPhase lowered: reads back on memory")
            self.enter(Phase.DualWrite, "targetPhase lowered")
        if self.phase == Phase.DualWrite and target < Phase.DualWrite:
            self.enter(Phase.Preparation, "targetPhase lowered: dual-write off")
        return False

    def promote(self) -> None:
        """Into PostgresPrimary: a full verify (every record, none missing) must pass, then
        the final snapshot is taken; only then are memory writes turned off."""
        self.st.setdefault("promoteRequestedAt", self.nows)
        fresh = max(self.t("promoteRequestedAt"), self.token_time())
        full = self.job("verify-full", fresh)
        if full.get("outcome") == "failed":
            self.rollback_reads(f"full verify Job {full['name']} failed before PostgresPrimary:"
                                f" {full.get('why')}")
            return
        if not self.job_gate("verify-full", full):
            return
        snapshot = self.job("snapshot", max(fresh, self.t_of(full, "finishedAt")))
        if self.job_gate("snapshot", snapshot):
            self.st.pop("promoteRequestedAt")
            self.enter(Phase.PostgresPrimary, "full verify passed and final snapshot taken; "
                       "memory writes off")
            self.reset_window()

    def postgres_primary(self) -> None:
        if self.spec.target_phase < Phase.Cleanup:
            return
        hold_end = max(self.t("phaseEnteredTime"), self.t("gateWindowStart")) + \
            self.spec.primary_hold
        self.st["nextStepTime"] = format_time(max(hold_end, self.now))
        if self.now < hold_end:
            self.wait_unless_said("Holding",
                                  f"PostgreSQL primary; hold ends {format_time(hold_end)}")
            return
        if not self.gates_holding():
            self.wait_unless_said("WaitingForGates", "hold passed; waiting for a current "
                                  "successful gate evaluation")
            return
        if not self.spec.cleanup.approved:
            self.progress = (False, "CleanupApprovalRequired",
                             "hold passed; set spec.cleanup.approved: true to clean up "
                             "(cannot be undone)")
            return
        self.enter(Phase.Cleanup, "approved: migration flags removed, STORE_BACKEND=postgres")
