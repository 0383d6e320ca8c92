"""The planner's working state for one reconcile, and the small moves every phase makes.

A RunState is a deep copy of status with defaults filled in, plus the Plan being built, the
Degraded reason and the Progressing answer. Phase logic (job_book, gate_window,
postgres_primary, read_switchover, planner) only ever changes status through these helpers,
so history, events and step times stay consistent however a phase got there.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .conditions import append_history
from .durations import format_time, parse_duration, parse_time
from .env import desired_env
from .gates import GateReadings, GateResult
from .model import DeploymentObservation, Event, JobObservation, Plan
from .spec import MigrationSpec, Phase

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CLOCK_KEYS = ("lastStepTime", "gateWindowStart", "phaseEnteredTime", "lastGateSuccessTime",
              "lastVerifySuccessTime", "retryTokenTime", "promoteRequestedAt")


class RunState:
    """Status being rewritten by one reconcile, and the Plan it produces."""

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

    def wait_unless_said(self, reason: str, message: str) -> None:
        """Wait for this reason unless this reconcile already said why it waits."""
        if self.progress[1] == "Reconciling":
            self.wait(reason, message)

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

    def token_time(self) -> datetime:
        return self.t("retryTokenTime")

    @staticmethod
    def t_of(doc: Mapping[str, Any], key: str) -> datetime:
        return parse_time(doc.get(key)) or EPOCH

    def desired(self) -> tuple[dict[str, str], list[str]]:
        return desired_env(self.phase, int(self.st["readPercent"]), self.spec.stores,
                           rehydrate=bool(self.st.get("rehydrate")))
