"""Live switches: each store's migration mode, changed while the process serves.

Why: the mode used to be read once, from the environment, so every step of a migration
restarted the one process that holds memory, an outage each time. The admin endpoint
(app.routers.switches) changes it in place; the environment stays the boot-time source.

How a change lands, store by store:
- The switches asked for are merged over the ones in effect and validated by the rules
  the environment obeys (app.settings.StoreMode): one immutable StoreMode that the
  store's StoreRouting swaps by reference. A request reads the mode once, at its start.
- Within the same trusted store (dual-write on or off, read or shadow percentage) the
  swap is immediate.
- Into PostgreSQL-trusted (memory writes off, or backend postgres): memory is
  backfilled into PostgreSQL first (newer wins), as a start-up in that mode does, so a
  copy that failed under dual-write is not left in memory only. Then new writes wait
  at the store's door while the ones in flight finish, copies included; the mode swaps
  and the door opens. A copy that failed meanwhile is healed by a second backfill.
- Out of PostgreSQL-trusted (the rollback): PostgreSQL stays trusted while memory is
  rebuilt from it (the existing rehydrate), and each write's result is also put into
  memory meanwhile (`mirror_to_memory`, switched on with writes held, so no write
  escapes both the export and the mirror). Then, writes held again, memory's project ids
  move past PostgreSQL's and memory becomes trusted. Memory that this process does not
  hold (every store started PostgreSQL-primary) is opened first; once every store is
  PostgreSQL-primary it is closed again, as it would be in a process started so.
- A record one store refuses to import (a backfill's or a rebuild's `rejected`) would
  live in one store only: the switch refuses, naming the first ids.
A drain that does not finish within `drain_timeout` changes nothing and says which store
and how many writes. Applies run one at a time and to the end even if the caller goes
away; applying what is in effect changes nothing and keeps the revision.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from app.errors import StoreLockedError
from app.migration import telemetry
from app.migration.backfill import CopyReport, backfill
from app.migration.rehydrate import rehydrate
from app.migration.startup import advance_project_ids
from app.migration.switch_models import (
    StoreRouting,
    StoreSwitches,
    SwitchDocument,
    SwitchFailed,
    SwitchRejected,
    SwitchRequest,
    SwitchResult,
    SwitchStep,
    fingerprint,
    trusted,
)
from app.migration.write_door import WriteDoor
from app.settings import STORES, StoreMode, StoreName

log = logging.getLogger("app.migration")


class SwitchedRoute(Protocol):
    """What switching needs of a store's StoreRouting (app.migration.router)."""

    store: str
    mode: StoreMode
    memory: Any
    postgres: Any
    door: WriteDoor
    mirrored: int
    mirror_failures: int
    dual_write_failures: int


class MemoryHolder(Protocol):
    """Memory's durable stores for this process (app.migration.wiring.MemoryHold)."""

    @property
    def held(self) -> bool: ...

    async def hold(self) -> None: ...

    async def release(self) -> None: ...


def _failure(action: str, error: BaseException) -> str:
    return f"{action} failed ({type(error).__name__})"


# ---------------------------------------------------------------------- the board


