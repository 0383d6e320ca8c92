"""The live switches' contract: what PUT /api/admin/switches takes and what it and
GET answer (app.routers.switches), and the errors an apply raises.

A separate module so the operator's side can read the shapes without the machinery
(app.migration.switches) that applies them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.settings import Backend, Percent, ShadowPercent, StoreMode, StoreName

DEFAULT_DRAIN_TIMEOUT = 5.0
Trusted = Literal["memory", "postgres"]


class StoreSwitches(BaseModel):
    """One store's switches in effect (the environment's names: DUAL_WRITE_MODE,
    READ_FROM_POSTGRES_PERCENT, IN_MEMORY_WRITES, SHADOW_READ_PERCENT, STORE_BACKEND)."""

    dual_write: bool
    read_percent: Percent
    memory_writes: bool
    shadow_read_percent: ShadowPercent
    backend: Backend


class SwitchPatch(BaseModel):
    """Switches to change on one store, or on every store (`all`); a switch left out
    keeps the value in effect."""

    model_config = ConfigDict(extra="forbid")

    dual_write: bool | None = None
    read_percent: Percent | None = None
    memory_writes: bool | None = None
    shadow_read_percent: ShadowPercent | None = None
    backend: Backend | None = None


class SwitchRequest(BaseModel):
    """PUT /api/admin/switches. `all` applies to every store, then `graph` and
    `agent_task` override it for theirs (as GRAPH_STORE_* do over the global env).
    `desired_revision` is the caller's name for this set (e.g. the ConfigMap's
    resourceVersion), echoed back so it can confirm what each process applied."""

    model_config = ConfigDict(extra="forbid")

    desired_revision: str | None = Field(default=None, max_length=200)
    drain_timeout: float = Field(default=DEFAULT_DRAIN_TIMEOUT, gt=0, le=120)
    all: SwitchPatch | None = None
    graph: SwitchPatch | None = None
    agent_task: SwitchPatch | None = None


class StoreRouting(BaseModel):
    """What a store's switches amount to right now."""

    write_target: str
    read_target: str
    read_from_postgres_percent: int
    trusted: Trusted
    rebuilding_memory: bool
    writes_in_flight: int


class SwitchDocument(BaseModel):
    """GET /api/admin/switches. `revision` counts changes of the switches in this
    process (1 as started); `fingerprint` is the same on every process with the same
    switches; `desired_revision` is the one the last successful apply carried."""

    revision: int
    desired_revision: str | None
    fingerprint: str
    applied_at: datetime
    stores: dict[StoreName, StoreSwitches]
    routing: dict[StoreName, StoreRouting]
    memory_held: bool
    """Whether this process holds memory's journal (it does unless every store is
    PostgreSQL-primary): only such a process can trust memory."""
    last_error: str | None


class SwitchStep(BaseModel):
    store: StoreName
    change: Literal["swap", "enter_postgres", "leave_postgres"]
    seconds: float
    writes_held_seconds: float = 0.0
    backfilled: int | None = None
    rehydrated: int | None = None
    mirrored: int | None = None


class SwitchResult(SwitchDocument):
    """PUT /api/admin/switches, answered once the switches took effect."""

    changed: bool
    took_seconds: float
    steps: list[SwitchStep]


class SwitchRejected(ValueError):
    """The set breaks a rule. `errors` has FastAPI's shape; loc names the switch."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors[0]["msg"])
        self.errors = errors


class SwitchFailed(RuntimeError):
    """A valid set that could not take effect; `detail` says which store is where."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


def trusted(mode: StoreMode) -> Trusted:
    return "postgres" if mode.write_target == "postgres" else "memory"


def fingerprint(stores: Mapping[str, Mapping[str, Any]]) -> str:
    """The first 16 hex digits of sha256 over the switches as JSON with sorted keys and
    no spaces: {"agent_task": {...}, "graph": {...}}."""
    text = json.dumps(stores, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
