"""No credential ever reaches a log, an error or a metric: the API as a real process,
given every malformed DATABASE_URL form that once leaked, and a PostgreSQL that is
down, refuses the password or lacks the database. Every log line and every answer of
/api/ready, /api/agent/store-status and /metrics is searched for the password."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from app.settings import ConfigurationError, Settings, load_settings
from pydantic import ValidationError

from tests.api.test_process import ROOT, env, free_port
from tests.harness.postgres import PgDatabase

PASSWORD = "Pw-s3cr3t-Q7"
MALFORMED = [
    f"postgresql:/u:{PASSWORD}@h/db",
    f"u:{PASSWORD}@h:5432/db",
    f"postgresql//u:{PASSWORD}@h/db",
    f"post gresql://u:{PASSWORD}@h/db",
    f"postgresql://u:{PASSWORD}@h:port/db",
    f"postgresql://u:{PASSWORD}@[::1/db",
]
SCRIPTS = ["backfill_postgres.py", "verify_data_consistency.py", "migrate.py"]


def run_api(tmp_path: Path, url: str, **extra: str) -> subprocess.Popen[bytes]:
    log = (tmp_path / "api.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "app"],
        env=env(DATA_DIR=str(tmp_path / "data"), PORT=extra.pop("PORT", str(free_port())),
                DATABASE_URL=url, DUAL_WRITE_MODE="true", **extra),
        stdout=log, stderr=subprocess.STDOUT)


@pytest.mark.parametrize("url", MALFORMED)
def test_a_malformed_url_stops_start_up_naming_the_variable_not_the_value(
    tmp_path: Path, url: str
) -> None:
    process = run_api(tmp_path, url)
    assert process.wait(timeout=60) != 0
    log = (tmp_path / "api.log").read_text()
    assert "DATABASE_URL" in log and "not a PostgreSQL URL" in log, log
    assert "Traceback" not in log, log
    assert PASSWORD not in log
    with pytest.raises(ValidationError) as caught:
        Settings(database_url=url, dual_write_mode=True)
    assert PASSWORD not in str(caught.value)  # hide_input_in_errors
    with pytest.raises(ConfigurationError) as stopped:
        load_settings(database_url=url, dual_write_mode=True)
    assert "DATABASE_URL" in str(stopped.value) and PASSWORD not in str(stopped.value)


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("url", MALFORMED[:3])
def test_scripts_refuse_a_malformed_url_without_showing_it(script: str, url: str) -> None:
    args = [sys.executable, str(ROOT / "api" / "scripts" / script), "--database-url", url]
    if script != "migrate.py":
        args += ["--snapshot", "/nonexistent.json", "--quiet"]
    done = subprocess.run(args, env=env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "not a PostgreSQL URL" in done.stdout + done.stderr
    assert PASSWORD not in done.stdout + done.stderr


def failing_urls(pg_database: PgDatabase) -> dict[str, str]:
    parts = urlsplit(pg_database.app_dsn)
    host = f"{parts.hostname}:{parts.port}"
    return {
        "server down": f"postgresql://storemigration_app:{PASSWORD}@127.0.0.1:{free_port()}/x",
        "wrong password": f"postgresql://storemigration_app:{PASSWORD}@{host}{parts.path}",
        "missing database": f"postgresql://{parts.username}:{PASSWORD}@{host}/no_such_db",
    }


@pytest.mark.parametrize("case", ["server down", "wrong password", "missing database"])
def test_a_failing_database_never_shows_the_password(
    tmp_path: Path, pg_database: PgDatabase, case: str
) -> None:
    url = failing_urls(pg_database)[case]
    port = free_port()
    process = run_api(tmp_path, url, PORT=str(port), ADMIN_TOKEN="t0ken")
    base = f"http://127.0.0.1:{port}"
    try:
        answers: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "api.log").read_text()
            try:
                ready = httpx.get(f"{base}/api/ready", timeout=10)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert ready.status_code == 503, ready.text
        time.sleep(6)  # at least one retry of the background connect, logged
        for path in ("/api/ready", "/api/agent/store-status", "/metrics"):
            r = httpx.get(base + path, timeout=10, headers={"Authorization": "Bearer t0ken"})
            answers.append(r.text)
        write = httpx.post(f"{base}/v1/contributors", json={"name": "still served"}, timeout=10)
        assert write.status_code == 201, write.text  # memory is trusted: served, counted
    finally:
        process.terminate()
        process.wait(timeout=30)
    log = (tmp_path / "api.log").read_text()
    assert "PostgreSQL" in log, log  # the failure was logged ...
    for text in [log, *answers]:
        assert PASSWORD not in text  # ... and the password never
