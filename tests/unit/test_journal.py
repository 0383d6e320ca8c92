"""The journal on its own: records survive a reopen, a torn or corrupt tail is cut away
and reported, compaction (also one interrupted by a crash) keeps every record, and each
fsync policy delivers what its docstring promises."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from app.stores.memory.journal import (
    Journal,
    JournalError,
    JournalLockedError,
    journal_name,
    snapshot_name,
)


class ListState:
    """A minimal store: an append-only list, so a record applied twice would show."""

    def __init__(self) -> None:
        self.items: list[int] = []
        self.journal: Journal

    @classmethod
    async def open(cls, directory: Path, **options: Any) -> ListState:
        state = cls()
        state.journal = await Journal.open(
            directory,
            restore=state.restore,
            replay=lambda r: state.items.append(r["v"]),
            capture=state.capture,
            **options,
        )
        return state

    def restore(self, data: bytes) -> None:
        self.items = json.loads(data)["items"]

    def capture(self) -> Any:
        items = list(self.items)
        return lambda: json.dumps({"items": items}).encode()

    async def add(self, value: int) -> None:
        position = self.journal.append({"v": value})
        self.items.append(value)
        await self.journal.commit(position)


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name != "LOCK")


async def fill(directory: Path, n: int, **options: Any) -> ListState:
    state = await ListState.open(directory, **options)
    for i in range(n):
        await state.add(i)
    return state


async def test_records_survive_reopen(tmp_path: Path) -> None:
    state = await fill(tmp_path, 20)
    await state.journal.close()
    again = await ListState.open(tmp_path)
    assert again.items == list(range(20))
    assert again.journal.recovery.records_replayed == 20
    assert again.journal.recovery.dropped == []
    await again.add(20)
    await again.journal.close()
    assert (await ListState.open(tmp_path)).items == list(range(21))


async def test_torn_tail_keeps_complete_records_and_reports_the_loss(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = await fill(tmp_path, 5)
    await state.journal.close()
    path = tmp_path / journal_name(0)
    data = path.read_bytes()
    last_start = data.rstrip(b"\n").rfind(b"\n") + 1
    path.write_bytes(data[: len(data) - 4])  # the process died inside record 5

    with caplog.at_level(logging.WARNING, logger="app.journal"):
        again = await ListState.open(tmp_path)

    assert again.items == [0, 1, 2, 3]
    report = again.journal.recovery
    assert report.lost_records == 1
    assert report.dropped[0].offset == last_start
    assert report.dropped[0].bytes == len(data) - 4 - last_start
    assert path.stat().st_size == last_start
    assert (tmp_path / report.dropped[0].kept_in).read_bytes() == data[last_start:-4]
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING)
    assert f"offset {last_start}" in warning.getMessage()
    assert "1 record(s)" in warning.getMessage()

    await again.add(99)
    await again.journal.close()
    third = await ListState.open(tmp_path)
    assert third.items == [0, 1, 2, 3, 99]
    assert third.journal.recovery.dropped == []


async def test_corrupt_byte_stops_replay_at_the_damaged_record(tmp_path: Path) -> None:
    state = await fill(tmp_path, 5)
    await state.journal.close()
    path = tmp_path / journal_name(0)
    lines = path.read_bytes().splitlines(keepends=True)
    damaged = bytearray(lines[2])
    damaged[-3] ^= 0x01  # inside the JSON payload: the CRC no longer matches
    path.write_bytes(b"".join(lines[:2]) + bytes(damaged) + b"".join(lines[3:]))

    again = await ListState.open(tmp_path)
    assert again.items == [0, 1]
    drop = again.journal.recovery.dropped[0]
    assert drop.offset == len(lines[0]) + len(lines[1])
    assert drop.records == 3
    await again.journal.close()


async def test_compaction_keeps_one_snapshot_and_every_record(tmp_path: Path) -> None:
    state = await fill(tmp_path, 25, snapshot_every=10)
    await state.journal.compact()
    await state.add(25)
    await state.journal.close()
    names = listing(tmp_path)
    assert len([n for n in names if n.startswith("snapshot-")]) == 1
    assert len([n for n in names if n.startswith("journal-")]) == 1
    again = await ListState.open(tmp_path)
    assert again.items == list(range(26))
    assert again.journal.recovery.snapshot_seq is not None
    assert again.journal.recovery.records_replayed == 1
    await again.journal.close()


async def test_crash_before_snapshot_rename_recovers_from_old_journals(tmp_path: Path) -> None:
    state = await fill(tmp_path, 5)
    state.journal._rotate()  # the writer switched journals, then the process died
    await state.add(5)
    await state.journal.close()
    (tmp_path / (snapshot_name(1) + ".tmp")).write_bytes(b'{"items": [0, 1')
    again = await ListState.open(tmp_path)
    assert again.items == list(range(6))
    assert snapshot_name(1) + ".tmp" in again.journal.recovery.removed
    assert not (tmp_path / (snapshot_name(1) + ".tmp")).exists()
    await again.journal.close()


async def test_crash_after_snapshot_rename_ignores_the_stale_journal(tmp_path: Path) -> None:
    state = await fill(tmp_path, 5)
    stale = (tmp_path / journal_name(0)).read_bytes()
    await state.journal.compact()
    await state.add(5)
    await state.journal.close()
    (tmp_path / journal_name(0)).write_bytes(stale)  # its deletion never happened
    again = await ListState.open(tmp_path)
    assert again.items == list(range(6))  # not replayed twice
    assert journal_name(0) in again.journal.recovery.removed
    await again.journal.close()


async def test_automatic_compaction_after_snapshot_every_records(tmp_path: Path) -> None:
    state = await fill(tmp_path, 30, snapshot_every=10, fsync="never")
    await state.journal.close()
    assert state.journal.compactions >= 1
    again = await ListState.open(tmp_path)
    assert again.items == list(range(30))
    assert again.journal.recovery.snapshot_seq is not None
    assert again.journal.recovery.records_replayed < 30
    await again.journal.close()


async def test_always_shares_one_fsync_between_concurrent_writers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        nonlocal calls
        calls += 1
        real_fsync(fd)

    state = await ListState.open(tmp_path, fsync="always")
    monkeypatch.setattr(os, "fsync", counting_fsync)
    await asyncio.gather(*(state.add(i) for i in range(50)))
    assert state.journal._synced == 50
    assert 1 <= calls < 50
    await state.journal.close()
    assert sorted((await ListState.open(tmp_path)).items) == list(range(50))


async def test_interval_flusher_syncs_in_the_background(tmp_path: Path) -> None:
    state = await fill(tmp_path, 10, fsync="interval", fsync_interval_ms=5)
    assert state.journal._written == 10
    for _ in range(400):
        if state.journal._synced == 10:
            break
        await asyncio.sleep(0.01)
    assert state.journal._synced == 10
    await state.journal.close()
    assert (await ListState.open(tmp_path)).items == list(range(10))


async def test_never_leaves_fsync_to_the_os_until_close(tmp_path: Path) -> None:
    state = await fill(tmp_path, 10, fsync="never")
    assert state.journal._synced == 0
    await state.journal.close()
    assert (await ListState.open(tmp_path)).items == list(range(10))


async def test_unknown_fsync_policy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fsync policy"):
        await ListState.open(tmp_path, fsync="sometimes")


async def test_a_second_writer_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    state = await fill(tmp_path, 1)
    with pytest.raises(JournalLockedError, match="in use"):
        await ListState.open(tmp_path)
    await state.journal.close()


async def test_unreadable_snapshot_stops_start_up_with_a_clear_error(tmp_path: Path) -> None:
    state = await fill(tmp_path, 3)
    await state.journal.compact()
    await state.journal.close()
    snapshot = next(n for n in listing(tmp_path) if n.startswith("snapshot-"))
    (tmp_path / snapshot).write_bytes(b"not json")
    with pytest.raises(JournalError, match="cannot be loaded"):
        await ListState.open(tmp_path)


def test_copied_directory_is_recoverable(tmp_path: Path) -> None:
    async def scenario() -> list[int]:
        state = await fill(tmp_path / "a", 7, fsync="never")
        shutil.copytree(tmp_path / "a", tmp_path / "b")  # the disk as a SIGKILL leaves it
        await state.journal.close()
        again = await ListState.open(tmp_path / "b")
        await again.journal.close()
        return again.items

    assert asyncio.run(scenario()) == list(range(7))
