"""The env contract with the API: which variables each phase sets, under which names.

A migration of both stores uses the global names; a migration of one store uses that store's
prefixed names, so the two stores can move on their own. The operator owns exactly these
names and never touches any other variable in the container.
"""

from __future__ import annotations

from collections.abc import Mapping

from .spec import STORES, Phase

FLAGS = ("DUAL_WRITE_MODE", "READ_FROM_POSTGRES_PERCENT", "IN_MEMORY_WRITES",
         "REHYDRATE_ON_START")
# The API reads these under their global name only, whichever stores move.
GLOBAL_ONLY = ("REHYDRATE_ON_START",)
BACKEND = "STORE_BACKEND"
_STORE_BACKEND_SUFFIX = "BACKEND"


def env_names(stores: tuple[str, ...]) -> dict[str, list[str]]:
    """Logical flag -> the env names that carry it for these stores."""
    if set(stores) == set(STORES):
        return {flag: [flag] for flag in (*FLAGS, BACKEND)}
    names: dict[str, list[str]] = {flag: [] for flag in (*FLAGS, BACKEND)}
    for store in stores:
        prefix = f"{store.upper()}_STORE_"
        for flag in FLAGS:
            if flag not in GLOBAL_ONLY:
                names[flag].append(prefix + flag)
    for flag in GLOBAL_ONLY:
        names[flag] = [flag]
        names[BACKEND].append(prefix + _STORE_BACKEND_SUFFIX)
    return names


def owned_names(stores: tuple[str, ...]) -> list[str]:
    return [n for names in env_names(stores).values() for n in names]


def desired_env(phase: Phase, read_percent: int, stores: tuple[str, ...],
                rehydrate: bool = False) -> tuple[dict[str, str], list[str]]:
    """(names to set with values, names that must be absent) for a phase.

    `rehydrate` is the rollback from PostgresPrimary: one env change turns memory writes back
    on, keeps every read on PostgreSQL and sets REHYDRATE_ON_START, so the new pod rebuilds
    memory from PostgreSQL before it serves (under the Recreate strategy the phase-3 pod is
    already gone, so there is no window). Once that pod runs, reads return to memory and
    REHYDRATE_ON_START is removed (an owned name no phase sets)."""
    logical: dict[str, str]
    absent: list[str] = []
    if phase == Phase.Preparation:
        logical = {"DUAL_WRITE_MODE": "false", "READ_FROM_POSTGRES_PERCENT": "0"}
    elif phase == Phase.DualWrite:
        logical = {"DUAL_WRITE_MODE": "true", "READ_FROM_POSTGRES_PERCENT": "0",
                   "IN_MEMORY_WRITES": "true"}
    elif phase == Phase.ReadSwitchover and rehydrate:
        logical = {"DUAL_WRITE_MODE": "true", "READ_FROM_POSTGRES_PERCENT": "100",
                   "IN_MEMORY_WRITES": "true", "REHYDRATE_ON_START": "true"}
    elif phase == Phase.ReadSwitchover:
        logical = {"DUAL_WRITE_MODE": "true", "READ_FROM_POSTGRES_PERCENT": str(read_percent),
                   "IN_MEMORY_WRITES": "true"}
    elif phase == Phase.PostgresPrimary:
        logical = {"DUAL_WRITE_MODE": "true", "READ_FROM_POSTGRES_PERCENT": "100",
                   "IN_MEMORY_WRITES": "false"}
    else:
        logical = {BACKEND: "postgres"}
        absent = list(FLAGS)
    names = env_names(stores)
    to_set = {name: value for flag, value in logical.items() for name in names[flag]}
    to_remove = [name for flag in absent for name in names[flag]]
    return to_set, to_remove


def env_diff(current: Mapping[str, str | None], to_set: Mapping[str, str],
             to_remove: list[str]) -> tuple[dict[str, str], list[str]]:
    """Only what differs from the container's current env."""
    changes = {k: v for k, v in to_set.items() if current.get(k) != v}
    removals = [k for k in to_remove if k in current]
    return changes, removals
