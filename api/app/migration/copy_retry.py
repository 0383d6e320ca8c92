"""Failed dual-write copies, copied again until they land.

Why: a copy to PostgreSQL that fails or times out (a blip, a stall, a request cancelled
at shutdown) leaves PostgreSQL without the record, or with an older version of it, and
nothing else repairs that before the next backfill, days later in a slow rollout.
Ghostferry keeps such a re-verify queue; this is ours. The router's write (see
app.migration.router.StoreRouting.write) runs inside `track()`: when its copy does
not land, the record's key goes on this store's queue, once however often it fails. A
background task reads the trusted store's CURRENT record for each key and copies it
with the replica face (newer-wins upserts; a contribution's contributor and asset
first, a dependency's source project first, as the router's own copies do), backing
off while PostgreSQL keeps failing, until it lands. Racing a newer write is harmless
(newer wins); a key that failed again while its retry ran stays queued.

It survives a restart (app.migration.copy_retry_file): the keys are appended to a
durable list, and once a second a checkpoint T says "every write that started before
T has landed or is listed". After a crash (no clean-close marker) every record the
trusted store's journal holds that changed since T is queued again, so a failure that
was never written down, or a copy in flight at the kill, is not forgotten either.

A record PostgreSQL refuses (a 4xx StoreError) is kept and retried once a minute, and
named in store-status: it is not dropped, and verify reports it as well.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

from app.errors import StoreError
from app.migration import copy_retry_file as durable
from app.migration import telemetry
from app.migration.consistency import GRAPH_KINDS, changed_at
from app.models import AgentTask, Asset, Contribution, Contributor, Dependency, Project

log = logging.getLogger("app.migration")

Key = durable.Key
FIRST_DELAY = 0.25
MAX_BACKOFF = 5.0
REFUSED_BACKOFF = 60.0
CHECKPOINT_SECONDS = 1.0
CONCURRENCY = 4
CLOCK_SLACK = 1.0
COMPACT_LINES = 10_000
LISTED = 20


def key_of(record: Any) -> Key:
    """The queue key of a record the router's write produced (kinds as in verify)."""
    if isinstance(record, Project):
        return ("projects", record.ecosystem, record.name)
    if isinstance(record, Dependency):
        return ("dependencies", record.from_ecosystem, record.from_name, record.to_ecosystem,
                record.to_name)
    for kind, model in (("contributors", Contributor), ("assets", Asset),
                        ("contributions", Contribution), ("tasks", AgentTask)):
        if isinstance(record, model):
            return (kind, str(record.id))
    raise TypeError(f"no copy-retry key for {type(record).__name__}")


class Pending:
    """One write, as `track()` sees it: StoreRouting.write sets `result` once the trusted
    store answered and `landed` once the copy did."""

    __slots__ = ("queue", "started", "result", "landed")

    def __init__(self, queue: CopyRetryQueue | None) -> None:
        self.queue = queue
        self.started = 0.0
        self.result: Any = None
        self.landed = False

    def __enter__(self) -> Pending:
        if self.queue is not None:
            self.started = time.time()
            self.queue._in_flight[id(self)] = self.started
        return self

    def __exit__(self, *exc: object) -> None:
        queue = self.queue
        if queue is not None:
            if self.result is not None and not self.landed:
                queue.add(self.result)
            del queue._in_flight[id(self)]


class CopyTracker(Protocol):
    def track(self) -> Pending: ...

    def status(self) -> dict[str, Any]: ...


class NoRetry:
    """A route without a queue (no PostgreSQL copy, or a test's bare router)."""

    def track(self) -> Pending:
        return Pending(None)

    def status(self) -> dict[str, Any]:
        return {"enabled": False, "queue_depth": 0}


NO_RETRY = NoRetry()


@dataclass
class Entry:
    record: dict[str, Any] | None = None
    generation: int = 0
    attempts: int = 0
    due: float = 0.0
    since: float = 0.0
    refused: str | None = None


