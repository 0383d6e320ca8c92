"""One reconcile's context: the typed status being rewritten, what was observed, and the Plan.

The phase logic (job_book, gate_window, postgres_primary, read_switchover, promotion,
planner) is plain functions over a Context. They change status only through the small
moves defined here (event, history, wait, degrade, enter, set_percent), so history,
events, step times and the gate interval stay consistent however a phase got there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .backfill_live import BackfillSample
from .conditions import append_history
from .durations import EPOCH, format_time
from .env import desired_env
from .gates import GateReadings
from .model import DeploymentObservation, Event, JobObservation, Plan
from .spec import MigrationSpec, Phase
from .status import GateEvaluation, GateInterval, HistoryEntry, MigrationStatus, read_status
from .switchset import (
    DesiredSwitches,
    PodObservation,
    adoption_names,
    config_map_name,
    confirmation,
    desired_switches,
)

CLOCK_FIELDS = ("last_step_time", "gate_window_start", "phase_entered_time",
                "last_gate_success_time", "last_verify_success_time", "retry_token_time",
                "promote_requested_at")


def t(moment: datetime | None) -> datetime:
    """A stored time, or the epoch when there is none (always in the past)."""
    return moment or EPOCH


@dataclass(frozen=True)
class Observed:
    """What the handlers saw in the cluster for this reconcile."""

    readings: GateReadings | None
    jobs: Mapping[str, JobObservation]
    deployment: DeploymentObservation | None
    pods: tuple[PodObservation, ...] = ()
    backfill: tuple[BackfillSample, ...] = ()


@dataclass
class Context:
    spec: MigrationSpec
    st: MigrationStatus
    seen: Observed
    now: datetime
    name: str
    invalid: str | None = None
    plan: Plan = field(default_factory=Plan)
    degraded: tuple[str, str] | None = None
    progress: tuple[bool, str, str] = (True, "Reconciling", "")
    evented: set[str] = field(default_factory=set)
    promote_now: bool = False  # a spec.promoteToken was accepted: take the next step now
    hold_switches: bool = False  # core.outside: switches set outside the operator stand

    @property
    def phase(self) -> Phase:
        return Phase[self.st.phase]

    @property
    def dep(self) -> DeploymentObservation:
        """The Deployment; phase logic runs only once the planner has checked it exists."""
        assert self.seen.deployment is not None
        return self.seen.deployment

    def event(self, type_: str, reason: str, message: str) -> None:
        self.plan.events.append(Event(type_, reason, message))
        self.evented.add(reason)

    def history(self, kind: str, reason: str, *, from_: int | str | None = None,
                to: int | str | None = None, readings: GateEvaluation | None = None) -> None:
        if readings is not None:
            readings = readings.model_copy(update={"checks": None})
        entry = HistoryEntry(time=self.now, type=kind, phase=self.st.phase,
                             read_percent=self.st.read_percent, reason=reason, from_=from_,
                             to=to, readings=readings)
        self.st.history = append_history(self.st.history, entry)

    def wait(self, reason: str, message: str) -> None:
        self.progress = (True, reason, message)

    def wait_unless_said(self, reason: str, message: str) -> None:
        """Wait for this reason unless this reconcile already said why it waits."""
        if self.progress[1] == "Reconciling":
            self.wait(reason, message)

    def degrade(self, reason: str, message: str) -> None:
        self.degraded = (reason, message)
        self.progress = (False, reason, message)

    def restart_interval(self, first: GateEvaluation | None = None) -> None:
        """A new gate interval begins now (with `first`, a failed evaluation, in it)."""
        self.st.gate_interval = GateInterval(
            since=self.now, evaluations=1 if first else 0, passed=0,
            not_passed=first)

    def enter(self, phase: Phase, message: str) -> None:
        old = self.st.phase
        self.st.phase = phase.name  # type: ignore[assignment]  # a PhaseName by construction
        self.st.phase_entered_time = self.now
        self.st.last_step_time = self.now
        self.restart_interval()
        self.history("Phase", message, from_=old, to=phase.name)
        self.event("Normal", "PhaseChanged", f"{old} -> {phase.name}: {message}")
        self.wait("PhaseChanged", f"entered {phase.name}: {message}")

    def set_percent(self, percent: int, kind: str, reason: str,
                    readings: GateEvaluation | None = None) -> None:
        old = self.st.read_percent
        self.st.read_percent = percent
        self.st.last_step_time = self.now
        self.restart_interval()
        self.history(kind, reason, from_=old, to=percent, readings=readings)

    def replicas_block(self) -> bool:
        """Degraded (and no forward move) while memory is written by more than one replica."""
        if self.phase <= Phase.ReadSwitchover and self.dep.replicas > 1:
            self.degrade("MultipleReplicas",
                         f"Deployment {self.dep.name} has {self.dep.replicas} replicas while "
                         "memory is written: scale it to 1 (each replica holds its own memory)")
            return True
        return False

    def token_time(self) -> datetime:
        return t(self.st.retry_token_time)

    def desired(self) -> tuple[dict[str, str], list[str]]:
        return desired_env(self.phase, self.st.read_percent, tuple(self.spec.stores),
                           rehydrate=self.st.rehydrate is not None)


    def switches(self) -> DesiredSwitches:
        return desired_switches(self.name, self.phase, self.st.read_percent,
                                tuple(self.spec.stores), rehydrate=self.st.rehydrate is not None)

    def adopted(self) -> bool:
        return self.dep.adopted(adoption_names(tuple(self.spec.stores)),
                                config_map_name(self.name))

    def live_ready(self, confirm: bool = True) -> bool:
        """The Deployment reads its switches from the ConfigMap, runs that template on every
        replica, and (with `confirm`) every ready pod confirmed the desired switches."""
        if not self.adopted():
            self.wait_unless_said("WaitingForAdoption", "waiting for the Deployment to read "
                                  f"its switches from ConfigMap {config_map_name(self.name)} "
                                  "(the one adoption restart)")
            return False
        if not self.dep.observed():
            self.wait_unless_said("WaitingForRollout", f"waiting for every replica of "
                                  f"Deployment {self.dep.name} to run its current template")
            return False
        if not confirm:
            return True
        done, pending = confirmation(self.seen.pods, self.switches())
        if not done:
            who = ", ".join(pending) if pending else "no ready API pod found"
            self.wait_unless_said("WaitingForPods", f"waiting for every API pod to confirm "
                                  f"the switches ({who})")
        return done


def start(spec: MigrationSpec, status: Mapping[str, Any], seen: Observed, now: datetime,
          name: str, generation: int, invalid: str | None = None) -> Context:
    """The context for one reconcile: stored status with the defaults of a new migration."""
    st = read_status(status)
    st.phase_entered_time = st.phase_entered_time or now
    st.last_step_time = st.last_step_time or now
    if st.retry_token is None:
        st.retry_token = spec.retry_token
    st.observed_generation = generation
    ctx = Context(spec, st, seen, now, name, invalid)
    clamp_clock(ctx)
    return ctx


def clamp_clock(ctx: Context) -> None:
    """Times stored more than one gate interval in the future (the clock went back, or a new
    node's clock is behind) would stop gates and steps until the clock caught up: they are
    reset to now, so gates keep running and intervals restart from now."""
    st, limit = ctx.st, ctx.now + ctx.spec.gates.interval
    late = [name for name in CLOCK_FIELDS if t(getattr(st, name)) > limit]
    for name in late:
        setattr(st, name, ctx.now)
    if t(st.next_gate_time) > limit:
        st.next_gate_time = None
        late.append("next_gate_time")
    for entry in st.jobs.values():
        if entry.created_at > limit:
            entry.created_at = ctx.now
            late.append(f"jobs.{entry.name}.createdAt")
    if late:
        names = [MigrationStatus.model_fields[n].alias or n if n in MigrationStatus.model_fields
                 else n for n in late]
        ctx.event("Warning", "ClockWentBack", f"{', '.join(names)} lay in the future; reset "
                  f"to {format_time(ctx.now)}")
