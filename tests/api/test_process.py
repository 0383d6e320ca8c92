"""`python -m app` as a real process: it survives SIGKILL with every acknowledged write,
and refuses to start on a bad environment with a message naming the variable."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env(**extra: str) -> dict[str, str]:
    base = {k: os.environ[k] for k in BASE_ENV if k in os.environ}
    return base | {"PYTHONPATH": str(ROOT / "api"), "HOST": "127.0.0.1"} | extra


class Api:
    def __init__(self, data_dir: Path, log: Path) -> None:
        self.data_dir, self.log = data_dir, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app"],
                env=env(DATA_DIR=str(self.data_dir), PORT=str(self.port), JOURNAL_FSYNC="always"),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"API exited {self.process.returncode}: {self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise TimeoutError(f"API did not answer: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    server = Api(tmp_path / "data", tmp_path / "api.log")
    try:
        yield server
    finally:
        server.kill()


def write_everything(c: httpx.Client) -> None:
    def ok(response: httpx.Response, status: int = 200) -> Any:
        assert response.status_code == status, response.text
        return response.json()

    ok(c.put("/api/projects/pypi/app", json={"version": "1.0", "description": "the app"}))
    ok(c.put("/api/projects/pypi/lib", json={"version": "2.0"}))
    ok(c.put("/api/projects/pypi/app", json={"version": "1.1"}))
    ok(
        c.post("/api/projects/pypi/app/dependencies", json={"ecosystem": "pypi", "name": "lib"}),
        201,
    )
    people = [
        ok(c.post("/v1/contributors", json={"name": n, "email": f"{n}@x.org"}), 201)
        for n in ("ada", "bob")
    ]
    asset = ok(c.post("/v1/assets", json={"type": "MODEL", "description": "weights"}), 201)
    for person, cost, meta in ((people[0], "100.00", {"has_tests": True}), (people[1], "50", {})):
        ok(
            c.post(
                "/v1/contributions",
                json={
                    "contributor_id": person["id"],
                    "asset_id": asset["id"],
                    "cost_amount": cost,
                    "metadata": meta,
                },
            ),
            201,
        )
    tasks = [
        ok(c.post("/api/agent/tasks", json={"direction": f"job {i}", "task_type": t}), 201)
        for i, t in enumerate(("spec", "impl", "review"))
    ]
    ok(
        c.patch(
            f"/api/agent/tasks/{tasks[0]['id']}", json={"status": "running", "progress_pct": 40}
        )
    )
    ok(c.patch(f"/api/agent/tasks/{tasks[0]['id']}", json={"status": "completed", "output": "ok"}))
    ok(c.patch(f"/api/agent/tasks/{tasks[1]['id']}", json={"status": "failed"}))


def read_everything(c: httpx.Client) -> dict[str, Any]:
    assets = c.get("/v1/assets").json()
    tasks = c.get("/api/agent/tasks").json()
    return {
        "projects": [c.get(f"/api/projects/pypi/{n}").json() for n in ("app", "lib")],
        "project_count": c.get("/api/projects/count").json(),
        "dependents": c.get("/api/projects/pypi/lib/dependents").json(),
        "search": c.get("/api/search", params={"q": "app"}).json(),
        "contributors": c.get("/v1/contributors").json(),
        "assets": assets,
        "contributions": c.get("/v1/contributions").json(),
        "asset_contributions": [
            c.get(f"/v1/assets/{a['id']}/contributions").json() for a in assets
        ],
        "tasks": tasks,
        "task_details": [c.get(f"/api/agent/tasks/{t['id']}").json() for t in tasks["tasks"]],
        "count": c.get("/api/agent/tasks/count").json(),
        "usage": c.get("/api/agent/usage").json(),
    }


def test_sigkill_loses_no_acknowledged_write(api: Api) -> None:
    api.start()
    with httpx.Client(base_url=api.url, timeout=10) as c:
        write_everything(c)
        before = read_everything(c)
    assert before["project_count"] == {"count": 2} and len(before["contributors"]) == 2
    assert before["count"]["total"] == 3
    api.kill()
    api.start()
    with httpx.Client(base_url=api.url, timeout=10) as c:
        after = read_everything(c)
        assert after == before
        new = c.post("/v1/contributors", json={"name": "carol", "email": "ada@x.org"})
        assert new.status_code == 409, "the unique email index survived the restart"
        assert c.put("/api/projects/pypi/new", json={}).json()["id"] not in {
            p["id"] for p in before["projects"]
        }


def test_big_body_over_real_http_is_413(api: Api) -> None:
    api.start()
    big = b'{"name": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    try:
        response = httpx.post(
            f"{api.url}/v1/contributors",
            content=big,
            timeout=30,
            headers={"content-type": "application/json"},
        )
    except httpx.TransportError:
        pytest.fail("the server dropped the connection instead of answering 413")
    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]
    assert httpx.get(f"{api.url}/api/health").status_code == 200


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("JOURNAL_FSYNC", "sometimes"),
        ("READ_FROM_POSTGRES_PERCENT", "150"),
        ("TASK_ROUTING", "{not json"),
        ("TASK_ROUTING", '{"deploy": {"model": "m"}}'),
        ("PORT", "http"),
    ],
)
def test_bad_environment_stops_startup_naming_the_variable(
    tmp_path: Path, variable: str, value: str
) -> None:
    settings = {"DATA_DIR": str(tmp_path), "PORT": str(free_port())} | {variable: value}
    result = subprocess.run(
        [sys.executable, "-m", "app"], env=env(**settings), capture_output=True, timeout=60
    )
    assert result.returncode != 0
    message = result.stderr.decode()
    assert variable in message, message
    assert "Traceback" not in message, message
