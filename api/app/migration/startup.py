"""What the service reconciles between memory and PostgreSQL before it serves a request.

A dual-write copy can fail (a timeout, a blip, a request cancelled by the graceful
shutdown of an env-patch restart) and nothing repairs it one by one; a sampled verify
can pass with such a record missing. So whenever a store starts with PostgreSQL
trusted, memory's journal (if there is one) is backfilled into PostgreSQL first
(newer-wins, idempotent, total_cost only through the trigger). The Deployment uses the
Recreate strategy while memory is written, so no dual-writing process runs meanwhile.

The other way round, a rollback from PostgreSQL-primary restarts with
REHYDRATE_ON_START=true: memory is rebuilt from PostgreSQL (the old primary is gone,
so PostgreSQL is complete) before memory is trusted again. Whenever memory is trusted
and PostgreSQL is connected, memory's project-id counter is moved past PostgreSQL's
highest id, so a project PostgreSQL created is never given the same id again.

When every store is PostgreSQL-primary the service scales out, so memory's journal,
which one process locks, is opened only briefly: for the start-up backfill (waiting a
bounded time if another pod holds it, which is then doing the same backfill) and on
demand by the admin endpoints (`MemoryOpener`). Opening memory is the memory backend's
job (app.stores.memory.durable.DurableMemory); this module is handed that opener, so it
knows the stores only through their ports.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

from app.errors import StartupRefused, StoreLockedError
from app.migration.backfill import CopyReport, backfill
from app.migration.rehydrate import rehydrate
from app.settings import Settings
from app.stores.ports import GraphBackend, TaskBackend

log = logging.getLogger("app.migration")

LOCK_WAIT_SECONDS = 30.0
LOCK_POLL_SECONDS = 0.5


class OpenGraph(GraphBackend, Protocol):
    async def close(self) -> None: ...


class OpenTasks(TaskBackend, Protocol):
    async def close(self) -> None: ...


class MemorySource(Protocol):
    """Memory's durable stores as the migration sees them (DurableMemory)."""

    def journals_exist(self) -> dict[str, bool]: ...

    def volatile(self) -> tuple[GraphBackend, TaskBackend]:
        """Empty stores with no journal: the memory face while memory is not held."""
        ...

    async def open(self) -> tuple[OpenGraph, OpenTasks]:
        """Both stores, opened; StoreLockedError if another process holds a journal."""
        ...


def _summary(report: CopyReport) -> str:
    return " ".join(
        f"{kind}={n}/{n + report.skipped.get(kind, 0)}" for kind, n in report.written.items()
    ) or "nothing"


def _where(settings: Settings, write_target: str, graph: Any, tasks: Any) -> tuple[Any, Any]:
    """(graph, tasks), each kept only if its store's mode has this write target."""
    return (
        graph if settings.store_mode("graph").write_target == write_target else None,
        tasks if settings.store_mode("agent_task").write_target == write_target else None,
    )


async def backfill_trusted(
    settings: Settings, memory_graph: Any, memory_tasks: Any, pg_graph: Any, pg_tasks: Any
) -> CopyReport | None:
    """Memory -> PostgreSQL for each store whose mode trusts PostgreSQL (None if none)."""
    graph, tasks = _where(settings, "postgres", memory_graph, memory_tasks)
    if graph is None and tasks is None:
        return None
    try:
        report = await backfill(graph, tasks, pg_graph if graph else None,
                                pg_tasks if tasks else None)
    except Exception as e:
        raise StartupRefused(
            f"start-up backfill of memory's journal into PostgreSQL failed "
            f"({type(e).__name__}); refusing to serve PostgreSQL-only without it"
        ) from None
    log.info("start-up backfill memory -> PostgreSQL (written/offered per kind): %s",
             _summary(report))
    if report.rejected:
        listed = report.as_dict()
        raise StartupRefused(
            f"start-up backfill: PostgreSQL refused {listed['rejected_total']} of memory's "
            f"records {listed['rejected_ids']}; refusing to serve PostgreSQL-only without "
            "them (they would vanish from every read): remove the cause PostgreSQL names "
            "in the log, or roll back to a phase that trusts memory"
        )
    return report