class SwitchBoard:
    """The switches of every store this process routes, changed one apply at a time."""

    def __init__(
        self, routes: Mapping[StoreName, SwitchedRoute], memory: MemoryHolder | None = None
    ) -> None:
        self.routes = dict(routes)
        self.memory = memory
        self.revision = 1
        self.desired_revision: str | None = None
        self.applied_at = datetime.now(UTC)
        self.last_error: str | None = None
        self._lock = asyncio.Lock()
        for store, route in self.routes.items():
            self._gauges(store, route.mode, route.mode)
        telemetry.switch_revision(self.revision)

    # ------------------------------------------------------------------ reading

    def document(self) -> SwitchDocument:
        modes = {store: route.mode for store, route in self.routes.items()}
        return SwitchDocument(
            revision=self.revision,
            desired_revision=self.desired_revision,
            fingerprint=fingerprint({s: m.switches() for s, m in modes.items()}),
            applied_at=self.applied_at,
            stores={s: StoreSwitches(**m.switches()) for s, m in modes.items()},
            routing={
                s: StoreRouting(
                    write_target=m.write_target,
                    read_target=m.read_target,
                    read_from_postgres_percent=m.effective_read_percent,
                    trusted=trusted(m),
                    rebuilding_memory=m.mirror_to_memory,
                    writes_in_flight=self.routes[s].door.in_flight,
                )
                for s, m in modes.items()
            },
            memory_held=self.memory is None or self.memory.held,
            last_error=self.last_error,
        )

    def summary(self) -> dict[str, Any]:
        """The revision part of the document, for /api/agent/store-status."""
        doc = self.document()
        return {
            "revision": doc.revision,
            "desired_revision": doc.desired_revision,
            "fingerprint": doc.fingerprint,
            "applied_at": doc.applied_at.isoformat(),
            "last_error": doc.last_error,
        }

    def resolve(self, request: SwitchRequest) -> dict[StoreName, StoreMode]:
        """Each store's mode after `request`, validated; SwitchRejected naming the switch."""
        common = request.all.model_dump(exclude_none=True) if request.all else {}
        targets: dict[StoreName, StoreMode] = {}
        errors: list[dict[str, Any]] = []
        for store in STORES:
            route = self.routes.get(store)
            patch = getattr(request, store)
            own = patch.model_dump(exclude_none=True) if patch is not None else {}
            if route is None:
                if own:
                    errors.append({"loc": ["body", store], "type": "value_error",
                                   "msg": f"this process does not route the {store} store"})
                continue
            current = route.mode.model_dump() | {"mirror_to_memory": False}
            try:
                targets[store] = StoreMode.model_validate(current | common | own)
            except ValidationError as e:
                for err in e.errors():
                    field = str((err.get("ctx") or {}).get("field") or err["loc"][-1])
                    where = "all" if field in common and field not in own else store
                    errors.append({"loc": ["body", where, field], "type": err["type"],
                                   "msg": f"{store} store: {err['msg']}"})
        if errors:
            raise SwitchRejected(errors)
        return targets

    # ------------------------------------------------------------------ applying

    async def apply(self, request: SwitchRequest) -> SwitchResult:
        """Apply `request` and answer once it took effect (or SwitchRejected /
        SwitchFailed). The work runs shielded: a caller that goes away does not leave a
        store half switched."""
        task = asyncio.ensure_future(self._apply(request))
        task.add_done_callback(_retrieve)
        return await asyncio.shield(task)

    async def _apply(self, request: SwitchRequest) -> SwitchResult:
        async with self._lock:
            return await self._apply_now(request)

    async def _apply_now(self, request: SwitchRequest) -> SwitchResult:
        started = time.perf_counter()
        targets = self.resolve(request)
        before = {store: route.mode for store, route in self.routes.items()}
        steps: list[SwitchStep] = []
        for store, target in targets.items():
            self._gauges(store, target, self.routes[store].mode)
        try:
            for store, target in targets.items():
                route = self.routes[store]
                if route.mode != target:
                    steps.append(await self._switch(store, route, target, request.drain_timeout))
        except SwitchFailed as e:
            self.last_error = e.detail
            log.warning("live switch failed: %s", e.detail)
            raise
        finally:
            changed = any(route.mode != before[s] for s, route in self.routes.items())
            if changed:
                self.revision += 1
                self.applied_at = datetime.now(UTC)
                telemetry.switch_revision(self.revision)
            for store, route in self.routes.items():
                self._gauges(store, targets.get(store, route.mode), route.mode)
        await self._release_memory()
        self.desired_revision = request.desired_revision
        self.last_error = None
        took = time.perf_counter() - started
        if changed:
            log.info("live switch applied: revision=%d desired_revision=%s took=%.3fs %s",
                     self.revision, request.desired_revision, took,
                     " ".join(f"{s.store}:{s.change}" for s in steps))
        return SwitchResult(**self.document().model_dump(), changed=changed,
                            took_seconds=round(took, 6), steps=steps)

    async def _switch(
        self, store: StoreName, route: SwitchedRoute, target: StoreMode, drain: float
    ) -> SwitchStep:
        started = time.perf_counter()
        current = route.mode
        if trusted(current) == trusted(target):
            route.mode = target
            return SwitchStep(store=store, change="swap", seconds=time.perf_counter() - started)
        if trusted(target) == "postgres":
            step = await self._enter_postgres(store, route, target, drain)
        else:
            step = await self._leave_postgres(store, route, target, drain)
        step.seconds = time.perf_counter() - started
        return step

    @asynccontextmanager
    async def _writes_held(
        self, store: StoreName, route: SwitchedRoute, drain: float, step: SwitchStep
    ) -> AsyncIterator[None]:
        """The block runs with no write in flight on `store` and new ones waiting."""
        started = time.perf_counter()
        in_flight = route.door.in_flight
        try:
            await route.door.close(drain)
        except TimeoutError:
            raise SwitchFailed(
                503,
                f"{store} store: {route.door.in_flight} of {in_flight} writes still in flight "
                f"after the drain timeout ({drain:g}s); its mode is unchanged",
            ) from None
        try:
            yield
        finally:
            route.door.open()
            step.writes_held_seconds += time.perf_counter() - started

    async def _enter_postgres(
        self, store: StoreName, route: SwitchedRoute, target: StoreMode, drain: float
    ) -> SwitchStep:
        step = SwitchStep(store=store, change="enter_postgres", seconds=0.0, backfilled=0)
        copying = route.mode.write_target == "dual"
        failures = route.dual_write_failures
        try:
            report = await self._backfill(store, route)
        except Exception as e:
            raise SwitchFailed(503, f"{store} store: {_failure('backfill', e)} before "
                                    "PostgreSQL is trusted; its mode is unchanged") from None
        _refuse_rejected(store, report, "PostgreSQL refused", "its mode is unchanged")
        step.backfilled = _written(report)
        async with self._writes_held(store, route, drain, step):
            route.mode = target
        if not copying or route.dual_write_failures != failures:
            try:
                report = await self._backfill(store, route)
            except Exception as e:
                raise SwitchFailed(503, f"{store} store: PostgreSQL is trusted now, but the "
                                        f"{_failure('catch-up backfill', e)}: run POST "
                                        "/api/admin/backfill") from None
            _refuse_rejected(store, report, "PostgreSQL is trusted now, but refused",
                             "roll the store back to keep them")
            step.backfilled += _written(report)
        return step

    async def _leave_postgres(
        self, store: StoreName, route: SwitchedRoute, target: StoreMode, drain: float
    ) -> SwitchStep:
        step = SwitchStep(store=store, change="leave_postgres", seconds=0.0)
        if self.memory is not None and not self.memory.held:
            try:
                await self.memory.hold()
            except StoreLockedError:
                raise SwitchFailed(409, f"{store} store: memory's journal is locked by "
                                        "another process, so this one cannot trust memory; "
                                        "its mode is unchanged") from None
        current = route.mode
        failures, mirrored = route.mirror_failures, route.mirrored
        async with self._writes_held(store, route, drain, step):
            route.mode = current.model_copy(update={"mirror_to_memory": True})
        try:
            try:
                report = await self._rehydrate(store, route)
            except Exception as e:
                raise SwitchFailed(503, f"{store} store: {_failure('rebuilding memory', e)}; "
                                        "it stays PostgreSQL-primary") from None
            _refuse_rejected(store, report, "memory refused", "it stays PostgreSQL-primary")
            step.rehydrated = _written(report)
            async with self._writes_held(store, route, drain, step):
                if route.mirror_failures != failures:
                    raise SwitchFailed(503, f"{store} store: "
                                            f"{route.mirror_failures - failures} writes could "
                                            "not be copied to memory while it was rebuilt; "
                                            "it stays PostgreSQL-primary")
                if store == "graph":
                    try:
                        await advance_project_ids(route.memory, route.postgres)
                    except Exception as e:
                        raise SwitchFailed(503, f"{store} store: "
                                                f"{_failure('reading PostgreSQL project ids', e)}"
                                                "; it stays PostgreSQL-primary") from None
                route.mode = target
        except BaseException:
            route.mode = current  # the same trusted store: no drain needed
            raise
        step.mirrored = route.mirrored - mirrored
        return step

    async def _release_memory(self) -> None:
        if self.memory is None or not self.memory.held:
            return
        if any(trusted(route.mode) != "postgres" for route in self.routes.values()):
            return
        try:
            await self.memory.release()
        except Exception as e:  # noqa: BLE001 - the switches took effect; memory stays held
            log.warning("closing memory's journal failed: %s", type(e).__name__)

    async def _backfill(self, store: StoreName, route: SwitchedRoute) -> CopyReport:
        if store == "graph":
            return await backfill(route.memory, None, route.postgres, None)
        return await backfill(None, route.memory, None, route.postgres)

    async def _rehydrate(self, store: StoreName, route: SwitchedRoute) -> CopyReport:
        if store == "graph":
            return await rehydrate(route.postgres, None, route.memory, None)
        return await rehydrate(None, route.postgres, None, route.memory)

    def _gauges(self, store: str, configured: StoreMode, actual: StoreMode) -> None:
        telemetry.switches_configured(store, configured.effective_read_percent,
                                      configured.dual_write, configured.memory_writes)
        telemetry.switches_actual(store, actual.effective_read_percent, actual.dual_write,
                                  actual.memory_writes)


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Mark a finished apply's exception as seen (its caller may have gone away)."""
    if not task.cancelled():
        task.exception()


def _refuse_rejected(store: str, report: CopyReport, what: str, outcome: str) -> None:
    if report.rejected:
        count = sum(len(ids) for ids in report.rejected.values())
        first = [f"{kind}:{i}" for kind, ids in report.rejected.items() for i in ids][:5]
        raise SwitchFailed(409, f"{store} store: {what} {count} records (first: "
                                f"{', '.join(first)}), which would be in one store only; "
                                f"{outcome}")


def _written(report: CopyReport) -> int:
    return sum(report.written.values())
