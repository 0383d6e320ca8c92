"""Opening memory's two durable stores on the data directory, the one way it is done.

The service opens them at start-up and keeps them open while memory is trusted; when every
store is PostgreSQL-primary, the start-up backfill and the admin calls open them for a
moment (app.migration.startup.MemoryOpener) through the same `DurableMemory.open`. A
journal another process holds is refused with StoreLockedError, never waited for here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.domain.tasks import TaskRouting
from app.errors import StoreLockedError
from app.settings import Settings
from app.stores.memory import graph_store, task_store
from app.stores.memory.graph_store import MemoryGraphStore
from app.stores.memory.journal import JournalLockedError
from app.stores.memory.task_store import MemoryAgentTaskStore


def journal_exists(data_dir: Path, subdir: str) -> bool:
    directory = Path(data_dir) / subdir
    return directory.is_dir() and any(p.name != "LOCK" for p in directory.iterdir())


@dataclass(frozen=True)
class DurableMemory:
    """Where memory's journals live and how they are written (JOURNAL_* settings)."""

    data_dir: Path
    routing: TaskRouting
    fsync: str = "always"
    fsync_interval_ms: int = 50
    snapshot_every: int = 50_000

    @classmethod
    def from_settings(cls, settings: Settings) -> DurableMemory:
        return cls(
            data_dir=settings.data_dir,
            routing=settings.task_routing,
            fsync=settings.journal_fsync,
            fsync_interval_ms=settings.journal_fsync_interval_ms,
            snapshot_every=settings.snapshot_every,
        )

    def journals_exist(self) -> dict[str, bool]:
        return {
            "graph": journal_exists(self.data_dir, graph_store.SUBDIR),
            "agent_task": journal_exists(self.data_dir, task_store.SUBDIR),
        }

    def volatile(self) -> tuple[MemoryGraphStore, MemoryAgentTaskStore]:
        """Empty stores with no journal: the memory face while memory is not trusted."""
        return MemoryGraphStore(), MemoryAgentTaskStore(routing=self.routing)

    async def open(self) -> tuple[MemoryGraphStore, MemoryAgentTaskStore]:
        """Both stores, rebuilt from their journals; the caller closes them."""
        try:
            graph = await MemoryGraphStore.open(
                self.data_dir, fsync=self.fsync, fsync_interval_ms=self.fsync_interval_ms,
                snapshot_every=self.snapshot_every,
            )
        except JournalLockedError as e:
            raise StoreLockedError(str(e)) from None
        try:
            tasks = await MemoryAgentTaskStore.open(
                self.data_dir, routing=self.routing, fsync=self.fsync,
                fsync_interval_ms=self.fsync_interval_ms, snapshot_every=self.snapshot_every,
            )
        except BaseException as e:
            await graph.close()
            if isinstance(e, JournalLockedError):
                raise StoreLockedError(str(e)) from None
            raise
        return graph, tasks
