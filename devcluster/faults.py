"""Real PostgreSQL faults for the rollback drills, and row counts for the summary.

The fault is a permission change made by the schema owner: the API's least-privilege role
(storemigration_app, migrations/004_app_role.sql) loses SELECT/INSERT/UPDATE/DELETE on the
data tables, so every PostgreSQL read and write the API makes fails with a real
InsufficientPrivilege error. The migration router counts those, falls back to memory for
reads, and Prometheus sees the PostgreSQL error rate climb: nothing is faked.
"""

from __future__ import annotations

import asyncpg

TABLES = ("projects", "project_dependencies", "contributors", "assets", "contributions",
          "agent_tasks")
REVOKE_APP_ROLE = (
    "REVOKE SELECT, INSERT, UPDATE, DELETE ON projects, project_dependencies, contributors, "
    "assets, contributions, agent_tasks FROM storemigration_app"
)
GRANT_APP_ROLE = (
    "GRANT SELECT, INSERT, UPDATE, DELETE ON projects, project_dependencies, contributors, "
    "assets, contributions, agent_tasks TO storemigration_app"
)
COUNT_ROWS = {
    "projects": "SELECT count(*) FROM projects",
    "project_dependencies": "SELECT count(*) FROM project_dependencies",
    "contributors": "SELECT count(*) FROM contributors",
    "assets": "SELECT count(*) FROM assets",
    "contributions": "SELECT count(*) FROM contributions",
    "agent_tasks": "SELECT count(*) FROM agent_tasks",
}


async def _execute(owner_dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(owner_dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def revoke_app_access(owner_dsn: str) -> None:
    """Inject the fault: the API's role can no longer touch the data tables."""
    await _execute(owner_dsn, REVOKE_APP_ROLE)


async def restore_app_access(owner_dsn: str) -> None:
    await _execute(owner_dsn, GRANT_APP_ROLE)


async def row_counts(owner_dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(owner_dsn)
    try:
        return {table: int(await conn.fetchval(sql)) for table, sql in COUNT_ROWS.items()}
    finally:
        await conn.close()
