"""Job bookkeeping: which attempt of each Job kind belongs to the current stage.

Status remembers each kind's latest attempt (name, attempt number, createdAt, outcome), so a
restarted operator recreates a Job that vanished instead of starting a second attempt, and a
stage that needs a result newer than some time asks for a fresh attempt only once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .durations import format_time, parse_time
from .jobs import job_parts
from .model import JobRequest
from .run_state import RunState
from .verify import ERROR_RETRY, VERIFY_KINDS, verify_outcome

TERMINAL = ("Succeeded", "Failed")


class JobBook(RunState):
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
