"""A mixed HTTP workload against a real API process, for the live-switch tests: writes of
every kind (new records and updates of records earlier rounds made) and reads of what
was acknowledged; every failure, refused connection or wrong 404 is recorded.

`python -m tests.migration.http_load URL OUT_JSON` runs it in a process of its own (so a
test's own requests do not queue behind the load's in one event loop) until SIGTERM,
then writes what was acknowledged to OUT_JSON.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx


@dataclass
class HttpLoad:
    projects: dict[str, str] = field(default_factory=dict)  # name -> last version
    tasks: dict[str, str] = field(default_factory=dict)  # id -> last status
    contributions: dict[str, dict[str, Any]] = field(default_factory=dict)
    costs: dict[str, Decimal] = field(default_factory=dict)
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    duration: float = 0.0

    def rate(self) -> float:
        return self.requests / max(self.duration, 1e-9)


async def _call(client: httpx.AsyncClient, load: HttpLoad, method: str, path: str,
                **kw: Any) -> Any:
    load.requests += 1
    try:
        r = await client.request(method, path, **kw)
    except httpx.TransportError as e:
        load.errors.append(f"{method} {path}: {type(e).__name__}")
        return None
    if r.status_code >= 300:
        load.errors.append(f"{method} {path}: {r.status_code} {r.text[:200]}")
        return None
    return r.json()


async def http_writer(url: str, tag: str, load: HttpLoad, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        i = 0
        assets: list[str] = []
        running: list[str] = []
        contributor = None
        while not stop.is_set():
            name = f"{tag}-{i}"
            await _call(c, load, "PUT", f"/api/projects/pypi/{name}", json={"version": "1"})
            if i:
                await _call(c, load, "POST", f"/api/projects/pypi/{name}/dependencies",
                            json={"ecosystem": "pypi", "name": f"{tag}-{i - 1}"})
            if await _call(c, load, "PUT", f"/api/projects/pypi/{name}",
                           json={"version": f"2.{i}"}) is not None:
                load.projects[name] = f"2.{i}"
            if contributor is None or i % 5 == 0:
                made = await _call(c, load, "POST", "/v1/contributors", json={"name": name})
                contributor = made["id"] if made else contributor
            asset = await _call(c, load, "POST", "/v1/assets",
                                json={"type": "CODE", "description": name})
            if asset is not None:
                assets.append(asset["id"])
            for asset_id in {assets[-1], assets[len(assets) // 2]} if assets else ():
                made = await _call(c, load, "POST", "/v1/contributions", json={
                    "contributor_id": contributor, "asset_id": asset_id,
                    "cost_amount": "2.50", "metadata": {"round": i}})
                if made is not None:
                    load.contributions[made["id"]] = made
                    load.costs[asset_id] = load.costs.get(asset_id, Decimal(0)) + Decimal("2.5")
            task = await _call(c, load, "POST", "/api/agent/tasks",
                               json={"direction": name, "task_type": "impl"})
            if task is not None:
                done = await _call(c, load, "PATCH", f"/api/agent/tasks/{task['id']}",
                                   json={"status": "running", "progress_pct": i % 100})
                if done is not None:
                    load.tasks[task["id"]] = "running"
                    running.append(task["id"])
            if len(running) > 3:
                task_id = running.pop(0)
                if await _call(c, load, "PATCH", f"/api/agent/tasks/{task_id}",
                               json={"status": "completed"}) is not None:
                    load.tasks[task_id] = "completed"
            i += 1


async def http_reader(url: str, load: HttpLoad, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        while not stop.is_set():
            for name in list(load.projects)[-10:]:
                await _call(c, load, "GET", f"/api/projects/pypi/{name}")
            for task_id in list(load.tasks)[-10:]:
                await _call(c, load, "GET", f"/api/agent/tasks/{task_id}")
            await _call(c, load, "GET", "/api/agent/tasks/count")


async def assert_acknowledged(url: str, load: HttpLoad) -> None:
    """Every acknowledged write reads back with its last acknowledged value."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        for name, version in load.projects.items():
            r = await c.get(f"/api/projects/pypi/{name}")
            assert r.status_code == 200 and r.json()["version"] == version, (name, r.text)
        for task_id, status in load.tasks.items():
            r = await c.get(f"/api/agent/tasks/{task_id}")
            assert r.status_code == 200 and r.json()["status"] == status, (task_id, r.text)
        for cid, made in load.contributions.items():
            r = await c.get(f"/v1/contributions/{cid}")
            assert r.status_code == 200 and r.json() == made, (cid, r.text)
        for asset_id, cost in load.costs.items():
            r = await c.get(f"/v1/assets/{asset_id}")
            assert Decimal(r.json()["total_cost"]) == cost, (asset_id, r.text)


def from_json(doc: dict[str, Any]) -> HttpLoad:
    load = HttpLoad(**{k: v for k, v in doc.items() if k not in ("costs", "started")})
    load.costs = {k: Decimal(v) for k, v in doc["costs"].items()}
    return load


async def run_until_terminated(url: str, writers: int = 4, readers: int = 2) -> HttpLoad:
    load, stop = HttpLoad(), asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("load running", flush=True)
    tasks = [asyncio.create_task(http_writer(url, f"w{n}", load, stop)) for n in range(writers)]
    tasks += [asyncio.create_task(http_reader(url, load, stop)) for _ in range(readers)]
    await asyncio.gather(*tasks)
    load.duration = time.monotonic() - load.started
    return load


if __name__ == "__main__":
    url, out = sys.argv[1], Path(sys.argv[2])
    done = asyncio.run(run_until_terminated(url))
    doc = asdict(done) | {"costs": {k: str(v) for k, v in done.costs.items()}}
    out.write_text(json.dumps(doc))
