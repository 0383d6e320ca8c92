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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# and operator/, whose live-switch client the rollback reuses (as the image's PYTHONPATH has)
sys.path.insert(1, str(Path(__file__).resolve().parents[2] / "operator"))

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
EXIT_CODES_HELP = """exit codes:
  0  success
  1  the check or step failed (mismatches above the ceiling, an API error)
  2  usage or configuration error (bad arguments, missing DATABASE_URL/ADMIN_TOKEN)
  3  the API or PostgreSQL could not be reached
"""
TERMINATION_LOG = "/dev/termination-log"
TERMINATION_LIMIT = 4096
STORES = ("graph", "agent_task")


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
        help="also write the JSON summary here (default: $TERMINATION_LOG, else "
             f"{TERMINATION_LOG} when the kubelet has created it)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def add_stores(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stores", type=parse_stores, default=STORES,
                   help="comma list of the stores migrated (default graph,agent_task)")


def parse_stores(text: str) -> tuple[str, ...]:
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    if not names or any(n not in STORES for n in names) or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"a comma list of distinct {', '.join(STORES)}: {text!r}")
    return names


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


LONG_LISTS = ("missing", "different", "rejected_ids")


def _compact(summary: dict[str, Any]) -> str:
    """The summary for the termination log as valid JSON within Kubernetes' 4 KiB: long
    lists of ids go first (their counts stay), then nested detail, then long strings."""
    text = json.dumps(summary, default=str, sort_keys=True)
    if len(text.encode()) <= TERMINATION_LIMIT:
        return text

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in LONG_LISTS}
        return value

    trimmed = strip(summary)
    text = json.dumps(trimmed, default=str, sort_keys=True)
    if len(text.encode()) <= TERMINATION_LIMIT:
        return text
    flat = {k: (v[:200] if isinstance(v, str) else v) for k, v in trimmed.items()
            if not isinstance(v, (dict, list))}
    return json.dumps({**flat, "truncated": True}, default=str, sort_keys=True)[:TERMINATION_LIMIT]


def termination_path(given: str | None) -> str | None:
    """--termination-log, else $TERMINATION_LOG, else the kubelet's file if it exists
    (never created here: nothing is written under /dev that is not already there)."""
    if given:
        return given
    if os.environ.get("TERMINATION_LOG"):
        return os.environ["TERMINATION_LOG"]
    if os.path.exists(TERMINATION_LOG) and os.access(TERMINATION_LOG, os.W_OK):
        return TERMINATION_LOG
    return None


def finish(summary: dict[str, Any], code: int, termination_log: str | None) -> int:
    summary = {"exit_code": code, **summary}
    print(json.dumps(summary, default=str, indent=2, sort_keys=True))
    path = termination_path(termination_log)
    if path:
        try:
            Path(path).write_text(_compact(summary))
        except OSError as e:
            sys.stderr.write(f"could not write termination log {path}: {type(e).__name__}\n")
    return code


def succeed(summary: dict[str, Any], termination_log: str | None) -> int:
    summary["ok"] = True
    return finish(summary, EXIT_OK, termination_log)


def fail(summary: dict[str, Any], what: str, error: ScriptError, termination_log: str | None,
         flag: str = "ok") -> int:
    """Record `error` under `flag` (ok or passed) and say on stderr that `what` failed."""
    summary |= {flag: False, "error": error.message}
    sys.stderr.write(f"{what} failed: {error.message}\n")
    return finish(summary, error.code, termination_log)


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
    raise_for_answer(response)
    body: dict[str, Any] = response.json()
    return body


KEYS_PER_CALL = 1000
"""Keys per call of the admin routes that take a list of keys (verify/keys, repair)."""


def batches(items: list[Any]) -> list[list[Any]]:
    """`items` in lists of at most KEYS_PER_CALL."""
    return [items[i:i + KEYS_PER_CALL] for i in range(0, len(items), KEYS_PER_CALL)]


def call_admin_json(
    api_url: str, path: str, document: dict[str, Any], params: dict[str, Any] | None = None,
    timeout: float = 3600.0,
) -> dict[str, Any]:
    """POST a JSON document to an admin endpoint; errors as call_admin."""
    import httpx

    url = api_url.rstrip("/") + path
    headers = {"Authorization": f"Bearer {admin_token()}"}
    try:
        response = httpx.post(url, json=document, params=params, headers=headers,
                              timeout=timeout)
    except httpx.HTTPError as e:
        raise ScriptError(EXIT_UNREACHABLE, f"API unreachable ({type(e).__name__})") from None
    raise_for_answer(response)
    body: dict[str, Any] = response.json()
    return body


def raise_for_answer(response: httpx.Response) -> None:
    """401/403 -> exit 2 (configuration), 503 -> exit 3 (unreachable), other >= 400 -> 1."""
    if response.status_code in (401, 403):
        raise ScriptError(EXIT_USAGE, f"API refused the admin token ({response.status_code}): "
                          f"{_detail(response)}")
    if response.status_code == 503:
        raise ScriptError(EXIT_UNREACHABLE, f"API answered 503: {_detail(response)}")
    if response.status_code >= 400:
        raise ScriptError(EXIT_FAILED, f"API answered {response.status_code}: {_detail(response)}")


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", ""))[:300]
    except ValueError:
        return response.text[:300]


def database_url(given: str | None) -> str:
    from app.settings import check_database_url

    url = given or os.environ.get("DATABASE_URL", "")
    if not url:
        raise ScriptError(EXIT_USAGE, "no database: pass --database-url or set DATABASE_URL")
    try:
        return check_database_url(url)
    except ValueError as e:
        raise ScriptError(EXIT_USAGE, f"the database URL {e}") from None


def load_snapshot(path: str) -> tuple[Any, list[Any]]:
    """(GraphRecords, list[AgentTask]) from a snapshot file (app.stores.snapshot)."""
    from app.stores.ports import GraphRecords
    from app.stores.snapshot import SnapshotFormatError, read_snapshot

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
    from app.settings import Settings
    from app.stores.postgres.graph_store import PostgresGraphStore
    from app.stores.postgres.pool import Database
    from app.stores.postgres.task_store import PostgresAgentTaskStore
    from pydantic import SecretStr

    try:
        settings = Settings(
            database_url=SecretStr(dsn), postgres_pool_size=2, postgres_max_overflow=2
        )
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
