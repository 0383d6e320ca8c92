"""What "no migration flags" means (Settings.postgres_only): every store's backend is
postgres and no migration setting is away from its default. Only then does the app come
from app.postgres_service: no migration router, no admin routes of the migration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from app.main import create_app
from app.settings import Settings

DSN = "postgresql://app@127.0.0.1/app"
RETIRED_ROUTES = {"/api/admin/switches", "/api/admin/backfill", "/api/admin/snapshot",
                  "/api/admin/consistency-check", "/api/admin/rehydrate",
                  "/api/admin/backfill/batch", "/api/admin/backfill/progress",
                  "/api/admin/verify/chunk", "/api/admin/verify/keys", "/api/admin/verify/memory",
                  "/api/admin/repair"}


@pytest.mark.parametrize(("env", "left"), [
    ({"store_backend": "postgres"}, []),
    ({"store_backend": "postgres", "dual_write_mode": False, "in_memory_writes": True,
      "read_from_postgres_percent": 0, "shadow_read_percent": 0}, []),
    ({"graph_store_backend": "postgres", "agent_task_store_backend": "postgres"}, []),
    ({"store_backend": "postgres", "shadow_read_percent": 1}, ["SHADOW_READ_PERCENT"]),
    ({"store_backend": "postgres", "read_from_postgres_percent": 100},
     ["READ_FROM_POSTGRES_PERCENT"]),
    ({"store_backend": "postgres", "dual_write_mode": True}, ["DUAL_WRITE_MODE"]),
    ({"store_backend": "postgres", "graph_store_in_memory_writes": True},
     ["GRAPH_STORE_IN_MEMORY_WRITES"]),
])
def test_postgres_only_means_backend_postgres_and_every_migration_setting_at_rest(
    env: dict[str, Any], left: list[str]
) -> None:
    settings = Settings(database_url=DSN, **env)
    assert settings.migration_settings_set() == left
    assert settings.postgres_only() is (left == [])


@pytest.mark.parametrize("env", [
    {},
    {"store_backend": "memory", "dual_write_mode": True},
    {"graph_store_backend": "postgres"},
    {"store_backend": "postgres", "agent_task_store_backend": "memory"},
])
def test_a_store_still_on_memory_is_not_postgres_only(env: dict[str, Any]) -> None:
    assert Settings(database_url=DSN, **env).postgres_only() is False


def paths(**env: Any) -> set[str]:
    """The paths the app serves, as its OpenAPI document lists them."""
    app = create_app(Settings(database_url=DSN, store_backend="postgres", **env))
    return set(app.openapi()["paths"])


def test_create_app_serves_the_migration_routes_only_while_the_migration_runs(
    tmp_path: Path
) -> None:
    absent, journal = tmp_path / "absent", tmp_path / "journal"
    (journal / "graph").mkdir(parents=True)
    (journal / "graph" / "journal-0001.log").write_bytes(b"")
    direct = paths(data_dir=absent)
    assert direct & RETIRED_ROUTES == set()
    assert {"/api/ready", "/api/agent/store-status", "/api/health"} <= direct
    for routed in (paths(data_dir=absent, shadow_read_percent=1), paths(data_dir=journal)):
        assert RETIRED_ROUTES <= routed and direct == routed - RETIRED_ROUTES
