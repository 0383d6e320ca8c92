"""The full verify: memory and PostgreSQL compared one key range at a time.

A chunk is a key range after a key that ends where the next `limit` records of either
side end: PostgreSQL's rows (app.stores.postgres.range_queries) and memory's (a sorted
index of references to memory's immutable records, built once per run), so a chunk
never holds more than `limit` records of each side, whatever the size of the data and
however far the two stores are apart. Every key that does not agree is returned:
"missing" (memory only), "different" (both, with each differing field's two values)
and "extra" (PostgreSQL only). Like the sampled check
(app.migration.consistency), a mismatch is looked at again after the second-write
timeout, key by key; one whose memory record changed since the chunk began (less that
timeout) is still in flight, not a mismatch. The same comparison serves `keys`: the
keys of an earlier report, re-verified. The comparison shares the event loop with the
API's requests (app.pacing). `pair_range` and `agree` are also what the verify script
uses when it compares in its own process (api/scripts/_compare_here.py): the API then
serves memory's side only, and the two ways cannot pair or judge a range differently.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from app.migration.consistency import changed_at
from app.migration.keyed import KINDS, Ordered, from_json, label, sort_key, to_json
from app.pacing import paced
from app.stores.ports import AgentTaskStore, GraphBackend, RangeStore

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


def field_values(ours: Any, theirs: Any) -> dict[str, dict[str, Any]]:
    """{field: {"memory": value, "postgres": value}} for every field that differs."""
    a, b = ours.model_dump(mode="json"), theirs.model_dump(mode="json")
    return {name: {"memory": a.get(name), "postgres": b.get(name)}
            for name in sorted(a.keys() | b.keys()) if a.get(name) != b.get(name)}


@dataclass
class Findings:
    checked: int = 0
    lines: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = {"missing": 0, "different": 0, "extra": 0, "in_flight": 0}
        for line in self.lines:
            out[line["status"]] += 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"checked": self.checked, "counts": self.counts(), "lines": self.lines}


def _classify(kind: str, key: Any, mine: Any, theirs: Any, since: datetime
              ) -> dict[str, Any] | None:
    if mine is not None and theirs is not None:
        values = field_values(mine, theirs)
        if not values:
            return None
    shown = mine if mine is not None else theirs
    line: dict[str, Any] = {"kind": kind, "key": to_json(kind, key), "id": label(kind, shown)}
    stamp = changed_at(mine if mine is not None else theirs)
    if stamp is not None and stamp > since:
        return {**line, "status": "in_flight"}
    if theirs is None:
        return {**line, "status": "missing"}
    if mine is None:
        return {**line, "status": "extra"}
    return {**line, "status": "different", "fields": values}


class MemoryLookup:
    """Memory's current record by key: the store's getters, and where there is none
    (a dependency; a project known by id alone) a fresh sorted index of that kind, made
    at most once per lookup."""

    def __init__(self, graph: GraphBackend | None, tasks: AgentTaskStore | None) -> None:
        self.graph, self.tasks = graph, tasks
        self._fresh: dict[str, Ordered] = {}

    async def _indexed(self, kind: str, key: Any) -> Any:
        assert self.graph is not None
        if kind not in self._fresh:
            records = getattr(await self.graph.export_graph(), kind)
            self._fresh[kind] = Ordered.of(kind, records)
        return self._fresh[kind].find(key)

    async def get(self, kind: str, key: Any, hint: Any) -> Any:
        if kind == "tasks":
            return None if self.tasks is None else await self.tasks.get_task(str(key))
        if self.graph is None:
            return None
        if kind == "projects" and hint is not None:
            found = await self.graph.get_project(hint.ecosystem, hint.name)
            return found if found is not None and found.id == key else None
        if kind in ("projects", "dependencies"):
            return await self._indexed(kind, key)
        getter = {"contributors": self.graph.get_contributor, "assets": self.graph.get_asset,
                  "contributions": self.graph.get_contribution}[kind]
        return await getter(key if isinstance(key, UUID) else UUID(str(key)))


async def _recheck(
    kind: str, bad: dict[Any, tuple[Any, Any]], ranges: RangeStore, lookup: MemoryLookup,
    since: datetime,
) -> list[dict[str, Any]]:
    fresh = {sort_key(kind, r): r
             for r in await ranges.read_keys(kind, [to_json(kind, k) for k in bad])}
    lines = []
    async for key, (mine, theirs) in paced(sorted(bad.items(), key=lambda kv: kv[0])):
        now_theirs = fresh.get(key)
        now_mine = await lookup.get(kind, key, mine or theirs or now_theirs)
        line = _classify(kind, key, now_mine, now_theirs, since)
        if line is not None:
            lines.append(line)
    return lines


def pair_range(kind: str, limit: int, ahead: list[Any], theirs: list[Any]
               ) -> tuple[Any, dict[Any, list[Any]]]:
    """One chunk's range and its (memory, PostgreSQL) pairs by key, from the next `limit`
    records of each side after the same key: the range ends where either side's chunk
    does (None: both sides are exhausted), so every key in it is on both lists."""
    ends = [sort_key(kind, side[-1]) for side in (theirs, ahead) if len(side) >= limit]
    upto = min(ends) if ends else None
    pairs: dict[Any, list[Any]] = {}
    for i, side in enumerate((ahead, theirs)):
        for r in side:
            key = sort_key(kind, r)
            if upto is None or key <= upto:
                pairs.setdefault(key, [None, None])[i] = r
    return upto, pairs


def agree(mine: Any, theirs: Any) -> bool:
    """Both stores hold the record, with the same value in every field."""
    return mine is not None and theirs is not None and not field_values(mine, theirs)


async def verify_chunk(
    kind: str, after: Any, limit: int, ordered: Ordered, ranges: RangeStore,
    lookup: MemoryLookup, *, recheck_delay: float, window: float, now: Clock = _now,
) -> dict[str, Any]:
    """One chunk of `kind` after the JSON key `after`: the findings, the key to go on
    after (`next`) and whether the kind is done."""
    start = from_json(kind, after)
    theirs = await ranges.read_range(kind, to_json(kind, start), None, limit)
    upto, pairs = pair_range(kind, limit, ordered.after(start, limit), theirs)
    bad = {k: (m, t) async for k, (m, t) in paced(pairs.items()) if not agree(m, t)}
    findings = Findings(checked=len(pairs))
    if bad:
        await asyncio.sleep(recheck_delay)
        findings.lines = await _recheck(kind, bad, ranges, lookup,
                                        now() - timedelta(seconds=window))
    return {"kind": kind, "next": to_json(kind, upto), "done": upto is None,
            **findings.as_dict()}


async def verify_keys(
    items: list[tuple[str, Any]], ranges: RangeStore, lookup: MemoryLookup, *,
    window: float, now: Clock = _now,
) -> dict[str, Any]:
    """Re-verify the given (kind, JSON key) pairs only."""
    findings = Findings()
    for kind in KINDS:
        keys = {from_json(kind, k) for kd, k in items if kd == kind}
        if not keys:
            continue
        findings.checked += len(keys)
        since = now() - timedelta(seconds=window)
        held = {sort_key(kind, r): r
                for r in await ranges.read_keys(kind, [to_json(kind, k) for k in keys])}
        async for key in paced(sorted(keys)):
            mine = await lookup.get(kind, key, held.get(key))
            line = _classify(kind, key, mine, held.get(key), since)
            if line is not None:
                findings.lines.append(line)
    return findings.as_dict()

