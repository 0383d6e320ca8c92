"""The journal's files on disk: record framing, names, atomic writes, and start-up recovery.

Why apart from journal.py: this is everything that must stay readable by a future version
(the format) and everything that runs before the store serves (recovery); the Journal class
only appends to what this module has checked.

Files in the store's directory (one directory per store):
- ``snapshot-<K>.json``: the whole state covering every journal with a sequence < K,
  in the versioned format of snapshot.py. Only the latest is kept.
- ``journal-<N>.log``: records appended after that state, one per line:
  ``<payload length, hex> <CRC32 of payload, 8 hex> <JSON payload>\\n``.
  Length, checksum and newline make each record self-delimiting: a torn tail (the
  process died mid-write) or a flipped byte is detected on the first bad record.

Start-up (`recover`): load the latest snapshot K, replay every journal with sequence
>= K in order, delete older files and leftover ``*.tmp``. At the first incomplete or
corrupt record the rest of that journal is cut away: the dropped bytes are kept in
``journal-<N>.log.dropped-<offset>`` for forensics, the journal is truncated to its
last complete record, and the loss is returned (`RecoveryReport`) and logged as a
WARNING naming file, offset, bytes and records. Every complete record before it is
kept.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.stores.files import atomic_write, fsync_dir

log = logging.getLogger("app.journal")

JOURNAL_FILE = re.compile(r"^journal-(\d{12})\.log$")
SNAPSHOT_FILE = re.compile(r"^snapshot-(\d{12})\.json$")

Restore = Callable[[bytes], None]
Replay = Callable[[dict[str, Any]], None]


class JournalError(Exception):
    """The directory holds something recovery must not guess about."""



class JournalLockedError(JournalError):
    """Another process holds the directory's LOCK (it is running on the same data)."""


def journal_name(seq: int) -> str:
    return f"journal-{seq:012d}.log"


def snapshot_name(seq: int) -> str:
    return f"snapshot-{seq:012d}.json"


def encode(record: dict[str, Any]) -> bytes:
    payload = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()
    return b"%x %08x " % (len(payload), zlib.crc32(payload)) + payload + b"\n"


def _decode(line: bytes) -> dict[str, Any] | None:
    """The record on `line` (without its newline), or None when it is damaged."""
    parts = line.split(b" ", 2)
    if len(parts) != 3:
        return None
    try:
        length, crc = int(parts[0], 16), int(parts[1], 16)
    except ValueError:
        return None
    payload = parts[2]
    if len(payload) != length or zlib.crc32(payload) != crc:
        return None
    try:
        record = json.loads(payload)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


@dataclass
class Dropped:
    file: str
    offset: int
    bytes: int
    records: int
    kept_in: str


@dataclass
class RecoveryReport:
    """What start-up found: the snapshot used, records replayed, and any loss."""

    snapshot_seq: int | None = None
    journals: list[str] = field(default_factory=list)
    records_replayed: int = 0
    dropped: list[Dropped] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def lost_bytes(self) -> int:
        return sum(d.bytes for d in self.dropped)

    @property
    def lost_records(self) -> int:
        return sum(d.records for d in self.dropped)


def _sequences(directory: Path, pattern: re.Pattern[str]) -> list[int]:
    found = (pattern.match(p.name) for p in directory.iterdir())
    return sorted(int(m.group(1)) for m in found if m)


def _replay_journal(path: Path, replay: Replay, report: RecoveryReport) -> None:
    data = path.read_bytes()
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        record = None if end < 0 else _decode(data[pos:end])
        if record is None:
            break
        replay(record)
        report.records_replayed += 1
        pos = end + 1
    if pos == len(data):
        return
    tail = data[pos:]
    kept = path.with_name(f"{path.name}.dropped-{pos}")
    atomic_write(kept, tail)
    with open(path, "r+b") as f:
        f.truncate(pos)
        f.flush()
        os.fsync(f.fileno())
    records = tail.count(b"\n") + (0 if tail.endswith(b"\n") else 1)
    drop = Dropped(path.name, pos, len(tail), records, kept.name)
    report.dropped.append(drop)
    log.warning(
        "journal %s: dropped a damaged tail of %d bytes (%d record(s), the first "
        "incomplete or corrupt) at offset %d; every complete record before it was "
        "replayed; the dropped bytes are kept in %s",
        drop.file, drop.bytes, drop.records, drop.offset, drop.kept_in,
    )


def lock_directory(directory: Path) -> int:
    """An exclusive lock on `directory/LOCK`, so two processes never append to one
    journal (the kernel drops it when the holder dies, even by SIGKILL)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise JournalLockedError(
            f"{directory} is in use by another process (LOCK is held)"
        ) from None
    return fd


def recover(directory: Path, restore: Restore, replay: Replay) -> tuple[RecoveryReport, int]:
    """Rebuild a store from `directory` (see the module docstring). Returns the report
    and the sequence of the journal to append to."""
    directory.mkdir(parents=True, exist_ok=True)
    report = RecoveryReport()
    for tmp in directory.glob("*.tmp"):
        tmp.unlink()
        report.removed.append(tmp.name)
    snapshots = _sequences(directory, SNAPSHOT_FILE)
    base = snapshots[-1] if snapshots else 0
    if snapshots:
        path = directory / snapshot_name(base)
        try:
            restore(path.read_bytes())
        except Exception as e:
            raise JournalError(f"snapshot {path} cannot be loaded: {e}") from e
        report.snapshot_seq = base
    journals = _sequences(directory, JOURNAL_FILE)
    for seq in journals:
        path = directory / journal_name(seq)
        if seq < base:
            continue
        _replay_journal(path, replay, report)
        report.journals.append(path.name)
    for stale in [journal_name(s) for s in journals if s < base] + [
        snapshot_name(s) for s in snapshots[:-1]
    ]:
        (directory / stale).unlink()
        report.removed.append(stale)
    if report.removed:
        fsync_dir(directory)
    current = max([base, *(s for s in journals if s >= base)])
    log.info(
        "store %s recovered: snapshot %s, %d journal record(s) replayed, %d dropped",
        directory, report.snapshot_seq, report.records_replayed, report.lost_records,
    )
    return report, current
