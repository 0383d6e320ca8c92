"""What the migration scripts share: exit codes, the admin API client, the progress
bar, the JSON summary (stdout and the Kubernetes termination log), and opening a
snapshot file or a PostgreSQL database for the offline modes.

Scripts run as `python api/scripts/<name>.py` (from a Job or a shell), so this module
puts `api/` on sys.path for the `app` package. No message printed here ever includes a
DSN or a token: errors are reported by class.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
EXIT_CODES_HELP = """exit codes:
  0  success
  1  the check or step failed (mismatches above the ceiling, an API error)
  2  usage or configuration error (bad arguments, missing DATABASE_URL/ADMIN_TOKEN)
  3  the API or PostgreSQL could not be reached
"""
TERMINATION_LOG = "/dev/termination-log"
TERMINATION_LIMIT = 4000


class ScriptError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=description,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--termination-log",
        default=None,
        help=f"also write the JSON summary here (default {TERMINATION_LOG} when writable)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


class Progress:
    """A plain stderr progress bar: `label [#####.....] done/total`."""

    def __init__(self, label: str, enabled: bool = True, width: int = 30) -> None:
        self.label, self.enabled, self.width = label, enabled, width
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if done < total and now - self._last < 0.2:
            return
        self._last = now
        frac = done / total if total else 1.0
        bar = "#" * int(frac * self.width)
        sys.stderr.write(
            f"\r{self.label} [{bar:<{self.width}}] {done}/{total} ({frac:.0%})"
        )
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _compact(summary: dict[str, Any]) -> str:
    """The summary for the termination log, within Kubernetes' 4 KiB: long lists of
    ids are dropped (counts stay) when the whole does not fit."""
    text = json.dumps(summary, default=str, sort_keys=True)
    if len(text) <= TERMINATION_LIMIT:
        return text

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("missing", "different")}
        return value

    text = json.dumps(strip(summary), default=str, sort_keys=True)
    return text[:TERMINATION_LIMIT]


def finish(summary: dict[str, Any], code: int, termination_log: str | None) -> int:
    summary = {"exit_code": code, **summary}
    print(json.dumps(summary, default=str, indent=2, sort_keys=True))
    path = termination_log
    if path is None and os.path.exists(TERMINATION_LOG) and os.access(TERMINATION_LOG, os.W_OK):
        path = TERMINATION_LOG
    if path:
        try:
            Path(path).write_text(_compact(summary))
        except OSError as e:
            sys.stderr.write(f"could not write termination log {path}: {type(e).__name__}\n")
    return code


def admin_token() -> str:
    token = os.environ.get("ADMIN_TOKEN", "")
    if not token:
        raise ScriptError(EXIT_USAGE, "ADMIN_TOKEN is not set in the environment")
    return token


def call_admin(
    api_url: str, method: str, path: str, params: dict[str, Any] | None = None,
    timeout: float = 3600.0,
) -> dict[str, Any]:
    """Call an admin endpoint; raises ScriptError(3) when unreachable, (1) on an error
    answer, (2) on 401/403 (a configuration problem)."""
    import httpx

    url = api_url.rstrip("/") + path
    headers = {"Authorization": f"Bearer {admin_token()}"}
    try:
        response = httpx.request(method, url, params=params, headers=headers, timeout=timeout)
    except httpx.HTTPError as e:
        raise ScriptError(EXIT_UNREACHABLE, f"API unreachable ({type(e).__name__})") from None
    if response.status_code in (401, 403):
        raise ScriptError(EXIT_USAGE, f"API refused the admin token ({response.status_code}): "
                          f"{_detail(response)}")
    if response.status_code == 503:
        raise ScriptError(EXIT_UNREACHABLE, f"API answered 503: {_detail(response)}")
    if response.status_code >= 400:
        raise ScriptError(EXIT_FAILED, f"API answered {response.status_code}: {_detail(response)}")
    body: dict[str, Any] = response.json()
    return body


def _detail(response: Any) -> str:
    try:
        return str(response.json().get("detail", ""))[:300]
    except ValueError:
        return response.text[:300]


def database_url(given: str | None) -> str:
    url = given or os.environ.get("DATABASE_URL", "")
    if not url:
        raise ScriptError(EXIT_USAGE, "no database: pass --database-url or set DATABASE_URL")
    return url


def load_snapshot(path: str) -> tuple[Any, list[Any]]:
    """(GraphRecords, list[AgentTask]) from a snapshot file (app.adapters.snapshot)."""
    from app.adapters.graph_store import GraphRecords
    from app.adapters.snapshot import SnapshotFormatError, read_snapshot

    try:
        snap = read_snapshot(Path(path))
    except FileNotFoundError:
        raise ScriptError(EXIT_USAGE, f"snapshot file not found: {path}") from None
    except SnapshotFormatError as e:
        raise ScriptError(EXIT_USAGE, f"{path}: {e}") from None
    return snap.graph or GraphRecords(), snap.agent_tasks or []


async def open_postgres(dsn: str) -> tuple[Any, Any, Any]:
    """(graph_store, task_store, database) on a connected pool; raises ScriptError(3)
    when PostgreSQL cannot be reached."""
    from app.adapters.postgres_agent_task_store import PostgresAgentTaskStore
    from app.adapters.postgres_graph_store import PostgresGraphStore
    from app.db.pool import Database
    from app.settings import Settings

    try:
        settings = Settings(database_url=dsn, postgres_pool_size=2, postgres_max_overflow=2)
        database = Database.from_settings(settings)
    except ValueError as e:
        raise ScriptError(EXIT_USAGE, f"invalid database settings ({type(e).__name__})") from None
    try:
        await database.connect()
    except Exception as e:  # noqa: BLE001 - report the class only: a message may hold the DSN
        detail = getattr(e, "detail", type(e).__name__)
        raise ScriptError(EXIT_UNREACHABLE, f"PostgreSQL unreachable: {detail}") from None
    return PostgresGraphStore(database), PostgresAgentTaskStore(database), database


class Frozen:
    """Records held in hand (a snapshot file) offered as the export face of a store."""

    def __init__(self, graph: Any, tasks: list[Any]) -> None:
        self.graph, self.tasks = graph, tasks

    async def export_graph(self) -> Any:
        return self.graph

    async def export_tasks(self) -> list[Any]:
        return self.tasks
