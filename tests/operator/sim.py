"""A simulated calendar for the planner: a Deployment whose env, replicas and strategy
follow patches at once, a
ConfigMap and one API pod that take the live switches the plan PUTs (the pod boots from
the ConfigMap when the template changes), Jobs whose outcome the test decides, and a
status round-tripped through JSON each tick (exactly what a restarted operator would read
back)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonpatch
from storemigration_operator.core.backfill_live import BackfillSample
from storemigration_operator.core.gates import GateReadings
from storemigration_operator.core.invalid import effective_spec, invalid_spec_plan
from storemigration_operator.core.model import DeploymentObservation, JobObservation, Plan
from storemigration_operator.core.planner import gates_due, plan
from storemigration_operator.core.statuswrite import status_json_patch
from storemigration_operator.core.switchset import (
    PodObservation,
    adoption_names,
    config_map_name,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HEALTHY = GateReadings(error_rate=0.001, p95_seconds=0.05, mismatch_ratio=0.0, requests=5000)


@dataclass
class Sim:
    spec_doc: dict[str, Any]
    now: datetime = T0
    env: dict[str, str | None] = field(default_factory=lambda: {"DATABASE_URL": "postgres://x"})
    replicas: int = 1
    strategy: dict[str, Any] = field(default_factory=lambda: {"type": "Recreate"})
    status: dict[str, Any] = field(default_factory=dict)
    jobs: dict[str, JobObservation] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    job_outcome: Callable[[str], tuple[str, dict[str, Any] | None]] = (
        lambda kind: ("Succeeded", {"mismatch_ratio": 0.0, "checked": 10}))
    readings: Callable[[datetime], GateReadings] = lambda now: HEALTHY
    backfill: Callable[[datetime], tuple[BackfillSample, ...]] = lambda now: ()
    plans: list[Plan] = field(default_factory=list)
    generation: int = 1
    observed_generation: int = 1
    pods_ready: bool = True  # False: new pods crash-loop, the controller never gets them up
    refs: dict[str, str] = field(default_factory=dict)  # env name -> ConfigMap (adopted)
    config: dict[str, str] = field(default_factory=dict)  # the switches' ConfigMap data
    pod_revision: str | None = None  # the desired_revision the API pod last applied
    pod_switches: dict[str, str] = field(default_factory=dict)  # what it applied
    pod_reachable: bool = True
    puts: list[str] = field(default_factory=list)  # every PUT's desired_revision
    config_set: dict[str, str] = field(default_factory=dict)  # this tick's ConfigMap change
    config_removed: list[str] = field(default_factory=list)
    adopted: bool = True  # the Deployment reads its flags from the ConfigMap, as the chart's

    def __post_init__(self) -> None:
        spec, _ = effective_spec(self.spec_doc, {})
        if self.adopted and spec is not None and not self.refs:
            self.refs = {n: config_map_name("sm") for n in adoption_names(tuple(spec.stores))}

    @property
    def live(self) -> dict[str, str | None]:
        """The env the API runs with: literal values, and the ConfigMap's for adopted names
        (a key absent from the ConfigMap leaves the variable unset)."""
        env = {k: v for k, v in self.env.items() if k not in self.refs}
        env.update({k: self.config[k] for k in self.refs if k in self.config})
        return env

    def pods(self) -> tuple[PodObservation, ...]:
        if not self.pod_reachable:
            return (PodObservation("api-0", "10.0.0.1:8000", True, error="ConnectError"),)
        return (PodObservation("api-0", "10.0.0.1:8000", self.pods_ready, self.pod_revision,
                               "fp" if self.pod_revision else None, dict(self.pod_switches)),)

    def deployment(self) -> DeploymentObservation:
        """The Deployment as its controller reports it: a changed template is one tick old
        before the controller observes it, and its pods are available only if pods_ready."""
        rolled = self.observed_generation >= self.generation and self.pods_ready
        return DeploymentObservation(
            name="api", replicas=self.replicas, env=dict(self.env), image="api:1",
            config_refs=dict(self.refs), strategy=dict(self.strategy),
            generation=self.generation, observed_generation=self.observed_generation,
            status_replicas=self.replicas if rolled else self.replicas + 1,
            updated_replicas=self.replicas if rolled else 0,
            available_replicas=self.replicas if rolled else self.replicas - 1 if
            self.pods_ready else 0)

    def tick(self, advance: timedelta = timedelta(0), crash: str | None = None) -> Plan:
        """One reconcile. `crash` kills the operator mid-apply: "after_config_map" (the
        ConfigMap written, no pod PUT, no status write) or "after_put" (ConfigMap and pods
        done, no status write); the next tick is the restarted operator."""
        self.now += advance
        spec, error = effective_spec(self.spec_doc, self.status)
        self.observed_generation = self.generation  # the controller caught up since last tick
        if spec is None:
            p = invalid_spec_plan(self.status, error or "", self.now, 1)
        else:
            due = gates_due(spec, self.status, self.now)
            p = plan(spec, self.status, self.readings(self.now) if due else None,
                     dict(self.jobs), self.deployment(), self.now, name="sm", generation=1,
                     invalid=error, pods=self.pods(), backfill=self.backfill(self.now))
        self.env.update(p.env_set)
        for name in p.env_remove:
            self.env.pop(name, None)
            self.refs.pop(name, None)
        for name in p.env_adopt:
            self.env.pop(name, None)
            self.refs[name] = p.switches.config_map if p.switches else ""
        self.config_set, self.config_removed = {}, []
        if p.switches is not None:
            new = dict(p.switches.data)
            self.config_set = {k: v for k, v in new.items() if self.config.get(k) != v}
            self.config_removed = sorted(k for k in self.config if k not in new)
            self.config = new
        if p.replicas is not None:
            self.replicas = p.replicas
        if p.strategy is not None:
            self.strategy = dict(p.strategy)
        if p.shape_changed and not p.env_changed:
            self.generation += 1  # a new spec, the same pods
        if p.env_changed:
            self.generation += 1
            self.pod_revision, self.pod_switches = None, {}  # a new pod, booted from env
        if crash == "after_config_map":
            return p
        if p.switches is not None and p.pod_targets and self.pod_reachable:
            self.puts.append(p.switches.revision)
            self.pod_revision, self.pod_switches = p.switches.revision, p.switches.switches
        if crash == "after_put":
            return p
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
