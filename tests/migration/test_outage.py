"""PostgreSQL stopped in the middle of a dual-write load, end to end over HTTP.

Real processes only: a PostgreSQL server of this test's own (so it can be stopped), the
API as `python -m app` in dual-write mode with half the reads on PostgreSQL, and the
verify and backfill scripts as the Jobs run them. While the server is down every
request must still succeed from memory, the failures must be counted, each record
whose copy failed must wait on the copy-retry queue, and /api/ready must say 503; once
it is back the queue must copy exactly those records again by itself, verify must then
find nothing without any backfill (which, run anyway, changes nothing), and every
record must read back from PostgreSQL alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from devcluster.api_process import LocalApi
from devcluster.net import wait_http
from devcluster.postgres import PG_BIN, PostgresServer
from devcluster.stack import api_on_postgres

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "outage-test-token"
pytestmark = pytest.mark.slow


def pg_ctl(server: PostgresServer, *args: str) -> None:
    assert server.datadir is not None
    cmd = [str(PG_BIN / "pg_ctl"), "-D", str(server.datadir), *args]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    subprocess.run(cmd, check=True, capture_output=True)


def restart_postgres(server: PostgresServer) -> None:
    assert server.datadir is not None
    port = urlsplit(server.dsn).port
    sockdir = server.datadir.parent / "sock"
    opts = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={sockdir}"
        " -c max_connections=200 -c fsync=off -c synchronous_commit=off"
    )
    log = str(server.datadir.parent / "server.log")
    pg_ctl(server, "-o", opts, "-l", log, "-w", "-t", "30", "start")


def run_script(name: str, api: LocalApi, *args: str) -> tuple[int, dict[str, Any]]:
    env = {
        **os.environ,
        "ADMIN_TOKEN": TOKEN,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "api"), str(ROOT)]),
    }
    proc = subprocess.run(
        [sys.executable, str(ROOT / "api" / "scripts" / name), "--api-url", api.url, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout
    start = 0 if out.startswith("{") else out.rindex("\n{") + 1
    return proc.returncode, json.loads(out[start:])


@pytest.fixture
def world() -> Iterator[tuple[PostgresServer, LocalApi]]:
    env = {
        "DUAL_WRITE_MODE": "true",
        "READ_FROM_POSTGRES_PERCENT": "50",
        "ADMIN_TOKEN": TOKEN,
        "SECOND_WRITE_TIMEOUT": "0.5",
        "POSTGRES_POOL_SIZE": "2",
        "POSTGRES_POOL_TIMEOUT": "1",
        "READY_TIMEOUT": "1",
    }
    with api_on_postgres(env) as stack:
        yield stack.server, stack.api


class Writer:
    """Writes through the API and remembers what each acknowledged write created."""

    def __init__(self, client: httpx.Client) -> None:
        self.c = client
        self.keys: dict[str, set[str]] = {
            k: set() for k in ("projects", "contributors", "assets", "contributions", "tasks")
        }

    def ok(self, r: httpx.Response, status: int) -> dict[str, Any]:
        assert r.status_code == status, (r.status_code, r.text)
        body: dict[str, Any] = r.json()
        return body

    def batch(self, tag: str, n: int) -> dict[str, set[str]]:
        made: dict[str, set[str]] = {k: set() for k in self.keys}
        for i in range(n):
            name = f"{tag}-{i}"
            self.ok(self.c.put(f"/api/projects/pypi/{name}", json={"version": "1"}), 200)
            made["projects"].add(f"pypi/{name}")
            person = self.ok(self.c.post("/v1/contributors", json={"name": name}), 201)
            made["contributors"].add(person["id"])
            asset = self.ok(self.c.post("/v1/assets", json={"type": "CODE", "name": name}), 201)
            made["assets"].add(asset["id"])
            body = {"contributor_id": person["id"], "asset_id": asset["id"], "cost_amount": "2.50"}
            paid = self.ok(self.c.post("/v1/contributions", json=body), 201)
            made["contributions"].add(paid["id"])
            task = {"direction": name, "task_type": "impl"}
            made["tasks"].add(self.ok(self.c.post("/api/agent/tasks", json=task), 201)["id"])
        for kind, keys in made.items():
            self.keys[kind] |= keys
        return made

    def read_all(self) -> None:
        for key in self.keys["projects"]:
            self.ok(self.c.get(f"/api/projects/{key}"), 200)
        for cid in self.keys["contributors"]:
            self.ok(self.c.get(f"/v1/contributors/{cid}"), 200)
        for aid in self.keys["assets"]:
            assert self.ok(self.c.get(f"/v1/assets/{aid}"), 200)["total_cost"] == "2.50"
        for cid in self.keys["contributions"]:
            self.ok(self.c.get(f"/v1/contributions/{cid}"), 200)
        for tid in self.keys["tasks"]:
            self.ok(self.c.get(f"/api/agent/tasks/{tid}"), 200)


def metric_sum(text: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") or line.startswith(name + " ")
    )


def queues(client: httpx.Client) -> dict[str, dict[str, Any]]:
    status = client.get("/api/agent/store-status").json()
    return {store: status[store]["copy_retry"] for store in ("graph_store", "agent_task_store")}


def test_outage_loses_nothing_and_the_retry_queue_heals_exactly(
    world: tuple[PostgresServer, LocalApi],
) -> None:
    server, api = world
    client = httpx.Client(base_url=api.url, timeout=10.0)
    writer = Writer(client)
    writer.batch("before", 10)
    assert client.get("/api/ready").status_code == 200
    code, clean = run_script("verify_data_consistency.py", api, "--sample", "1.0")
    assert code == 0 and clean["mismatches"] == 0, clean
    assert {q["queue_depth"] for q in queues(client).values()} == {0}

    pg_ctl(server, "-m", "fast", "-w", "stop")
    during = writer.batch("during", 8)
    updated = sorted(writer.keys["tasks"] - during["tasks"])[0]
    writer.ok(client.patch(f"/api/agent/tasks/{updated}", json={"status": "running"}), 200)
    writer.read_all()
    ready = client.get("/api/ready")
    assert ready.status_code == 503 and ready.json()["checks"]["postgres"] != "ok"
    metrics = client.get("/metrics").text
    assert metric_sum(metrics, "storemigration_dual_write_failures_total") >= 8 * 5
    assert metric_sum(metrics, "storemigration_read_fallbacks_total") > 0
    waiting = queues(client)
    graph_keys = sum(len(during[k]) for k in ("projects", "contributors", "assets",
                                               "contributions"))
    assert waiting["graph_store"]["queue_depth"] == graph_keys == 32
    assert waiting["agent_task_store"]["queue_depth"] == len(during["tasks"]) + 1
    assert metric_sum(metrics, "storemigration_copy_retry_queue_depth") == graph_keys + 9

    restart_postgres(server)
    wait_http(f"{api.url}/api/ready", timeout=30)
    deadline = time.monotonic() + 30
    while any(q["queue_depth"] for q in queues(client).values()):
        assert time.monotonic() < deadline, queues(client)
        time.sleep(0.2)
    healed = queues(client)
    assert healed["graph_store"]["landed"] == graph_keys
    assert healed["agent_task_store"]["landed"] == len(during["tasks"]) + 1

    code, report = run_script("verify_data_consistency.py", api, "--sample", "1.0")
    assert code == 0 and report["mismatches"] == 0 and report["missing_count"] == 0, report
    assert report["checked"] == sum(len(v) for v in writer.keys.values())  # every record

    code, healed_by_backfill = run_script("backfill_postgres.py", api)
    assert code == 0, healed_by_backfill
    code, after = run_script("verify_data_consistency.py", api, "--sample", "1.0")
    assert code == 0 and after["mismatches"] == 0, after

    api.restart({**api.env, "READ_FROM_POSTGRES_PERCENT": "100"})
    reads = httpx.Client(base_url=api.url, timeout=10.0)
    writer.c = reads
    writer.read_all()
    served = reads.get("/api/agent/store-status").json()["graph_store"]["reads_served"]
    assert served["memory"] == 0 and served["postgres"] > 0, served