class CopyRetryQueue:
    """The retry queue of one store: `stores()` gives (trusted, replica) as they are now
    (the live switches may replace memory's store), the trusted one answering reads of the
    current record and the replica taking the copies; `active()` says whether the store
    is dual-writing now."""

    def __init__(self, store: str, stores: Callable[[], tuple[Any, Any]], *,
                 active: Callable[[], bool], directory: Path | None = None,
                 copy_timeout: float = 2.0) -> None:
        self.store, self.stores = store, stores
        self.active = active
        self.path = directory / f"{store}.jsonl" if directory is not None else None
        self.copy_timeout = copy_timeout
        self.entries: dict[Key, Entry] = {}
        self._in_flight: dict[int, float] = {}
        self._unflushed: list[str] = []
        self._lines = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._backoff = FIRST_DELAY
        self._paused_until = 0.0
        self.peak = 0
        self.landed = 0
        self.failed = 0
        self.recovered = 0

    @property
    def trusted(self) -> Any:
        return self.stores()[0]

    @property
    def replica(self) -> Any:
        return self.stores()[1]

    # ------------------------------------------------------------------ the router's side

    def track(self) -> Pending:
        return Pending(self)

    def add(self, record: Any) -> None:
        key = key_of(record)
        payload = record.model_dump(mode="json") if key[0] == "dependencies" else None
        self._put(key, payload, FIRST_DELAY)
        self._unflushed.append(durable.add_line(key, payload))
        self._wake.set()

    def _put(self, key: Key, payload: dict[str, Any] | None, delay: float) -> None:
        now = time.monotonic()
        entry = self.entries.get(key)
        if entry is None:
            entry = self.entries[key] = Entry(record=payload, since=now)
        entry.generation += 1
        entry.due = min(entry.due, now + delay) if entry.attempts else now + delay
        self._depth_changed()

    def _depth_changed(self) -> None:
        self.peak = max(self.peak, len(self.entries))
        telemetry.copy_retry_depth(self.store, len(self.entries))

    # ------------------------------------------------------------------ start and stop

    async def open(self) -> None:
        """Load the durable list; after a crash, queue what changed since the last
        checkpoint; then start the background task."""
        if self.path is not None:
            state = await asyncio.to_thread(durable.load, self.path)
            if state is not None:
                for key, payload in state.pending.items():
                    self._put(key, payload, 0.0)
                if not state.closed and state.checkpoint is not None:
                    self.recovered = await self._requeue_changed_since(
                        state.checkpoint - CLOCK_SLACK)
                    log.warning("copy-retry %s: unclean stop, %d records changed since the "
                                "last checkpoint queued again", self.store, self.recovered)
            await self._rewrite(time.time())
        if self.entries:
            log.info("copy-retry %s: %d records to copy again", self.store, len(self.entries))
        self._task = asyncio.create_task(self._run(), name=f"copy-retry-{self.store}")

    async def _requeue_changed_since(self, since: float) -> int:
        cutoff = datetime.fromtimestamp(since, UTC)
        if self.store == "graph":
            graph = await self.trusted.export_graph()
            records = [r for kind in GRAPH_KINDS for r in getattr(graph, kind)]
        else:
            records = list(await self.trusted.export_tasks())
        count = 0
        for record in records:
            stamp = changed_at(record)
            if stamp is not None and stamp >= cutoff:
                key = key_of(record)
                payload = record.model_dump(mode="json") if key[0] == "dependencies" else None
                self._put(key, payload, 0.0)
                count += 1
        return count

    async def close(self) -> None:
        """Stop the task and persist what is pending; a clean-close marker only when no
        write is in flight (otherwise the next start treats it as a crash)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.path is not None:
            await self._rewrite(self._watermark(time.time()), closed=not self._in_flight)

    # ------------------------------------------------------------------ the background task

    async def _run(self) -> None:
        next_checkpoint = time.monotonic() + CHECKPOINT_SECONDS
        while True:
            now = time.monotonic()
            try:
                if self.entries and self.active() and now >= self._paused_until:
                    await self._pass()
                if self.path is not None and time.monotonic() >= next_checkpoint:
                    next_checkpoint = time.monotonic() + CHECKPOINT_SECONDS
                    await self._checkpoint()
            except Exception as e:  # noqa: BLE001 - the queue must outlive a bad moment
                log.error("copy-retry %s: %s; trying again in a second", self.store,
                          type(e).__name__)
                self._paused_until = time.monotonic() + CHECKPOINT_SECONDS
            self._wake.clear()
            wait = self._next_wait(next_checkpoint)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            except TimeoutError:
                pass

    def _next_wait(self, next_checkpoint: float) -> float:
        now = time.monotonic()
        wake = next_checkpoint if self.path is not None else now + CHECKPOINT_SECONDS
        if self.entries:
            soonest = max(min(e.due for e in self.entries.values()), self._paused_until)
            wake = min(wake, soonest)
        return max(0.01, wake - now)

    async def _pass(self) -> None:
        now = time.monotonic()
        due = [k for k, e in self.entries.items() if e.due <= now]
        for start in range(0, len(due), CONCURRENCY):
            batch = due[start:start + CONCURRENCY]
            results = await asyncio.gather(*(self._retry(k) for k in batch))
            if not all(results):
                self._paused_until = time.monotonic() + self._backoff
                self._backoff = min(self._backoff * 2, MAX_BACKOFF)
                return
        self._backoff = FIRST_DELAY

    async def _retry(self, key: Key) -> bool:
        """One copy of `key`; False when PostgreSQL failed (back off), True otherwise."""
        entry = self.entries.get(key)
        if entry is None:
            return True
        generation = entry.generation
        entry.attempts += 1
        try:
            async with asyncio.timeout(self.copy_timeout):
                found = await self._copy(key, entry)
        except StoreError as e:
            if e.status_code >= 500:
                return self._failed(key, entry)
            entry.refused = e.detail
            entry.due = time.monotonic() + REFUSED_BACKOFF
            telemetry.copy_retried(self.store, "refused")
            log.warning("copy-retry %s: PostgreSQL refuses %s: %s", self.store,
                        "/".join(key), e.detail)
            return True
        except Exception:  # noqa: BLE001 - any other failure of the copy: retried later
            return self._failed(key, entry)
        if entry.generation == generation:
            del self.entries[key]
            self._unflushed.append(durable.done_line(key))
            self._depth_changed()
        if found:
            self.landed += 1
            telemetry.copy_retried(self.store, "landed")
        return True

    def _failed(self, key: Key, entry: Entry) -> bool:
        self.failed += 1
        telemetry.copy_retried(self.store, "failed")
        entry.due = time.monotonic() + min(FIRST_DELAY * 2 ** min(entry.attempts, 8), MAX_BACKOFF)
        return False

    async def _copy(self, key: Key, entry: Entry) -> bool:
        """Copy the trusted store's current record for `key`; False if it has none."""
        kind, *ident = key
        src, dst = self.trusted, self.replica
        if kind == "tasks":
            task = await src.get_task(ident[0])
            if task is not None:
                await dst.put_task(task)
            return task is not None
        if kind == "projects":
            project = await src.get_project(*ident)
            if project is not None:
                await dst.put_project(project)
            return project is not None
        if kind == "dependencies":
            source = await src.get_project(ident[0], ident[1])
            if source is not None:
                await dst.put_project(source)
            await dst.put_dependency(Dependency.model_validate(entry.record))
            return True
        if kind == "contributors":
            contributor = await src.get_contributor(UUID(ident[0]))
            if contributor is not None:
                await dst.put_contributor(contributor)
            return contributor is not None
        if kind == "assets":
            asset = await src.get_asset(UUID(ident[0]))
            if asset is not None:
                await dst.put_asset(asset)
            return asset is not None
        contribution = await src.get_contribution(UUID(ident[0]))
        if contribution is None:
            return False
        for parent in (await src.get_contributor(contribution.contributor_id),
                       await src.get_asset(contribution.asset_id)):
            if isinstance(parent, Contributor):
                await dst.put_contributor(parent)
            elif parent is not None:
                await dst.put_asset(parent)
        await dst.put_contribution(contribution)
        return True

    # ------------------------------------------------------------------ durability

    def _watermark(self, now: float) -> float:
        return min([now, *self._in_flight.values()])

    async def _checkpoint(self) -> None:
        assert self.path is not None
        mark = self._watermark(time.time())
        if self._lines >= COMPACT_LINES:
            await self._rewrite(mark)
            return
        lines, self._unflushed = [*self._unflushed, durable.mark_line(mark)], []
        await asyncio.to_thread(durable.append, self.path, lines)
        self._lines += len(lines)

    async def _rewrite(self, mark: float, closed: bool = False) -> None:
        assert self.path is not None
        lines = [durable.add_line(k, e.record) for k, e in self.entries.items()]
        lines.append(durable.mark_line(mark, closed=closed))
        self._unflushed = []
        await asyncio.to_thread(durable.rewrite, self.path, lines)
        self._lines = len(lines)

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        oldest = min((e.since for e in self.entries.values()), default=None)
        refused = [("/".join(k), e.refused) for k, e in self.entries.items() if e.refused]
        return {
            "enabled": True,
            "durable": self.path is not None,
            "queue_depth": len(self.entries),
            "peak_depth": self.peak,
            "oldest_seconds": round(now - oldest, 3) if oldest is not None else None,
            "landed": self.landed,
            "failed_attempts": self.failed,
            "requeued_after_crash": self.recovered,
            "refused": [{"key": k, "reason": r} for k, r in refused[:LISTED]],
        }
