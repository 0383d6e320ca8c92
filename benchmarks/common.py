"""What both benchmarks share: percentiles, the synthetic project rows, a throwaway PostgreSQL.

Numbers only, no assertions: absolute times drift between machines and with the load
other processes put on the 2 shared cores, ratios measured in one run do not.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app.models import Project

from devcluster.postgres import (
    APP_PASSWORD,
    create_migrated_database,
    drop_database,
    start_postgres,
    with_database,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
T0 = datetime(2025, 1, 1, tzinfo=UTC)
WORDS = ["http", "json", "yaml", "data", "flask", "react", "test", "core", "util", "net"]


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(samples: list[float]) -> dict[str, float]:
    """p50/p95/p99 in ms and the ops/s of one caller running the samples back to back."""
    total = sum(samples) or 1e-9
    return {"ops_s": len(samples) / total, "p50_ms": pct(samples, 0.50) * 1e3,
            "p95_ms": pct(samples, 0.95) * 1e3, "p99_ms": pct(samples, 0.99) * 1e3,
            "n": len(samples)}


def name_of(i: int, offset: int = 0) -> str:
    return f"{WORDS[i % 10]}-{WORDS[(i // 10) % 10]}-{offset + i}"


def projects(n: int, offset: int = 0, ecosystem: str | None = None) -> list[Project]:
    return [Project(id=offset + i + 1, ecosystem=ecosystem or ("npm", "pypi", "cargo")[i % 3],
                    name=name_of(i, offset), version="1.0.0",
                    description=f"{WORDS[(i * 7) % 10]} library number {i}",
                    created_at=T0 + timedelta(microseconds=i),
                    updated_at=T0 + timedelta(microseconds=i)) for i in range(n)]


@asynccontextmanager
async def database() -> AsyncIterator[tuple[str, str]]:
    """(owner_dsn, app_dsn) of a fresh migrated database on a durable server (default
    fsync/synchronous_commit, for honest numbers) started here, or on DATABASE_URL's."""
    server = None
    url = os.environ.get("DATABASE_URL")
    if not url:
        server = start_postgres(durable=True)  # owns its temp dir and removes it on stop
        url = server.dsn
    name = f"sm_bench_{uuid.uuid4().hex[:8]}"
    try:
        await create_migrated_database(url, name)
        try:
            yield (with_database(url, name),
                   with_database(url, name, "storemigration_app", APP_PASSWORD))
        finally:
            await drop_database(url, name)
    finally:
        if server is not None:
            server.stop()


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "loadavg_at_start": os.getloadavg()}
