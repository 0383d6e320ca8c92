"""The copy-retry queue's durable list: DATA_DIR/copy-retry/<store>.jsonl.

One JSON object a line, appended and fsynced by the queue's own task, never on a
request's path:
  {"add": [kind, ...key], "record": {...}}   a copy failed (record: dependencies only,
                                             the one kind memory cannot look up by key)
  {"done": [kind, ...key]}                   it landed since
  {"checkpoint": T}                          every write that started before unix time
                                             T has landed or is listed above
  {"closed": T}                              a clean stop at T, nothing in flight
A torn last line (a crash mid-append) is ignored. `load` replays the file; `rewrite`
replaces it atomically (temp file, fsync, rename) with only what is still pending, so
it stays as small as the queue.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Key = tuple[str, ...]


@dataclass
class Loaded:
    pending: dict[Key, dict[str, Any] | None] = field(default_factory=dict)
    checkpoint: float | None = None
    closed: bool = False
    lines: int = 0


def load(path: Path) -> Loaded | None:
    """What the file says, or None when there is no file (a first start)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    state = Loaded()
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last append
        state.lines += 1
        state.closed = "closed" in entry
        if "add" in entry:
            state.pending[tuple(entry["add"])] = entry.get("record")
        elif "done" in entry:
            state.pending.pop(tuple(entry["done"]), None)
        elif "checkpoint" in entry:
            state.checkpoint = float(entry["checkpoint"])
        elif "closed" in entry:
            state.checkpoint = float(entry["closed"])
    return state


def add_line(key: Key, record: dict[str, Any] | None) -> str:
    entry: dict[str, Any] = {"add": list(key)}
    if record is not None:
        entry["record"] = record
    return json.dumps(entry, separators=(",", ":"))


def done_line(key: Key) -> str:
    return json.dumps({"done": list(key)}, separators=(",", ":"))


def mark_line(at: float, closed: bool = False) -> str:
    return json.dumps({"closed" if closed else "checkpoint": at})


def append(path: Path, lines: list[str]) -> None:
    """Append and fsync (called in a worker thread)."""
    with path.open("a", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
        f.flush()
        os.fsync(f.fileno())


def rewrite(path: Path, lines: list[str]) -> None:
    """Replace the file with `lines`, atomically (called in a worker thread)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
