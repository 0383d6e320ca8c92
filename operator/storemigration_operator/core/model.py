"""What the planner sees (observations) and what it decides (a Plan).

Observations are plain values gathered by the handlers from the cluster; the Plan is applied
by them in one pass: ConfigMap and live switches on every pod (or, at adoption and Cleanup
only, an env patch; from PostgresPrimary on and in a rollback out of it, the Deployment's
replicas and strategy), Job creation, events, then a single status patch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .switchset import DesiredSwitches, PodObservation


@dataclass(frozen=True)
class DeploymentObservation:
    name: str
    replicas: int = 1
    container_found: bool = True
    env: Mapping[str, str | None] = field(default_factory=dict)
    image: str | None = None
    generation: int | None = None
    observed_generation: int | None = None
    status_replicas: int | None = None
    updated_replicas: int | None = None
    available_replicas: int | None = None
    config_refs: Mapping[str, str] = field(default_factory=dict)  # env name -> ConfigMap
    strategy: Mapping[str, Any] = field(default_factory=dict)  # spec.strategy as written

    def adopted(self, names: list[str], config_map: str) -> bool:
        """Every name comes from the ConfigMap (env valueFrom.configMapKeyRef, same key)."""
        return all(self.config_refs.get(n) == config_map for n in names)

    def observed(self) -> bool:
        """The controller saw this generation and every replica is updated and available."""
        return self.rolled_out({}, [])

    def rolled_out(self, to_set: Mapping[str, str], to_remove: list[str]) -> bool:
        """The env is what we asked for and the new pods run it, as `kubectl rollout status`
        decides: the controller has seen this generation, and every replica is updated and
        available with no old pod left over (status.replicas counts old and new pods)."""
        if any(self.env.get(k) != v for k, v in to_set.items()):
            return False
        if any(k in self.env for k in to_remove):
            return False
        if self.generation is None or (self.observed_generation or 0) < self.generation:
            return False
        return (self.updated_replicas or 0) == (self.status_replicas or 0) == \
            (self.available_replicas or 0) == self.replicas


@dataclass(frozen=True)
class JobObservation:
    name: str
    state: str  # Running | Succeeded | Failed
    result: Mapping[str, Any] | None = None
    finished_at: datetime | None = None
    message: str | None = None


@dataclass(frozen=True)
class JobRequest:
    name: str
    kind: str
    image: str | None
    command: tuple[str, ...]
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    secret_env: tuple[tuple[str, str, str], ...] = ()  # (env name, Secret name, key)
    snapshot_mount: tuple[str, str] | None = None  # (claim name, mount path)


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass
class Plan:
    """What one reconcile decided; `status` is the whole new status as the API server holds
    it (plain JSON)."""

    env_set: dict[str, str] = field(default_factory=dict)
    env_remove: list[str] = field(default_factory=list)
    env_adopt: list[str] = field(default_factory=list)  # names to read from the ConfigMap
    switches: DesiredSwitches | None = None  # the ConfigMap to write and the PUT body
    pod_targets: list[PodObservation] = field(default_factory=list)  # pods to PUT to
    replicas: int | None = None  # spec.replicas to set on the Deployment
    strategy: dict[str, Any] | None = None  # spec.strategy to set on the Deployment
    jobs: list[JobRequest] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    next_check: datetime | None = None

    @property
    def env_changed(self) -> bool:
        return bool(self.env_set or self.env_remove or self.env_adopt)

    @property
    def shape_changed(self) -> bool:
        """The Deployment's replicas or strategy change (no new pod template)."""
        return self.replicas is not None or self.strategy is not None
