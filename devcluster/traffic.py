"""Steady mixed traffic against the API that remembers every acknowledged write (aiohttp,
whose C parser keeps the client's own share of each request's latency small).

A write counts as acknowledged only when the API answered 2xx. At the end,
`verify_acknowledged` reads every acknowledged record back: a record that is absent or
older than what was acknowledged is a lost write. Requests refused while the API
restarts (connection refused: the request never arrived) are retried; a request whose
outcome is unknown (timeout after sending) is not counted as acknowledged.

Concurrent writes to one project may be applied in another order than their answers
arrive, so a project's acknowledged state is the answer with the newest updated_at, and
reading back a newer updated_at (a later write, perhaps one whose answer was lost) is not a
loss. Latencies are tagged with `tag` (the tests set the migration phase) so p95 can be
reported per phase; the demo runs it in a process of its own (`TrafficProcess`) and tags
its samples by time.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import aiohttp
import httpx

TASK_ORDER = ["pending", "running", "completed"]


@dataclass
class Ledger:
    projects: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    dependents: dict[tuple[str, str], set[tuple[str, str]]] = field(default_factory=dict)
    contributors: set[str] = field(default_factory=set)
    assets: dict[str, Decimal] = field(default_factory=dict)
    contributions: set[str] = field(default_factory=set)
    tasks: dict[str, str] = field(default_factory=dict)

    def count(self) -> int:
        return (
            len(self.projects)
            + sum(len(v) for v in self.dependents.values())
            + len(self.contributors)
            + len(self.assets)
            + len(self.contributions)
            + len(self.tasks)
        )


@dataclass
class TrafficStats:
    ok: int = 0
    errors: int = 0
    refused: int = 0
    unknown: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    by_tag: dict[str, list[float]] = field(default_factory=dict)
    # (monotonic sent, took, "METHOD /first/segments") for each answered request
    samples: list[tuple[float, float, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Answer:
    """One HTTP answer, read in full."""

    status_code: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Traffic:
    """`rate` requests per second, mixed over both stores, until stopped."""

    def __init__(self, base_url: str, rate: float = 50.0, seed: int = 7) -> None:
        self.base_url = base_url
        self.rate = rate
        self.rng = random.Random(seed)
        self.ledger = Ledger()
        self.stats = TrafficStats()
        self._stop = asyncio.Event()
        self._seq = 0
        self.tag = "start"

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=5.0, sock_read=5.0)
        async with aiohttp.ClientSession(base_url=self.base_url, timeout=timeout,
                                         connector=aiohttp.TCPConnector(limit=16)) as c:
            interval = 1.0 / self.rate
            pending: set[asyncio.Task[None]] = set()
            next_at = time.monotonic()
            while not self._stop.is_set():
                task = asyncio.create_task(self._one(c))
                pending.add(task)
                task.add_done_callback(pending.discard)
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)

    async def _call(
        self, c: aiohttp.ClientSession, method: str, url: str, **kw: Any
    ) -> Answer | None:
        for _ in range(150):
            started = time.perf_counter()
            try:
                async with c.request(method, url, **kw) as resp:
                    r = Answer(resp.status, await resp.read())
            except aiohttp.ClientConnectorError:
                self.stats.refused += 1
                if self._stop.is_set():
                    return None  # never arrived, so never acknowledged: nothing to remember
                await asyncio.sleep(0.2)
                continue
            except (aiohttp.ClientError, TimeoutError):
                self.stats.unknown += 1
                return None
            took = time.perf_counter() - started
            self.stats.latencies.append(took)
            self.stats.samples.append((time.monotonic() - took, took,
                                       f"{method} {'/'.join(url.split('/')[:3])}"))
            self.stats.by_tag.setdefault(self.tag, []).append(took)
            self.stats.by_status[r.status_code] += 1
            if r.status_code >= 500:
                self.stats.errors += 1
            else:
                self.stats.ok += 1
            return r
        return None

    async def _one(self, c: aiohttp.ClientSession) -> None:
        self._seq += 1
        n = self._seq
        roll = self.rng.random()
        L = self.ledger
        if roll < 0.22:
            key = ("pypi", f"pkg-{self.rng.randrange(500)}")
            version = f"1.{n}"
            r = await self._call(c, "PUT", f"/api/projects/{key[0]}/{key[1]}",
                                 json={"version": version, "description": f"package {key[1]}"})
            if r is not None and r.status_code == 200:
                updated = r.json()["updated_at"]
                if key not in L.projects or _newer(updated, L.projects[key][1]):
                    L.projects[key] = (version, updated)
        elif roll < 0.25 and L.projects:
            src = self.rng.choice(list(L.projects))
            dst = ("pypi", f"pkg-{self.rng.randrange(500)}")
            r = await self._call(c, "POST", f"/api/projects/{src[0]}/{src[1]}/dependencies",
                                 json={"ecosystem": dst[0], "name": dst[1]})
            if r is not None and r.status_code in (200, 201):
                L.dependents.setdefault(dst, set()).add(src)
        elif roll < 0.45 and L.projects:
            eco, name = self.rng.choice(list(L.projects))
            await self._call(c, "GET", f"/api/projects/{eco}/{name}")
        elif roll < 0.50:
            await self._call(c, "GET", "/api/search", params={"q": f"pkg-{self.rng.randrange(50)}"})
        elif roll < 0.55:
            r = await self._call(c, "POST", "/v1/contributors", json={"name": f"dev {n}"})
            if r is not None and r.status_code == 201:
                L.contributors.add(r.json()["id"])
        elif roll < 0.60:
            r = await self._call(c, "POST", "/v1/assets",
                                 json={"type": "CODE", "description": f"asset {n}"})
            if r is not None and r.status_code == 201:
                L.assets[r.json()["id"]] = Decimal("0.00")
        elif roll < 0.70 and L.contributors and L.assets:
            asset = self.rng.choice(list(L.assets))
            body = {"contributor_id": self.rng.choice(list(L.contributors)), "asset_id": asset,
                    "cost_amount": "10.00", "metadata": {"has_tests": True}}
            r = await self._call(c, "POST", "/v1/contributions", json=body)
            if r is not None and r.status_code == 201:
                L.contributions.add(r.json()["id"])
                L.assets[asset] += Decimal("10.00")
        elif roll < 0.80 and L.assets:
            await self._call(c, "GET", f"/v1/assets/{self.rng.choice(list(L.assets))}")
        elif roll < 0.88:
            r = await self._call(c, "POST", "/api/agent/tasks",
                                 json={"direction": f"task {n}", "task_type": "impl"})
            if r is not None and r.status_code == 201:
                L.tasks[r.json()["id"]] = "pending"
        elif roll < 0.94 and L.tasks:
            tid = self.rng.choice(list(L.tasks))
            nxt = {"pending": "running", "running": "completed"}.get(L.tasks[tid])
            if nxt is None:
                await self._call(c, "GET", f"/api/agent/tasks/{tid}")
                return
            r = await self._call(c, "PATCH", f"/api/agent/tasks/{tid}", json={"status": nxt})
            if r is not None and r.status_code == 200:
                L.tasks[tid] = nxt
        else:
            await self._call(c, "GET", "/api/agent/tasks", params={"limit": 20})


class TrafficProcess:
    """`Traffic` in a process of its own: what it measures is the API's latency through
    the Service, not the wait for an event loop it would share with the Kubernetes API
    emulator and the controllers. Its samples carry CLOCK_MONOTONIC times (one clock for
    every process on the machine), so the caller tags them by phase afterwards; `ledger`
    and `stats` are complete once `run` returned."""

    def __init__(self, base_url: str, rate: float = 50.0, seed: int = 7) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._stop = ctx.Event()
        self._served = ctx.Value("q", 0)
        self._receive, send = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_traffic_child, daemon=True,
                                 args=(base_url, rate, seed, self._stop, self._served, send))
        self.ledger = Ledger()
        self._stats: TrafficStats | None = None
        self.tag = "start"  # unused here: samples are tagged by time afterwards

    @property
    def stats(self) -> TrafficStats:
        """The final stats once `run` returned; meanwhile only `ok` (answers so far)."""
        return self._stats or TrafficStats(ok=int(self._served.value))

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        self._proc.start()
        try:
            self.ledger, self._stats = await asyncio.to_thread(self._receive.recv)
        finally:
            self._stop.set()
            await asyncio.to_thread(self._proc.join, 30)


def _traffic_child(base_url: str, rate: float, seed: int, stop: Any, served: Any,
                   send: Any) -> None:
    traffic = Traffic(base_url, rate=rate, seed=seed)

    async def main() -> None:
        runner = asyncio.create_task(traffic.run())
        while not stop.is_set():
            served.value = traffic.stats.ok + traffic.stats.errors
            await asyncio.sleep(0.05)
        traffic.stop()
        await runner

    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())
    send.send((traffic.ledger, traffic.stats))
    send.close()


async def verify_acknowledged(base_url: str, ledger: Ledger,
                              concurrency: int = 8) -> dict[str, Any]:
    """Read back every acknowledged write; report what is missing or stale."""
    lost: list[str] = []
    gate = asyncio.Semaphore(concurrency)
    rank = TASK_ORDER.index

    async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as c:
        async def get(path: str) -> tuple[int, dict[str, Any]]:
            async with gate:
                r = await c.get(path)
            return r.status_code, (r.json() if r.status_code == 200 else {})

        async def project(eco: str, name: str, version: str, updated: str) -> None:
            _, doc = await get(f"/api/projects/{eco}/{name}")
            same = doc.get("updated_at") == updated and doc.get("version") == version
            if not same and not _newer(doc.get("updated_at"), updated):
                lost.append(f"project {eco}/{name}@{version}")

        async def dependents(eco: str, name: str, sources: set[tuple[str, str]]) -> None:
            _, doc = await get(f"/api/projects/{eco}/{name}/dependents")
            if int(doc.get("count", 0)) < len(sources):
                lost.append(f"dependencies of {eco}/{name}: {len(sources)} acknowledged")

        async def exists(path: str, label: str) -> None:
            if (await get(path))[0] != 200:
                lost.append(label)

        async def asset(aid: str, cost: Decimal) -> None:
            code, doc = await get(f"/v1/assets/{aid}")
            if code != 200 or Decimal(doc["total_cost"]) < cost:
                lost.append(f"asset {aid} total_cost {cost}")

        async def task(tid: str, status: str) -> None:
            code, doc = await get(f"/api/agent/tasks/{tid}")
            if code != 200 or rank(doc["status"]) < rank(status):
                lost.append(f"task {tid} {status}")

        await asyncio.gather(
            *(project(e, n, v, u) for (e, n), (v, u) in ledger.projects.items()),
            *(dependents(e, n, s) for (e, n), s in ledger.dependents.items()),
            *(exists(f"/v1/contributors/{i}", f"contributor {i}") for i in ledger.contributors),
            *(exists(f"/v1/contributions/{i}", f"contribution {i}")
              for i in ledger.contributions),
            *(asset(a, cost) for a, cost in ledger.assets.items()),
            *(task(t, st) for t, st in ledger.tasks.items()))
    return {"checked": ledger.count(), "lost": len(lost), "lost_examples": lost[:10]}


def _newer(a: str | None, b: str) -> bool:
    """Whether timestamp `a` is later than `b` (ISO 8601, any offset spelling)."""
    if not a:
        return False
    return datetime.fromisoformat(a.replace("Z", "+00:00")) > \
        datetime.fromisoformat(b.replace("Z", "+00:00"))
