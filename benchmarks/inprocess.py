"""In-process cost of a request: the app called as ASGI, no sockets, memory stores.

`.venv/bin/python -m benchmarks inprocess [--requests N] [--rounds R]` times hot routes
through FastAPI (FAST_PATH=false) and through the fast path, alternately, in CPU time of
this process (`time.process_time`), which another process's load disturbs far less than
wall time. Prints microseconds per request; writes benchmarks/results/inprocess.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from app.main import create_app
from app.settings import Settings
from app.stores.memory.graph_store import MemoryGraphStore
from app.stores.memory.task_store import MemoryAgentTaskStore
from fastapi import FastAPI

from benchmarks.common import RESULTS, machine

BODY = json.dumps({"version": "1.0.0", "description": "x"}).encode()
ROUTES: list[tuple[str, str, str, bytes, bytes]] = [
    ("GET /api/projects/{ecosystem}/{name}", "GET", "/api/projects/npm/a", b"", b""),
    ("PUT /api/projects/{ecosystem}/{name}", "PUT", "/api/projects/npm/a", b"", BODY),
    ("GET /api/search", "GET", "/api/search", b"q=a&limit=5", b""),
    ("GET /api/projects/count", "GET", "/api/projects/count", b"", b""),
]


async def call(app: FastAPI, method: str, path: str, query: bytes, body: bytes) -> int:
    pending = [{"type": "http.request", "body": body, "more_body": False}]
    status = 0

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    headers = [(b"content-type", b"application/json")] if body else []
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "path": path, "raw_path": path.encode(), "query_string": query,
             "root_path": "", "scheme": "http", "server": ("api", 80),
             "client": ("127.0.0.1", 1), "headers": headers}
    await app(scope, receive, send)  # type: ignore[arg-type]
    return status


async def measure(fast_path: bool, requests: int) -> dict[str, float]:
    app = create_app(Settings(fast_path=fast_path), graph_store=MemoryGraphStore(),
                     task_store=MemoryAgentTaskStore())
    assert await call(app, "PUT", "/api/projects/npm/a", b"", BODY) == 200
    out: dict[str, float] = {}
    for name, method, path, query, body in ROUTES:
        for _ in range(requests // 10):
            await call(app, method, path, query, body)
        start = time.process_time()
        for _ in range(requests):
            status = await call(app, method, path, query, body)
        out[name] = (time.process_time() - start) / requests * 1e6
        assert status == 200, (name, status)
    return out


async def run(requests: int, rounds: int) -> dict[str, Any]:
    result: dict[str, Any] = {"machine": machine(), "requests": requests, "rounds": []}
    for _ in range(rounds):
        result["rounds"].append({"fastapi_us": await measure(False, requests),
                                 "fast_path_us": await measure(True, requests)})
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks inprocess")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "inprocess.json")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.requests, args.rounds))
    print(f"us per request (CPU of this process), load average at start "
          f"{result['machine']['loadavg_at_start'][0]:.2f}")
    for i, r in enumerate(result["rounds"], 1):
        for name in r["fastapi_us"]:
            print(f"  round {i}  {name:40} FastAPI {r['fastapi_us'][name]:6.1f}   "
                  f"fast path {r['fast_path_us'][name]:6.1f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
