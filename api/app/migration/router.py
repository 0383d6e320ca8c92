"""The routing machinery shared by the graph and agent-task migration routers.

One `StoreRouting` per store decides, from the store's `StoreMode`, which backend answers each
call, and keeps the rules that protect the data while two stores hold it:
- the trusted store answers a write; the other receives the resulting record through
  its replica face (an upsert of the new state, never a replay of the command), under
  its own timeout; a failure there is logged without credentials, counted, never
  fails the request, and puts the record on the copy-retry queue
  (app.migration.copy_retry);
- a read routed to PostgreSQL that fails falls back to memory; a PostgreSQL miss for a
  record memory holds is served from memory and counted as a mismatch, so a rollout
  never answers a wrong 404;
- a sample of reads is compared against the other store in the background (shadow
  reads), with bounded concurrency, so consistency is measured continuously;
- a comparison (or a PostgreSQL miss) that overlapped a write on the same store is
  counted "skipped", not "mismatch": the two stores legitimately differ for the length
  of a write and its copy, and a busy store would otherwise look inconsistent.
The mode can change while the process serves (app.migration.switches): each call reads
`mode` once, at its start, and finishes under it; a change of the trusted store first
holds new writes at the door and waits for the ones in flight (`WriteDoor`).
The store-specific classes built on it are in graph_router.py and task_router.py.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from app.errors import NotFoundError, StoreError
from app.migration import telemetry
from app.migration.copy_retry import NO_RETRY, CopyTracker
from app.migration.write_door import WriteDoor
from app.settings import StoreMode

log = logging.getLogger("app.migration")

S = TypeVar("S")
T = TypeVar("T")


def safe_reason(error: BaseException) -> str:
    """A description of `error` that cannot carry a DSN: the class name, plus the
    detail of our own StoreErrors (which adapters build to be client-safe)."""
    if isinstance(error, TimeoutError):
        return "TimeoutError: timed out"
    if isinstance(error, StoreError):
        return f"{type(error).__name__}: {error.detail}"
    return type(error).__name__


def comparable(value: Any) -> Any:
    """A plain structure to compare answers by value (Decimal and datetime compare by
    value, so 1.5 == 1.50 and the same instant in two offsets are equal)."""
    if isinstance(value, BaseModel):
        return comparable(value.model_dump())
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [comparable(v) for v in value]
    return value


def is_none(value: object) -> bool:
    return value is None


class StoreRouting(Generic[S]):
    """Routing for one store. `memory` and `postgres` are full backends (store plus
    replica); `postgres` is None when no database is configured."""

    def __init__(
        self,
        store: str,
        mode: StoreMode,
        memory: S,
        postgres: S | None,
        *,
        second_write_timeout: float = 0.5,
        shadow_read_percent: float | None = None,
        rng: random.Random | None = None,
        shadow_concurrency: int = 4,
    ) -> None:
        if postgres is None and mode.write_target != "in-memory":
            raise ValueError(f"{store} store: mode {mode.write_target!r} needs a PostgreSQL store")
        if shadow_read_percent is not None:
            mode = mode.model_copy(update={"shadow_read_percent": shadow_read_percent})
        self.store = store
        self.mode = mode
        self.memory = memory
        self.postgres = postgres
        self.second_write_timeout = second_write_timeout
        self.rng = rng or random.Random()
        self._shadow_slots = shadow_concurrency
        self._shadow_tasks: set[asyncio.Task[None]] = set()
        self.served = {"memory": 0, "postgres": 0}
        self.fallbacks = 0
        self.dual_write_failures = 0
        self.shadow = {"match": 0, "mismatch": 0, "error": 0, "skipped": 0}
        self._write_seq = 0
        self.door = WriteDoor()
        self.mirrored = 0
        self.mirror_failures = 0
        self.copies: CopyTracker = NO_RETRY
        """Where failed copies go (app.migration.copy_retry); wiring sets the queue."""
        telemetry.read_percent_configured(store, float(mode.effective_read_percent))

    # ------------------------------------------------------------------ writes

    def writer(self, mode: StoreMode | None = None) -> S:
        """The store that answers writes (the trusted one). It cannot change while a
        write is in flight: a change of the trusted store waits for those to end."""
        if (mode or self.mode).write_target == "postgres":
            assert self.postgres is not None
            return self.postgres
        return self.memory

    async def write(
        self,
        operation: str,
        call: Callable[[S], Awaitable[T]],
        copy: Callable[[S, T], Awaitable[None]],
    ) -> T:
        await self.door.enter()
        mode = self.mode
        self._write_seq += 1
        try:
            with self.copies.track() as pending:  # a copy that does not land is retried
                result = await call(self.writer(mode))
                if mode.write_target == "dual":
                    pending.result = result
                    pending.landed = await self.copy(operation, lambda pg: copy(pg, result))
                elif mode.mirror_to_memory:
                    await self._mirror(operation, lambda memory: copy(memory, result))
            return result
        finally:
            self.door.leave()
            self._write_seq += 1

    async def _mirror(self, operation: str, put: Callable[[S], Awaitable[None]]) -> None:
        """Put a PostgreSQL write's result into memory while memory is rebuilt; a
        failure is counted (the rollback then refuses to trust memory) and not raised."""
        try:
            await put(self.memory)
            self.mirrored += 1
        except asyncio.CancelledError:
            self.mirror_failures += 1
            raise
        except Exception as e:  # noqa: BLE001 - counted; the switch checks the count
            self.mirror_failures += 1
            log.warning("copy to memory during its rebuild failed: store=%s operation=%s "
                        "reason=%s", self.store, operation, safe_reason(e))

    def _window(self) -> tuple[int, int]:
        """Where the writes stand now; pass it to `_quiet_since` later."""
        return self._write_seq, self.door.in_flight

    def _quiet_since(self, window: tuple[int, int]) -> bool:
        """No write on this store was running at `window` or has started or ended since."""
        seq, in_flight = window
        return in_flight == 0 and self._write_seq == seq

    async def copy(self, operation: str, put: Callable[[S], Awaitable[None]]) -> bool:
        """Copy a record to PostgreSQL under the second-write timeout; True if it landed.
        Never raises, except a cancellation."""
        assert self.postgres is not None
        try:
            async with (
                telemetry.postgres_copy(self.store, operation),
                asyncio.timeout(self.second_write_timeout),
            ):
                await put(self.postgres)
        except asyncio.CancelledError:
            self._copy_failed(operation, "cancelled (request or server shutting down)")
            raise
        except Exception as e:  # noqa: BLE001 - any failure of the copy is counted, not raised
            self._copy_failed(operation, safe_reason(e))
            return False
        return True

    def _copy_failed(self, operation: str, reason: str) -> None:
        self.dual_write_failures += 1
        telemetry.dual_write_failure(self.store, operation)
        log.warning(
            "dual write to postgres failed: store=%s operation=%s reason=%s",
            self.store,
            operation,
            reason,
        )

    # ------------------------------------------------------------------ reads

    def _postgres_turn(self, mode: StoreMode) -> bool:
        pct = mode.effective_read_percent
        if self.postgres is None or pct <= 0:
            return False
        return pct >= 100 or self.rng.random() * 100 < pct

    def _served(self, backend: str) -> None:
        self.served[backend] += 1
        telemetry.read_served(self.store, backend)

    async def read(
        self,
        operation: str,
        call: Callable[[S], Awaitable[T]],
        missing: Callable[[T], bool] | None = None,
    ) -> T:
        """Answer a read from the backend the mode picks. `missing` tells a miss (None);
        a NotFoundError from PostgreSQL is a miss as well."""
        mode = self.mode
        if mode.write_target == "postgres":
            assert self.postgres is not None
            self._served("postgres")
            return await call(self.postgres)
        window = self._window()
        if not self._postgres_turn(mode):
            result = await call(self.memory)
            self._served("memory")
            self._maybe_shadow(mode, operation, call, result, self.postgres, window)
            return result
        assert self.postgres is not None
        try:
            result = await call(self.postgres)
        except NotFoundError:
            return await self._after_miss(operation, call, window)
        except Exception as e:  # noqa: BLE001 - any PostgreSQL read failure falls back
            self.fallbacks += 1
            telemetry.read_fallback(self.store)
            log.warning(
                "postgres read failed, served from memory: store=%s operation=%s reason=%s",
                self.store,
                operation,
                safe_reason(e),
            )
            result = await call(self.memory)
            self._served("memory")
            return result
        if missing is not None and missing(result):
            return await self._after_miss(operation, call, window)
        self._served("postgres")
        self._maybe_shadow(mode, operation, call, result, self.memory, window)
        return result

    async def _after_miss(
        self, operation: str, call: Callable[[S], Awaitable[T]], window: tuple[int, int]
    ) -> T:
        """PostgreSQL does not hold the record: memory (trusted) decides. Its answer,
        or its NotFoundError, is what the client gets. A miss that overlapped a write
        (the record may be between its two writes) is counted "skipped"."""
        try:
            result = await call(self.memory)
        except NotFoundError:
            self._served("memory")
            raise
        if result is None:
            self._served("memory")
            return result
        self._served("memory")
        if not self._quiet_since(window):
            self.shadow["skipped"] += 1
            telemetry.shadow_read(self.store, "skipped")
            return result
        self.shadow["mismatch"] += 1
        telemetry.shadow_read(self.store, "mismatch")
        log.warning(
            "postgres missed a record memory holds, served from memory: store=%s operation=%s",
            self.store,
            operation,
        )
        return result

    # ------------------------------------------------------------------ shadow reads

    def _maybe_shadow(
        self,
        mode: StoreMode,
        operation: str,
        call: Callable[[S], Awaitable[T]],
        result: T,
        compare_with: S | None,
        window: tuple[int, int],
    ) -> None:
        percent = mode.effective_shadow_percent
        if compare_with is None or percent <= 0:
            return
        if self.rng.random() * 100 >= percent:
            return
        if len(self._shadow_tasks) >= self._shadow_slots:
            return
        task = asyncio.create_task(self._shadow(operation, call, result, compare_with, window))
        self._shadow_tasks.add(task)
        task.add_done_callback(self._shadow_tasks.discard)

    async def _shadow(
        self,
        operation: str,
        call: Callable[[S], Awaitable[T]],
        served: T,
        other: S,
        window: tuple[int, int],
    ) -> None:
        try:
            async with asyncio.timeout(max(self.second_write_timeout, 1.0)):
                theirs = await call(other)
        except NotFoundError:
            theirs = None
        except Exception as e:  # noqa: BLE001 - a failed comparison is counted, not raised
            outcome = "error"
            log.info("shadow read failed: store=%s operation=%s reason=%s",
                     self.store, operation, safe_reason(e))
        else:
            outcome = "match" if comparable(theirs) == comparable(served) else "mismatch"
            if outcome == "mismatch" and not self._quiet_since(window):
                outcome = "skipped"
        if outcome == "mismatch":
            log.info("shadow read mismatch: store=%s operation=%s", self.store, operation)
        self.shadow[outcome] += 1
        telemetry.shadow_read(self.store, outcome)

    async def drain(self) -> None:
        """Wait for the shadow reads in flight (tests, shutdown)."""
        while self._shadow_tasks:
            await asyncio.gather(*list(self._shadow_tasks), return_exceptions=True)

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        total = self.served["memory"] + self.served["postgres"]
        mode = self.mode
        return {
            "write_target": mode.write_target,
            "read_target": mode.read_target,
            "read_from_postgres_percent": mode.effective_read_percent,
            "dual_write_enabled": mode.write_target == "dual",
            "switches": mode.switches(),
            "rebuilding_memory": mode.mirror_to_memory,
            "writes_in_flight": self.door.in_flight,
            "reads_served": {
                "memory": self.served["memory"],
                "postgres": self.served["postgres"],
                "postgres_fraction": round(self.served["postgres"] / total, 4) if total else None,
            },
            "read_fallbacks": self.fallbacks,
            "dual_write_failures": self.dual_write_failures,
            "copy_retry": self.copies.status(),
            "shadow_reads": dict(self.shadow),
        }


class RoutedStore(Generic[S]):
    """What both store routers share: one StoreRouting over (memory, PostgreSQL) for `STORE`."""

    STORE = ""

    def __init__(
        self,
        memory: S,
        postgres: S | None,
        mode: StoreMode,
        *,
        second_write_timeout: float = 0.5,
        shadow_read_percent: float | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.route: StoreRouting[S] = StoreRouting(
            self.STORE,
            mode,
            memory,
            postgres,
            second_write_timeout=second_write_timeout,
            shadow_read_percent=shadow_read_percent,
            rng=rng,
        )

    def store_status(self) -> dict[str, Any]:
        return self.route.status()

    async def drain(self) -> None:
        await self.route.drain()
