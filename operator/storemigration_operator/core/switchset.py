"""The switches a phase wants, as the three moves that apply them live: the ConfigMap's
data (the env names the API boots from, through env valueFrom.configMapKeyRef), the body
of PUT /api/admin/switches for every ready API pod, and the label (desired_revision) each
pod must echo back before a step counts as done.

Pure: the planner builds a DesiredSwitches from (phase, read percent, rehydrate, stores);
`confirmation` compares what each pod reported with it. The label is derived from the
content, so an operator restarted mid-step computes the same label and neither repeats
nor skips the step: a pod that already has it is left alone, one that has not gets the
same PUT again (applying what is in effect changes nothing).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .env import BACKEND, FLAGS, desired_env, env_names
from .spec import STORES, Phase

# The API's switch for each logical env flag (REHYDRATE_ON_START has none: a live rollback
# from PostgresPrimary rebuilds memory in the PUT; the ConfigMap keeps it for a pod that
# restarts meanwhile).
SWITCH_OF = {"DUAL_WRITE_MODE": "dual_write", "READ_FROM_POSTGRES_PERCENT": "read_percent",
             "IN_MEMORY_WRITES": "memory_writes"}
LIVE_PHASES = (Phase.Preparation, Phase.DualWrite, Phase.ReadSwitchover, Phase.PostgresPrimary)


def pods_serve_switches(phase: str | None) -> bool:
    """Whether the API pods still answer GET /api/admin/switches in this (stored) phase.
    From Cleanup on, which cannot be undone, the API runs PostgreSQL only
    (app.postgres_service) with no switches, so the operator stops reading them."""
    return phase not in (Phase.Cleanup.name, Phase.Complete.name)


def config_map_name(migration: str) -> str:
    return f"{migration}-switches"


def _value(flag: str, text: str) -> bool | int:
    return int(text) if flag == "READ_FROM_POSTGRES_PERCENT" else text == "true"


@dataclass(frozen=True)
class DesiredSwitches:
    """One switch set: `data` is the ConfigMap's (env name -> value), `body` the PUT's."""

    config_map: str
    data: Mapping[str, str]
    body: Mapping[str, Any]
    revision: str

    @property
    def switches(self) -> dict[str, str]:
        """Switch name -> value as text, per store scope (what status shows)."""
        return {f"{scope}.{k}": json.dumps(v) for scope, patch in sorted(self.body.items())
                if isinstance(patch, dict) for k, v in sorted(patch.items())}


def desired_switches(migration: str, phase: Phase, read_percent: int,
                     stores: tuple[str, ...], rehydrate: bool = False) -> DesiredSwitches:
    to_set, _ = desired_env(phase, read_percent, stores, rehydrate=rehydrate)
    data = {k: v for k, v in sorted(to_set.items())}
    patch: dict[str, bool | int] = {}
    for flag, switch in SWITCH_OF.items():
        names = env_names(stores)[flag]
        if names and names[0] in data:
            patch[switch] = _value(flag, data[names[0]])
    scopes = ["all"] if set(stores) == set(STORES) else sorted(stores)
    body: dict[str, Any] = {scope: dict(patch) for scope in scopes}
    digest = hashlib.sha256(json.dumps({"data": data, "body": body}, sort_keys=True)
                            .encode()).hexdigest()[:12]
    revision = f"{migration}-{phase.name}-{read_percent}-{digest}"
    body["desired_revision"] = revision
    return DesiredSwitches(config_map_name(migration), data, body, revision)


def adoption_names(stores: tuple[str, ...]) -> list[str]:
    """The env names that come from the ConfigMap once the Deployment is adopted."""
    names = env_names(stores)
    return sorted({n for flag in FLAGS for n in names[flag]} - set(names[BACKEND]))


@dataclass(frozen=True)
class PodObservation:
    """One API pod as the operator saw it: its address and, if it answered GET
    /api/admin/switches, what it reported."""

    name: str
    address: str | None
    ready: bool
    desired_revision: str | None = None
    fingerprint: str | None = None
    switches: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None

    def confirms(self, desired: DesiredSwitches) -> bool:
        return self.error is None and self.desired_revision == desired.revision


def confirmation(pods: Sequence[PodObservation], desired: DesiredSwitches
                 ) -> tuple[bool, list[str]]:
    """(every ready pod confirmed and there is at least one, the pods that have not)."""
    ready = [p for p in pods if p.ready]
    pending = [p.name for p in ready if not p.confirms(desired)]
    if len({p.fingerprint for p in ready if p.confirms(desired)}) > 1:
        pending = [p.name for p in ready]  # same label, different switches: apply again
    return bool(ready) and not pending, pending