async def rehydrate_trusted(
    settings: Settings, memory_graph: Any, memory_tasks: Any, pg_graph: Any, pg_tasks: Any
) -> CopyReport | None:
    """PostgreSQL -> memory for each store memory trusts under dual-write, when
    REHYDRATE_ON_START is set (the rollback from PostgreSQL-primary)."""
    if not settings.rehydrate_on_start:
        return None
    graph, tasks = _where(settings, "dual", memory_graph, memory_tasks)
    if graph is None and tasks is None:
        return None
    try:
        report = await rehydrate(pg_graph if graph else None, pg_tasks if tasks else None,
                                 graph, tasks)
    except Exception as e:
        raise StartupRefused(
            f"REHYDRATE_ON_START: rebuilding memory from PostgreSQL failed "
            f"({type(e).__name__}); refusing to trust memory without it"
        ) from None
    log.info("start-up rehydrate PostgreSQL -> memory (written/offered per kind): %s",
             _summary(report))
    return report


async def advance_project_ids(memory_graph: Any, pg_graph: Any) -> int:
    """Move memory's project-id counter past PostgreSQL's highest id; returns that id."""
    highest = int(await pg_graph.max_project_id())
    await memory_graph.advance_project_ids(highest)
    return highest


async def reconcile(
    settings: Settings,
    memory_graph: Any,
    memory_tasks: Any,
    pg_graph: Any,
    pg_tasks: Any,
    *,
    connected: bool,
) -> None:
    """Start-up with memory open: backfill PostgreSQL-trusted stores, rehydrate on a
    rollback, and keep memory's project ids clear of PostgreSQL's."""
    if not connected:
        return
    await backfill_trusted(settings, memory_graph, memory_tasks, pg_graph, pg_tasks)
    await rehydrate_trusted(settings, memory_graph, memory_tasks, pg_graph, pg_tasks)
    if settings.store_mode("graph").write_target != "postgres":
        try:
            highest = await advance_project_ids(memory_graph, pg_graph)
        except Exception as e:
            if settings.rehydrate_on_start:
                raise StartupRefused(
                    f"reading PostgreSQL's highest project id failed ({type(e).__name__})"
                ) from None
            log.warning("could not read PostgreSQL's project ids: %s", type(e).__name__)
        else:
            log.info("memory assigns project ids above %d (PostgreSQL's highest)", highest)


class MemoryOpener:
    """Opens memory's durable stores for a moment (start-up backfill, admin calls) when
    the service otherwise runs without them, releasing the journal's lock after."""

    def __init__(self, settings: Settings, memory: MemorySource) -> None:
        self.settings = settings
        self.memory = memory
        self._in_use = asyncio.Lock()

    async def open_held(self) -> tuple[OpenGraph, OpenTasks]:
        """Both memory stores, opened for good (the caller closes them): a live rollback
        to a phase that trusts memory makes this process hold memory again."""
        async with self._in_use:
            return await self.memory.open()

    @asynccontextmanager
    async def open(self, wait: float = 0.0) -> AsyncIterator[tuple[OpenGraph, OpenTasks]]:
        """Both memory stores, open for the block; StoreLockedError if another process
        still holds the journal after `wait` seconds."""
        async with self._in_use:
            deadline = time.monotonic() + wait
            while True:
                try:
                    graph, tasks = await self.memory.open()
                    break
                except StoreLockedError:
                    if time.monotonic() >= deadline:
                        raise
                    await asyncio.sleep(LOCK_POLL_SECONDS)
            try:
                yield graph, tasks
            finally:
                await tasks.close()
                await graph.close()

    async def backfill_at_start(self, pg_graph: Any, pg_tasks: Any) -> CopyReport | None:
        """The start-up backfill when every store is PostgreSQL-primary: only if a
        journal exists; skipped with a warning if another pod keeps it locked."""
        if not any(self.memory.journals_exist().values()):
            log.info("no memory journal in %s: nothing to backfill", self.settings.data_dir)
            return None
        try:
            async with self.open(wait=LOCK_WAIT_SECONDS) as (graph, tasks):
                return await backfill_trusted(self.settings, graph, tasks, pg_graph, pg_tasks)
        except StoreLockedError:
            log.warning(
                "memory's journal stayed locked by another process for %.0fs: skipping the "
                "start-up backfill (the process holding it runs the same backfill)",
                LOCK_WAIT_SECONDS,
            )
            return None
