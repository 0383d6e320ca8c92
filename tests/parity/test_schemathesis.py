"""schemathesis against the real API process on each backend: memory alone, PostgreSQL
alone, and the migration router in dual-write with half the reads from PostgreSQL.
Bounded (a fixed seed, few examples per operation, a time limit per backend), with the
checks that hold on any input: no 5xx, responses match their schema and content type,
and every status code the service answers is declared in its OpenAPI document. On the
router a full verify afterwards finds memory and PostgreSQL identical.

SCHEMATHESIS_EXAMPLES / SCHEMATHESIS_SECONDS / SCHEMATHESIS_SEED widen a run by hand.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from devcluster.api_process import LocalApi
from devcluster.stack import api_on_postgres

TOKEN = "schemathesis-admin-token"
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance")
EXAMPLES = os.environ.get("SCHEMATHESIS_EXAMPLES", "6")
SECONDS = os.environ.get("SCHEMATHESIS_SECONDS", "30")
SEED = os.environ.get("SCHEMATHESIS_SEED", "20261201")
BACKENDS = {
    "memory": {},
    "postgres": {"STORE_BACKEND": "postgres"},
    "router": {"DUAL_WRITE_MODE": "true", "READ_FROM_POSTGRES_PERCENT": "50"},
}


@contextmanager
def service(backend: str) -> Iterator[str]:
    env = {"ADMIN_TOKEN": TOKEN, "JOURNAL_FSYNC": "never", **BACKENDS[backend]}
    if backend == "memory":
        base = Path(tempfile.mkdtemp(prefix="sm-st-"))
        api = LocalApi(base / "data", base / "api.log", env=env)
        api.start()
        try:
            yield api.url
        finally:
            api.stop()
        return
    with api_on_postgres(env, database="sm_schemathesis") as stack:
        yield stack.api.url


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_schemathesis_finds_no_5xx_and_no_undeclared_answer(backend: str,
                                                           tmp_path: Path) -> None:
    with service(backend) as url:
        done = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json",
             "--checks", CHECKS, "--max-examples", EXAMPLES, "--max-time", SECONDS,
             "--seed", SEED, "--workers", "1", "--exclude-path-regex", "^/api/admin",
             "--suppress-health-check", "all", "--request-timeout", "10"],
            cwd=tmp_path, capture_output=True, text=True, timeout=int(SECONDS) + 120,
        )
        report = done.stdout[-6000:]
        assert done.returncode == 0, report + done.stderr[-2000:]
        assert " passed" in report and "generated" in report, report
        if backend == "router":
            verify = httpx.post(f"{url}/api/admin/consistency-check",
                                params={"sample": 1.0, "max_mismatch": 0, "max_missing": 0},
                                headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120)
            doc = verify.json()
            assert verify.status_code == 200 and doc["passed"], doc
            assert doc["missing_count"] == 0 and doc["different_count"] == 0, doc
            status = httpx.get(f"{url}/api/agent/store-status", timeout=10).json()
            failures = [status[f"{store}_store"]["dual_write_failures"]
                        for store in ("graph", "agent_task")]
            assert failures == [0, 0], status
