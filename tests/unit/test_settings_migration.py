"""Start-up rejects migration switches that would serve wrong answers or lose data."""

from __future__ import annotations

import pytest
from app.settings import ConfigurationError, Settings, load_settings

DSN = "postgresql://app@127.0.0.1/app"


@pytest.mark.parametrize(
    "env",
    [
        {"read_from_postgres_percent": 30},
        {"graph_store_read_from_postgres_percent": 10},
        {"agent_task_store_read_from_postgres_percent": 100},
        {"dual_write_mode": True, "agent_task_store_dual_write_mode": False,
         "read_from_postgres_percent": 50},
    ],
)
def test_reading_postgres_without_dual_write_is_refused(env: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError) as e:
        load_settings(database_url=DSN, **env)
    assert "READ_FROM_POSTGRES_PERCENT" in str(e.value)
    assert "DUAL_WRITE_MODE" in str(e.value)


def test_reading_postgres_is_fine_with_dual_write_or_postgres_backend() -> None:
    assert Settings(database_url=DSN, dual_write_mode=True, read_from_postgres_percent=40)
    assert Settings(database_url=DSN, store_backend="postgres", read_from_postgres_percent=40)
    assert Settings(database_url=DSN, read_from_postgres_percent=0)


@pytest.mark.parametrize(
    "env",
    [{}, {"dual_write_mode": True, "in_memory_writes": False,
          "read_from_postgres_percent": 100}],
)
def test_rehydrate_on_start_needs_memory_trusted_dual_write(env: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError, match="REHYDRATE_ON_START"):
        load_settings(database_url=DSN, rehydrate_on_start=True, **env)
    assert Settings(database_url=DSN, dual_write_mode=True, rehydrate_on_start=True)
    assert not Settings().rehydrate_on_start


def test_rehydrate_on_start_accepts_a_one_store_rollback() -> None:
    """A one-store migration sets only the per-store switches; the operator's rollback
    still uses the global REHYDRATE_ON_START, which must then be accepted."""
    settings = Settings(
        database_url=DSN,
        graph_store_dual_write_mode=True,
        graph_store_in_memory_writes=True,
        graph_store_read_from_postgres_percent=100,
        rehydrate_on_start=True,
    )
    assert settings.store_mode("graph").write_target == "dual"
    assert settings.store_mode("agent_task").write_target == "in-memory"


@pytest.mark.parametrize(
    "env",
    [{"dual_write_mode": True}, {"graph_store_dual_write_mode": True},
     {"store_backend": "postgres"}],
)
def test_dual_write_or_postgres_without_database_url_is_refused(
    env: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(ConfigurationError, match="DATABASE_URL must be set"):
        load_settings(**env)
    assert load_settings(database_url=DSN, **env)
