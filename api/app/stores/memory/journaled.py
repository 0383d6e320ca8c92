"""The journal glue both in-memory stores share: open on a directory, replay, close.

A store mixes this in and supplies `_restore_bytes` (load a snapshot), `_replay` (apply one
journal record) and `_capture` (a serializer of its current state, for compaction); this
class owns the Journal's life cycle and the wait for a write to be durable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from app.stores.memory.journal import Journal, RecoveryReport


class Journaled:
    SUBDIR: ClassVar[str]
    _journal: Journal | None = None
    recovery: RecoveryReport | None = None

    def _restore_bytes(self, data: bytes) -> None:
        raise NotImplementedError

    def _replay(self, record: dict[str, Any]) -> None:
        raise NotImplementedError

    def _capture(self) -> Any:
        raise NotImplementedError

    async def _attach(
        self, directory: Path, *, fsync: str, fsync_interval_ms: int, snapshot_every: int
    ) -> None:
        """Open the journal in `directory/SUBDIR`, rebuilding this store from it."""
        self._journal = await Journal.open(
            Path(directory) / self.SUBDIR,
            restore=self._restore_bytes,
            replay=self._replay,
            capture=self._capture,
            fsync=fsync,
            fsync_interval_ms=fsync_interval_ms,
            snapshot_every=snapshot_every,
        )
        self.recovery = self._journal.recovery

    async def close(self) -> None:
        if self._journal is not None:
            await self._journal.close()

    @property
    def journal(self) -> Journal | None:
        return self._journal

    async def _durable(self, position: int | None) -> None:
        if self._journal is not None and position is not None:
            await self._journal.commit(position)
