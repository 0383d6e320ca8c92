"""The schema the spec lists, read back from PostgreSQL's catalog after the migrations:
the unique and foreign keys, the ENUM types, the indexes (composite, trigram, per
contribution parent, per task status), the triggers and the CHECK constraints. The
behaviour behind each is tested elsewhere (test_constraints, test_replica_and_search);
this pins that the objects themselves exist as the spec names them."""

from __future__ import annotations

import asyncpg

from tests.harness.postgres import PgDatabase

INDEXES = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
ENUMS = ("SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder) AS labels "
         "FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname")
COLUMN_TYPES = ("SELECT column_name, udt_name FROM information_schema.columns "
                "WHERE table_name = 'agent_tasks' AND column_name IN ('task_type', 'status')")
FOREIGN_KEYS = ("SELECT conrelid::regclass::text AS child, confrelid::regclass::text AS parent, "
                "confdeltype::text FROM pg_constraint WHERE contype = 'f'")
CHECKS = ("SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint "
          "WHERE contype = 'c' AND connamespace = 'public'::regnamespace")
TRIGGERS = ("SELECT tgrelid::regclass::text AS tbl, tgname FROM pg_trigger "
            "WHERE NOT tgisinternal")


async def catalog(db: PgDatabase, query: str) -> list[dict[str, object]]:
    conn = await asyncpg.connect(db.owner_dsn)
    try:
        return [dict(r) for r in await conn.fetch(query)]
    finally:
        await conn.close()


async def test_indexes_the_spec_asks_for(pg_database: PgDatabase) -> None:
    defs = {str(r["indexname"]): str(r["indexdef"]) for r in await catalog(pg_database, INDEXES)}
    assert "UNIQUE" in defs["projects_ecosystem_name_key"]
    assert "(ecosystem, name)" in defs["projects_ecosystem_name_key"]
    assert "gin (name gin_trgm_ops)" in defs["projects_name_trgm"]
    assert "gin (description_lower gin_trgm_ops)" in defs["projects_description_trgm"]
    assert "(status, created_at)" in defs["agent_tasks_status_created_idx"]
    assert defs["contributions_contributor_id_idx"].endswith('(contributor_id, "timestamp", id)')
    assert defs["contributions_asset_id_idx"].endswith('(asset_id, "timestamp", id)')


async def test_agent_task_type_and_status_are_enum_types(pg_database: PgDatabase) -> None:
    enums = {r["typname"]: r["labels"] for r in await catalog(pg_database, ENUMS)}
    assert enums["task_type"] == ["spec", "test", "impl", "review", "heal"]
    assert enums["task_status"] == ["pending", "running", "completed", "failed",
                                    "needs_decision"]
    columns = {r["column_name"]: r["udt_name"] for r in await catalog(pg_database, COLUMN_TYPES)}
    assert columns == {"task_type": "task_type", "status": "task_status"}


async def test_foreign_keys_cascade_and_checks_bound_the_values(pg_database: PgDatabase) -> None:
    keys = {(r["child"], r["parent"], r["confdeltype"])
            for r in await catalog(pg_database, FOREIGN_KEYS)}
    assert {("contributions", "contributors", "c"), ("contributions", "assets", "c"),
            ("project_dependencies", "projects", "c")} <= keys
    checks = {str(r["conname"]): str(r["def"]) for r in await catalog(pg_database, CHECKS)}
    assert "coherence_score >= (0.0)" in checks["contributions_coherence_score_check"]
    assert "coherence_score <= (1.0)" in checks["contributions_coherence_score_check"]
    assert "progress_pct >= 0" in checks["agent_tasks_progress_pct_check"]
    assert "progress_pct <= 100" in checks["agent_tasks_progress_pct_check"]


async def test_triggers_keep_total_cost_and_updated_at(pg_database: PgDatabase) -> None:
    triggers = {(r["tbl"], r["tgname"]) for r in await catalog(pg_database, TRIGGERS)}
    assert ("contributions", "contributions_add_cost") in triggers
    for table in ("projects", "contributors", "assets", "agent_tasks"):
        assert (table, f"{table}_touch_updated_at") in triggers
