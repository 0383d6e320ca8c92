"""Durability for the in-memory stores: an append-only journal plus compacted snapshots.

Why: patching the Deployment's env restarts the pod at every migration step, so the
in-memory stores must survive a restart without losing an acknowledged write, and a
crash in the middle of a write must never damage what was stored before it.

The files, their framing and start-up recovery are in journal_files.py; this module is the
writer that appends, fsyncs by policy and compacts.

Compaction (every `snapshot_every` records): the writer switches to journal N+1 at
once (the old one is fsynced first), the store's state is captured by reference
(records are immutable), and a worker thread serializes it to ``snapshot-<N+1>.json.tmp``,
fsyncs it, renames it into place and fsyncs the directory; only then are journals
<= N and older snapshots deleted. A crash before the rename leaves the old snapshot
and journals N, N+1 (all replayed); after it, the new snapshot and journal N+1
(older journals are ignored and deleted). Either way nothing acknowledged is lost.

fsync policy (settings.journal_fsync):
- ``always``: a write is acknowledged only after its record is fsynced. Concurrent
  writers share one fsync (group commit): whoever arrives while an fsync is running
  waits for the next, which covers all of them. Survives power loss.
- ``interval``: a background flusher fsyncs every `fsync_interval_ms`. A process crash
  loses nothing (the data is in the OS page cache); a power loss or kernel crash may
  lose the writes of the last interval.
- ``never``: the OS decides when to write back. A process crash loses nothing; a
  power loss may lose anything not yet written back. For tests and benchmarks.
In every mode the record is written (``write(2)``) before the in-memory state changes
and before the call returns, so a SIGKILL never loses an acknowledged write. A write
becomes visible to readers as soon as it is applied, possibly just before its fsync
completes. If writing or fsyncing fails the journal refuses every later write
(StoreUnavailableError) rather than diverge silently from the disk.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from app.errors import StoreUnavailableError
from app.stores.files import atomic_write, fsync_dir
from app.stores.memory.journal_files import (
    JOURNAL_FILE,
    SNAPSHOT_FILE,
    Dropped,
    JournalError,
    JournalLockedError,
    RecoveryReport,
    Replay,
    Restore,
    encode,
    journal_name,
    lock_directory,
    log,
    recover,
    snapshot_name,
)

__all__ = [
    "FSYNC_POLICIES",
    "Capture",
    "Dropped",
    "FsyncPolicy",
    "Journal",
    "JournalError",
    "JournalLockedError",
    "RecoveryReport",
    "atomic_write",
    "journal_name",
    "snapshot_name",
]

FsyncPolicy = Literal["always", "interval", "never"]
FSYNC_POLICIES = ("always", "interval", "never")
Capture = Callable[[], Callable[[], bytes]]


class Journal:
    """The writer side: append records, make them durable by policy, compact."""

    def __init__(
        self,
        directory: Path,
        seq: int,
        capture: Capture,
        *,
        fsync: str = "always",
        fsync_interval_ms: int = 50,
        snapshot_every: int = 50_000,
    ) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync policy must be one of {FSYNC_POLICIES}, not {fsync!r}")
        self.directory = directory
        self.seq = seq
        self.policy = fsync
        self.interval = fsync_interval_ms / 1000
        self.snapshot_every = snapshot_every
        self.recovery = RecoveryReport()
        self._capture = capture
        self._fd = self._open_journal(seq)
        self._retired: list[int] = []
        self._written = 0
        self._synced = 0
        self._since_snapshot = 0
        self._sync_task: asyncio.Task[None] | None = None
        self._compaction: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._failed: BaseException | None = None
        self._closed = False
        self._lock: int | None = None
        self.compactions = 0

    @classmethod
    async def open(
        cls,
        directory: Path,
        *,
        restore: Restore,
        replay: Replay,
        capture: Capture,
        fsync: str = "always",
        fsync_interval_ms: int = 50,
        snapshot_every: int = 50_000,
    ) -> Journal:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync policy must be one of {FSYNC_POLICIES}, not {fsync!r}")
        lock = lock_directory(directory)
        try:
            report, seq = recover(directory, restore, replay)
        except BaseException:
            os.close(lock)
            raise
        journal = cls(
            directory,
            seq,
            capture,
            fsync=fsync,
            fsync_interval_ms=fsync_interval_ms,
            snapshot_every=snapshot_every,
        )
        journal.recovery = report
        journal._lock = lock
        if fsync == "interval":
            journal._flusher = asyncio.create_task(journal._flush_periodically())
        return journal

    def _open_journal(self, seq: int) -> int:
        path = self.directory / journal_name(seq)
        existed = path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if not existed:
            fsync_dir(self.directory)
        return fd

    # ------------------------------------------------------------------ writing

    def append(self, record: dict[str, Any]) -> int:
        """Write one record (synchronously, before the caller changes its state) and
        return its position; `commit` makes it durable."""
        self._check()
        line = encode(record)
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as e:
            self._failed = e
            log.error("journal write failed: %s; refusing further writes", e)
            raise StoreUnavailableError("the store's journal cannot be written") from None
        self._written += 1
        self._since_snapshot += 1
        return self._written

    async def commit(self, position: int) -> None:
        """Start a compaction when due (synchronously, so the captured state is exactly
        what the journal holds), then wait for durability as the policy says."""
        if self._since_snapshot >= self.snapshot_every and self._compaction is None:
            self._start_compaction()
        if self.policy == "always":
            await self._sync_up_to(position)

    async def _sync_up_to(self, position: int) -> None:
        while self._synced < position:
            self._check()
            if self._sync_task is None:
                self._sync_task = asyncio.create_task(self._sync_once())
            await asyncio.shield(self._sync_task)
        self._check()

    async def _sync_once(self) -> None:
        target, fd = self._written, self._fd
        try:
            await asyncio.to_thread(os.fsync, fd)
            self._synced = max(self._synced, target)
        except OSError as e:
            self._failed = e
            log.error("journal fsync failed: %s; refusing further writes", e)
        finally:
            self._sync_task = None

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if self._synced < self._written and self._failed is None:
                if self._sync_task is None:
                    self._sync_task = asyncio.create_task(self._sync_once())
                await asyncio.shield(self._sync_task)

    def _check(self) -> None:
        if self._failed is not None:
            raise StoreUnavailableError("the store's journal failed; restart the service")
        if self._closed:
            raise StoreUnavailableError("the store is closed")

    # ------------------------------------------------------------------ compaction

    def _rotate(self) -> int:
        """Switch the writer to a fresh journal; return the sequence of the snapshot
        that will cover everything written so far."""
        old = self._fd
        if self.policy != "never":
            os.fsync(old)
            self._synced = self._written
        self.seq += 1
        self._fd = self._open_journal(self.seq)
        self._retired.append(old)
        self._since_snapshot = 0
        return self.seq

    def _start_compaction(self) -> None:
        snapshot_seq = self._rotate()
        serialize = self._capture()
        self._compaction = asyncio.create_task(self._compact(snapshot_seq, serialize))

    async def _compact(self, snapshot_seq: int, serialize: Callable[[], bytes]) -> None:
        try:
            await asyncio.to_thread(self._write_snapshot, snapshot_seq, serialize)
            self.compactions += 1
        except Exception:
            log.exception("compaction to snapshot %d failed; the journals are kept", snapshot_seq)
        finally:
            if self._sync_task is not None:
                await asyncio.shield(self._sync_task)
            for fd in self._retired:
                os.close(fd)
            self._retired.clear()
            self._compaction = None

    def _write_snapshot(self, snapshot_seq: int, serialize: Callable[[], bytes]) -> None:
        atomic_write(self.directory / snapshot_name(snapshot_seq), serialize())
        for name in os.listdir(self.directory):
            for pattern in (JOURNAL_FILE, SNAPSHOT_FILE):
                m = pattern.match(name)
                if m and int(m.group(1)) < snapshot_seq:
                    os.unlink(self.directory / name)
        fsync_dir(self.directory)

    async def compact(self) -> None:
        """Compact now and wait for it (admin use and tests)."""
        if self._compaction is not None:
            await self._compaction
        self._check()
        self._start_compaction()
        assert self._compaction is not None
        await self._compaction

    # ------------------------------------------------------------------ closing

    async def close(self) -> None:
        """Finish a running compaction, fsync what was written and close the files."""
        if self._closed:
            return
        if self._flusher is not None:
            self._flusher.cancel()
            try:
                await self._flusher
            except asyncio.CancelledError:
                pass
        if self._compaction is not None:
            await self._compaction
        if self._sync_task is not None:
            await asyncio.shield(self._sync_task)
        self._closed = True
        try:
            if self._failed is None:
                os.fsync(self._fd)
        finally:
            os.close(self._fd)
            if self._lock is not None:
                os.close(self._lock)
