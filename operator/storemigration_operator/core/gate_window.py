"""The gate window: recording each Prometheus evaluation and rolling reads back on a failure.

A step needs every gate to have held for a whole interval. The window is the span the
successful evaluations cover; any Failed evaluation restarts it, and during ReadSwitchover
also sends reads back to memory at once.
"""

from __future__ import annotations

from .durations import format_time, parse_time
from .gates import GateReadings, GateResult, evaluate, json_number
from .job_book import JobBook
from .spec import Phase


class GateWindow(JobBook):
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

    def reset_window(self) -> None:
        self.st["gateWindowStart"] = self.nows
        self.st["gateSuccessesInWindow"] = 0
        self.st["gateCounts"] = {r.value: 0 for r in GateResult}
        self.st.pop("rolledBack", None)
