"""The planner: (spec, status, readings, Jobs, Deployment, now) -> Plan. Pure and level-based.

Every reconcile replays the same decision from what status remembers (phase entry, last step,
when the gate window last restarted, which Job attempt belongs to which stage), so an operator
restarted mid-interval neither repeats a step nor skips one. One call makes at most one
forward transition; rollbacks of reads are instant. See DESIGN.md, "The operator".
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .conditions import append_history, get_condition, set_condition
from .durations import format_time, parse_duration, parse_time
from .env import desired_env, env_diff
from .gates import GateReadings, GateResult, evaluate, json_number
from .jobs import job_parts
from .model import DeploymentObservation, Event, JobObservation, JobRequest, Plan
from .spec import MigrationSpec, Phase
from .verify import ERROR_RETRY, VERIFY_KINDS, verify_outcome

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TERMINAL = ("Succeeded", "Failed")
VERIFY_EARLY = 0.9  # re-verify at 90% of the interval so a fresh result is ready at step time
CLOCK_KEYS = ("lastStepTime", "gateWindowStart", "phaseEnteredTime", "lastGateSuccessTime",
              "lastVerifySuccessTime", "retryTokenTime", "promoteRequestedAt")


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


class _Run:
    def __init__(self, spec: MigrationSpec, status: Mapping[str, Any],
                 readings: GateReadings | None, jobs: Mapping[str, JobObservation],
                 deployment: DeploymentObservation | None, now: datetime, name: str,
                 generation: int) -> None:
        self.spec, self.readings, self.observed, self.dep = spec, readings, jobs, deployment
        self.now, self.nows, self.name = now, format_time(now), name
        st: dict[str, Any] = copy.deepcopy(dict(status))
        st.pop("kopf", None)
        st.setdefault("phase", Phase.Preparation.name)
        st.setdefault("readPercent", 0)
        st.setdefault("phaseEnteredTime", self.nows)
        st.setdefault("lastStepTime", self.nows)
        for key in ("conditions", "history", "ownedEnv"):
            st.setdefault(key, [])
        st.setdefault("jobs", {})
        st.setdefault("gateCounts", {r.value: 0 for r in GateResult})
        st.setdefault("rollbacks", 0)
        st.setdefault("retries", 0)
        st.setdefault("retryToken", spec.retry_token)
        st["observedGeneration"] = generation
        self.st = st
        self.window = parse_duration(spec.gates.window)
        self.plan = Plan()
        self.degraded: tuple[str, str] | None = None
        self.progress: tuple[bool, str, str] = (True, "Reconciling", "")
        self.evented: set[str] = set()
        self.invalid: str | None = None
        self.clamp_clock()

    def clamp_clock(self) -> None:
        """Times stored more than one gate interval in the future (the clock went back, or a
        new node's clock is behind) would stop gates and steps until the clock caught up:
        they are reset to now, so gates keep running and intervals restart from now."""
        limit = self.now + self.spec.gates.interval
        late = [k for k in CLOCK_KEYS if (parse_time(self.st.get(k)) or EPOCH) > limit]
        for key in late:
            self.st[key] = self.nows
        if (parse_time(self.st.get("nextGateTime")) or EPOCH) > limit:
            self.st.pop("nextGateTime")
            late.append("nextGateTime")
        for entry in self.st["jobs"].values():
            if (parse_time(entry.get("createdAt")) or EPOCH) > limit:
                entry["createdAt"] = self.nows
                late.append(f"jobs.{entry.get('name')}.createdAt")
        if late:
            self.event("Warning", "ClockWentBack", f"{', '.join(late)} lay in the future; "
                       "reset to now")

    # ---- helpers ----
    @property
    def phase(self) -> Phase:
        return Phase[self.st["phase"]]

    def t(self, key: str) -> datetime:
        return parse_time(self.st.get(key)) or EPOCH

    def event(self, type_: str, reason: str, message: str) -> None:
        self.plan.events.append(Event(type_, reason, message))
        self.evented.add(reason)

    def history(self, kind: str, reason: str, **extra: Any) -> None:
        entry = {"time": self.nows, "type": kind, "phase": self.st["phase"],
                 "readPercent": self.st["readPercent"], "reason": reason, **extra}
        self.st["history"] = append_history(self.st["history"], entry)

    def wait(self, reason: str, message: str) -> None:
        self.progress = (True, reason, message)

    def degrade(self, reason: str, message: str) -> None:
        self.degraded = (reason, message)
        self.progress = (False, reason, message)

    def enter(self, phase: Phase, message: str) -> None:
        old = self.st["phase"]
        self.st["phase"] = phase.name
        self.st["phaseEnteredTime"] = self.nows
        self.st["lastStepTime"] = self.nows
        self.history("Phase", message, **{"from": old, "to": phase.name})
        self.event("Normal", "PhaseChanged", f"{old} -> {phase.name}: {message}")
        self.wait("PhaseChanged", f"entered {phase.name}: {message}")

    def set_percent(self, percent: int, kind: str, reason: str, **extra: Any) -> None:
        old = self.st["readPercent"]
        self.st["readPercent"] = percent
        self.st["lastStepTime"] = self.nows
        self.history(kind, reason, **{"from": old, "to": percent}, **extra)

    def replicas_block(self) -> bool:
        """Degraded (and no forward move) while memory is written by more than one replica."""
        assert self.dep is not None
        if self.phase <= Phase.ReadSwitchover and self.dep.replicas > 1:
            self.degrade("MultipleReplicas",
                         f"Deployment {self.dep.name} has {self.dep.replicas} replicas while "
                         "memory is written: scale it to 1 (each replica holds its own memory)")
            return True
        return False

    def request(self, kind: str, job_name: str) -> JobRequest:
        image, command, args, env = job_parts(kind, self.spec, self.dep.image if self.dep else None)
        return JobRequest(job_name, kind, image, command, args, env)

    def job(self, kind: str, fresh_after: datetime) -> dict[str, Any]:
        """The current attempt of a Job kind; a new attempt if the last predates fresh_after."""
        entry: dict[str, Any] | None = self.st["jobs"].get(kind)
        if entry is not None and entry.get("outcome") == "error":
            fresh_after = max(fresh_after, self.now - ERROR_RETRY)
        created = parse_time(entry.get("createdAt")) if entry else None
        if entry is None or created is None or created < fresh_after:
            attempt = int((entry or {}).get("attempt", 0)) + 1
            previous = entry or {}
            retrying = previous.get("why") if previous.get("outcome") == "error" else None
            entry = {"name": f"{self.name}-{kind}-{attempt}", "attempt": attempt,
                     "state": "Pending", "createdAt": self.nows}
            if retrying:
                entry["retrying"] = retrying  # the previous attempt could not run
            self.st["jobs"][kind] = entry
            self.plan.jobs.append(self.request(kind, entry["name"]))
            self.event("Normal", "JobCreated", f"{kind} Job {entry['name']} created")
        return entry

    def job_gate(self, kind: str, entry: dict[str, Any]) -> bool:
        """True when the Job succeeded; otherwise records why we wait or are degraded."""
        if entry["state"] == "Succeeded" and entry.get("passed", True):
            return True
        if entry.get("outcome") == "error":
            self.degrade("VerifyError", f"{kind} Job {entry['name']}: {entry.get('why')}; "
                         f"holding, tried again within {ERROR_RETRY}")
        elif entry["state"] in TERMINAL:
            self.degrade(f"{kind.capitalize()}Failed",
                         f"{kind} Job {entry['name']} {entry['state'].lower()}: "
                         f"{entry.get('why') or entry.get('message') or entry.get('result')}; "
                         "fix the cause and "
                         "change spec.retryToken to retry")
        elif entry.get("retrying"):
            self.degrade("VerifyError", f"{kind} Job {entry['name']} retries a check that "
                         f"could not run ({entry['retrying']})")
        else:
            self.wait("WaitingForJob", f"waiting for {kind} Job {entry['name']}")
        return False

    def token_time(self) -> datetime:
        return self.t("retryTokenTime")

    # ---- the decision ----
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

    def sync_jobs(self) -> None:
        for kind, entry in self.st["jobs"].items():
            obs = self.observed.get(entry["name"])
            if entry["state"] in TERMINAL:
                continue
            if obs is None:
                self.plan.jobs.append(self.request(kind, entry["name"]))
                continue
            entry["state"] = obs.state
            if obs.state not in TERMINAL:
                continue
            entry["finishedAt"] = format_time(obs.finished_at or self.now)
            if obs.result is not None:
                entry["result"] = dict(obs.result)
            if obs.message:
                entry["message"] = obs.message[:300]
            if kind in VERIFY_KINDS:
                outcome, why = verify_outcome(obs.state, obs.result,
                                              self.spec.gates.mismatch_ratio_ceiling)
                entry.update(outcome=outcome, passed=outcome == "passed")
                if why:
                    entry["why"] = why
                if entry["passed"] and kind == "verify":
                    self.st["lastVerifySuccessTime"] = entry["finishedAt"]
            ok = obs.state == "Succeeded" and entry.get("passed", True)
            self.event("Normal" if ok else "Warning", "JobSucceeded" if ok else "JobFailed",
                       f"{kind} Job {entry['name']} {'passed' if ok else 'failed'}"
                       + (f": {entry.get('why') or entry.get('result') or entry.get('message')}"
                          if not ok else ""))

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

    @staticmethod
    def t_of(doc: Mapping[str, Any], key: str) -> datetime:
        return parse_time(doc.get(key)) or EPOCH

    def desired(self) -> tuple[dict[str, str], list[str]]:
        return desired_env(self.phase, int(self.st["readPercent"]), self.spec.stores,
                           rehydrate=bool(self.st.get("rehydrate")))

    def evaluate_gates(self, readings: GateReadings) -> None:
        gates = self.spec.gates
        verdict = evaluate(readings, gates)
        previous = (self.st.get("lastGate") or {}).get("result")
        self.st["nextGateTime"] = format_time(self.now + gates.interval)
        self.st["lastGate"] = {
            "time": self.nows, "errorRate": json_number(readings.error_rate),
            "p95Seconds": json_number(readings.p95_seconds),
            "mismatchRatio": json_number(readings.mismatch_ratio),
            "requests": json_number(readings.requests), "result": verdict.result.value,
            "reason": verdict.reason,
            "thresholds": {"errorRate": gates.error_rate_ceiling,
                           "p95Seconds": gates.p95_ceiling_seconds,
                           "mismatchRatio": gates.mismatch_ratio_ceiling,
                           "minRequests": gates.min_requests},
        }
        counts = self.st["gateCounts"]
        counts[verdict.result.value] = int(counts.get(verdict.result.value, 0)) + 1
        if verdict.result == GateResult.Successful:
            # Each evaluation covers [now - window, now]: successes at most one window apart
            # cover the time between them. After a longer gap (an outage, a pause, a run of
            # Errors) nobody saw what happened, so the window restarts at now - window.
            last = parse_time(self.st.get("lastGateSuccessTime"))
            if last is None or self.now - last > self.window:
                self.st["gateWindowStart"] = format_time(self.now - self.window)
                self.st["gateSuccessesInWindow"] = 1
            else:
                self.st["gateSuccessesInWindow"] = int(self.st.get("gateSuccessesInWindow", 0)) + 1
            self.st["lastGateSuccessTime"] = self.nows
            return
        if verdict.result == GateResult.Failed:
            self.st["gateWindowStart"] = self.nows
            self.st["gateSuccessesInWindow"] = 0
        if verdict.result != GateResult.Failed:
            self.wait(f"Gate{verdict.result.value}", f"holding: {verdict.reason}")
        elif self.phase == Phase.ReadSwitchover:
            self.rollback_reads(f"gate failed: {verdict.reason}")
        else:
            if previous != GateResult.Failed.value:  # an event per transition, not per minute
                self.event("Warning", "GateFailed", f"in PostgresPrimary: {verdict.reason}; "
                           "hold restarted (lower targetPhase to roll back)")
            self.degrade("GateFailed", verdict.reason)

    def gates_holding(self) -> bool:
        """The latest evaluation succeeded and is recent enough to cover up to now."""
        last = parse_time(self.st.get("lastGateSuccessTime"))
        latest = (self.st.get("lastGate") or {}).get("result")
        return latest == GateResult.Successful.value and last is not None and \
            self.now - last <= self.window

    def rollback_reads(self, reason: str) -> None:
        if self.st.get("rehydrate"):
            self.degrade("GateFailed", f"{reason}; reads stay on PostgreSQL until memory is "
                         "rebuilt, then return to memory")
            return
        self.st["gateWindowStart"] = self.nows
        self.st["gateSuccessesInWindow"] = 0
        self.st.pop("promoteRequestedAt", None)
        if not self.st["readPercent"]:
            self.degrade("GateFailed", f"{reason} (reads already at 0%)")
            return
        old = self.st["readPercent"]
        self.set_percent(0, "Rollback", reason, readings=self.st.get("lastGate"))
        self.st["rollbacks"] = int(self.st["rollbacks"]) + 1
        self.st["retries"] = int(self.st["retries"]) + 1
        self.st["rolledBack"] = True
        self.st["lastRollbackTime"] = self.nows
        rb = self.spec.rollback
        if not rb.retry or self.st["retries"] > rb.max_retries:
            self.st["retriesExhausted"] = True
        self.event("Warning", "RolledBack", f"reads {old}% -> 0%: {reason}")
        self.degrade("RolledBack", f"reads {old}% -> 0%: {reason}")

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

    def reset_window(self) -> None:
        self.st["gateWindowStart"] = self.nows
        self.st["gateSuccessesInWindow"] = 0
        self.st["gateCounts"] = {r.value: 0 for r in GateResult}
        self.st.pop("rolledBack", None)

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
        self.schedule_verify()
        percent, target = int(self.st["readPercent"]), self.spec.target_phase
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
            if self.progress[1] == "Reconciling":
                self.wait("WaitingForInterval", f"reads at {percent}%; next step at "
                          f"{format_time(due)} if every gate holds until then")
            return
        if not self.gates_holding():
            if self.progress[1] == "Reconciling":
                self.wait("WaitingForGates", "the latest gate evaluation did not succeed or is "
                          "older than gates.window")
            return
        if not self.verify_fresh():
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
            if self.progress[1] == "Reconciling":
                self.wait("Holding", f"PostgreSQL primary; hold ends {format_time(hold_end)}")
            return
        if not self.gates_holding():
            if self.progress[1] == "Reconciling":
                self.wait("WaitingForGates", "hold passed; waiting for a current successful "
                          "gate evaluation")
            return
        if not self.spec.cleanup.approved:
            self.progress = (False, "CleanupApprovalRequired",
                             "hold passed; set spec.cleanup.approved: true to clean up "
                             "(cannot be undone)")
            return
        self.enter(Phase.Cleanup, "approved: migration flags removed, STORE_BACKEND=postgres")

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
        was = get_condition(conds, "Degraded")
        if set_condition(conds, "Degraded", degraded is not None,
                         degraded[0] if degraded else "AsExpected",
                         degraded[1] if degraded else "", nows) and degraded is not None \
                and degraded[0] not in self.evented:
            self.event("Warning", degraded[0], degraded[1])
        del was
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
