"""Phase 2: stepping reads from memory to PostgreSQL while gates and verify Jobs hold.

Each step waits a full interval in which every gate held and a verify Job passed recently;
a failed verify rolls reads back like a failed gate. At 100% the next move is promotion,
gated by a full verify instead: a periodic verify started then would run after memory
writes stop and compare PostgreSQL with memory that is stale by design.
"""

from __future__ import annotations

from .durations import format_time
from .postgres_primary import PostgresPrimarySteps
from .spec import Phase
from .verify import ERROR_RETRY

VERIFY_EARLY = 0.9  # re-verify at 90% of the interval so a fresh result is ready at step time


class ReadSwitchoverSteps(PostgresPrimarySteps):
    def schedule_verify(self) -> None:
        early = self.spec.verify_interval * VERIFY_EARLY
        last = self.st["jobs"].get("verify") or {}
        if last.get("outcome") == "error":
            early = min(early, ERROR_RETRY)
        self.job("verify", max(self.now - early, self.token_time()))
        self.act_on_verify()

    def act_on_verify(self) -> None:
        entry = self.st["jobs"].get("verify") or {}
        early = min(self.spec.verify_interval * VERIFY_EARLY, ERROR_RETRY)
        if entry.get("outcome") == "failed" and not entry.get("acted"):
            entry["acted"] = True
            self.rollback_reads(f"verify Job {entry['name']} failed: {entry.get('why')}")
        elif entry.get("outcome") == "error":
            self.degrade("VerifyError", f"verify Job {entry['name']}: {entry.get('why')}; "
                         f"holding, tried again within {early}")

    def verify_fresh(self) -> bool:
        last_ok = self.t("lastVerifySuccessTime")
        entry = self.st["jobs"].get("verify", {})
        failed_since = entry.get("outcome") == "failed" and \
            self.t_of(entry, "finishedAt") > last_ok
        return not failed_since and last_ok >= self.now - self.spec.verify_interval

    def read_switchover(self) -> None:
        percent, target = int(self.st["readPercent"]), self.spec.target_phase
        if percent >= 100 and target > Phase.ReadSwitchover:
            self.act_on_verify()  # promotion: the full verify is the gate from here on
        else:
            self.schedule_verify()
        if percent >= 100 and target <= Phase.ReadSwitchover:
            return
        if self.st.get("retriesExhausted"):
            self.degrade("RetriesExhausted", f"rolled back {self.st['retries']} times; "
                         "change spec.retryToken to try again")
            return
        interval = self.spec.retry_after if percent == 0 else self.spec.read_step.interval
        window = max(self.t("lastStepTime"), self.t("gateWindowStart"))
        due = window + interval
        self.st["nextStepTime"] = format_time(max(due, self.now))
        if self.now < due:
            self.wait_unless_said("WaitingForInterval", f"reads at {percent}%; next step at "
                                  f"{format_time(due)} if every gate holds until then")
            return
        if not self.gates_holding():
            self.wait_unless_said("WaitingForGates", "the latest gate evaluation did not "
                                  "succeed or is older than gates.window")
            return
        if percent < 100 and not self.verify_fresh():
            self.wait("WaitingForVerify", "no passing verify Job within spec.verify.interval")
            return
        if self.replicas_block():
            return
        if percent < 100:
            step = self.spec.read_step
            new = step.start if percent < step.start else min(100, percent + step.step)
            self.set_percent(new, "Step", f"every gate held for {interval}",
                             readings=self.st.get("lastGate"))
            self.reset_window()
            self.event("Normal", "ReadStep", f"reads {percent}% -> {new}%")
            self.wait("Stepped", f"reads {percent}% -> {new}%")
            return
        self.promote()
