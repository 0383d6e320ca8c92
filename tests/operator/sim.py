"""A simulated calendar for the planner: a Deployment whose env follows patches at once,
Jobs whose outcome the test decides, and a status round-tripped through JSON each tick
(exactly what a restarted operator would read back)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonpatch
from storemigration_operator.core.gates import GateReadings
from storemigration_operator.core.invalid import effective_spec, invalid_spec_plan
from storemigration_operator.core.model import DeploymentObservation, JobObservation, Plan
from storemigration_operator.core.planner import gates_due, plan
from storemigration_operator.core.statuswrite import status_json_patch

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HEALTHY = GateReadings(error_rate=0.001, p95_seconds=0.05, mismatch_ratio=0.0, requests=5000)


@dataclass
class Sim:
    spec_doc: dict[str, Any]
    now: datetime = T0
    env: dict[str, str | None] = field(default_factory=lambda: {"DATABASE_URL": "postgres://x"})
    replicas: int = 1
    status: dict[str, Any] = field(default_factory=dict)
    jobs: dict[str, JobObservation] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    job_outcome: Callable[[str], tuple[str, dict[str, Any] | None]] = (
        lambda kind: ("Succeeded", {"mismatch_ratio": 0.0, "checked": 10}))
    readings: Callable[[datetime], GateReadings] = lambda now: HEALTHY
    plans: list[Plan] = field(default_factory=list)
    generation: int = 1
    observed_generation: int = 1
    pods_ready: bool = True  # False: new pods crash-loop, the controller never gets them up

    def deployment(self) -> DeploymentObservation:
        """The Deployment as its controller reports it: a changed template is one tick old
        before the controller observes it, and its pods are available only if pods_ready."""
        rolled = self.observed_generation >= self.generation and self.pods_ready
        return DeploymentObservation(
            name="api", replicas=self.replicas, env=dict(self.env), image="api:1",
            generation=self.generation, observed_generation=self.observed_generation,
            status_replicas=self.replicas if rolled else self.replicas + 1,
            updated_replicas=self.replicas if rolled else 0,
            available_replicas=self.replicas if rolled else self.replicas - 1 if
            self.pods_ready else 0)

    def tick(self, advance: timedelta = timedelta(0)) -> Plan:
        self.now += advance
        spec, error = effective_spec(self.spec_doc, self.status)
        self.observed_generation = self.generation  # the controller caught up since last tick
        if spec is None:
            p = invalid_spec_plan(self.status, error or "", self.now, 1)
        else:
            due = gates_due(spec, self.status, self.now)
            p = plan(spec, self.status, self.readings(self.now) if due else None,
                     dict(self.jobs), self.deployment(), self.now, name="sm", generation=1,
                     invalid=error)
        self.env.update(p.env_set)
        for name in p.env_remove:
            self.env.pop(name, None)
        if p.env_changed:
            self.generation += 1
        for req in p.jobs:
            if req.name not in self.jobs and req.name not in self.created:
                self.created.append(req.name)
        # Jobs created by this plan finish before the next tick, as the test decides.
        for req in p.jobs:
            state, result = self.job_outcome(req.kind)
            self.jobs[req.name] = JobObservation(req.name, state, result, self.now)
        self.status = self.store_status(p.status)
        self.plans.append(p)
        return p

    def store_status(self, new: dict[str, Any]) -> dict[str, Any]:
        """What the API server holds after the operator's status write, applied as the API
        server applies it (a JSON patch), through JSON (no NaN): what every reconcile reads."""
        doc = {"metadata": {"resourceVersion": "1"}, "status": self.status}
        ops = status_json_patch(json.loads(json.dumps(new, allow_nan=False)), "1")
        return dict(jsonpatch.apply_patch(doc, ops)["status"])

    def run_until(self, pred: Callable[[], bool], step: timedelta, limit: int = 2000) -> int:
        for i in range(limit):
            if pred():
                return i
            self.tick(step)
        raise AssertionError(f"not reached after {limit} ticks; status={self.status}")

    @property
    def phase(self) -> str:
        return str(self.status.get("phase"))

    @property
    def percent(self) -> int:
        return int(self.status.get("readPercent", 0))

    def condition(self, type_: str) -> dict[str, Any]:
        return next(c for c in self.status["conditions"] if c["type"] == type_)

    def events(self) -> list[tuple[str, str]]:
        return [(e.type, e.reason) for p in self.plans for e in p.events]
