"""Named queries of the key-range reads, the backfill checkpoint and the repair.

Each kind is read in the order the in-memory side sorts it (app.migration.keyed):
projects by id, contributors/assets/contributions by uuid (bytewise in both), tasks by
id COLLATE "C" (014's index), dependencies by their four text keys COLLATE "C"
(Python's code-point order). A range is (after, upto]: `after` NULL starts at the
first key, `upto` NULL has no end; then the row limit.
"""

RANGE_PROJECTS = """
SELECT p.id, p.ecosystem, p.name, p.version, p.description, p.homepage_url,
    p.repository_url, p.created_at, p.updated_at,
    (SELECT count(*) FROM project_dependencies d WHERE d.from_project_id = p.id)
        AS dependency_count
FROM projects p
WHERE ($1::bigint IS NULL OR p.id > $1) AND ($2::bigint IS NULL OR p.id <= $2)
ORDER BY p.id LIMIT $3"""
KEYS_PROJECTS = """
SELECT p.id, p.ecosystem, p.name, p.version, p.description, p.homepage_url,
    p.repository_url, p.created_at, p.updated_at,
    (SELECT count(*) FROM project_dependencies d WHERE d.from_project_id = p.id)
        AS dependency_count
FROM projects p WHERE p.id = ANY($1::bigint[])"""

RANGE_DEPENDENCIES = """
SELECT p.ecosystem AS from_ecosystem, p.name AS from_name, d.to_ecosystem, d.to_name,
    d.created_at
FROM project_dependencies d JOIN projects p ON p.id = d.from_project_id
WHERE ($1::text IS NULL OR ROW(p.ecosystem COLLATE "C", p.name COLLATE "C",
        d.to_ecosystem COLLATE "C", d.to_name COLLATE "C")
        > ROW($1::text, $2::text, $3::text, $4::text))
  AND ($5::text IS NULL OR ROW(p.ecosystem COLLATE "C", p.name COLLATE "C",
        d.to_ecosystem COLLATE "C", d.to_name COLLATE "C")
        <= ROW($5::text, $6::text, $7::text, $8::text))
ORDER BY p.ecosystem COLLATE "C", p.name COLLATE "C", d.to_ecosystem COLLATE "C",
    d.to_name COLLATE "C"
LIMIT $9"""
KEYS_DEPENDENCIES = """
SELECT p.ecosystem AS from_ecosystem, p.name AS from_name, d.to_ecosystem, d.to_name,
    d.created_at
FROM project_dependencies d JOIN projects p ON p.id = d.from_project_id
JOIN unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS k(fe, fn, te, tn)
  ON p.ecosystem = k.fe AND p.name = k.fn AND d.to_ecosystem = k.te AND d.to_name = k.tn"""

RANGE_CONTRIBUTORS = """
SELECT id, type, name, email, github_username, wallet_address, hourly_rate, metadata,
    created_at, updated_at
FROM contributors
WHERE ($1::uuid IS NULL OR id > $1) AND ($2::uuid IS NULL OR id <= $2)
ORDER BY id LIMIT $3"""
KEYS_CONTRIBUTORS = """
SELECT id, type, name, email, github_username, wallet_address, hourly_rate, metadata,
    created_at, updated_at
FROM contributors WHERE id = ANY($1::uuid[])"""

RANGE_ASSETS = """
SELECT id, type, name, description, total_cost, metadata, created_at, updated_at
FROM assets
WHERE ($1::uuid IS NULL OR id > $1) AND ($2::uuid IS NULL OR id <= $2)
ORDER BY id LIMIT $3"""
KEYS_ASSETS = """
SELECT id, type, name, description, total_cost, metadata, created_at, updated_at
FROM assets WHERE id = ANY($1::uuid[])"""

RANGE_CONTRIBUTIONS = """
SELECT id, contributor_id, asset_id, cost_amount, coherence_score, metadata, "timestamp"
FROM contributions
WHERE ($1::uuid IS NULL OR id > $1) AND ($2::uuid IS NULL OR id <= $2)
ORDER BY id LIMIT $3"""
KEYS_CONTRIBUTIONS = """
SELECT id, contributor_id, asset_id, cost_amount, coherence_score, metadata, "timestamp"
FROM contributions WHERE id = ANY($1::uuid[])"""

RANGE_TASKS = """
SELECT id, direction, task_type::text AS task_type, status::text AS status, model,
    command, output, context, progress_pct, current_step, decision_prompt, decision, tier,
    started_at, created_at, updated_at
FROM agent_tasks
WHERE ($1::text IS NULL OR id COLLATE "C" > $1::text)
  AND ($2::text IS NULL OR id COLLATE "C" <= $2::text)
ORDER BY id COLLATE "C" LIMIT $3"""
KEYS_TASKS = """
SELECT id, direction, task_type::text AS task_type, status::text AS status, model,
    command, output, context, progress_pct, current_step, decision_prompt, decision, tier,
    started_at, created_at, updated_at
FROM agent_tasks WHERE id = ANY($1::text[])"""

# ---------------------------------------------------------------- repair

# A repaired contribution is deleted (no trigger: its cost stays in the total) and
# memory's copy inserted (the trigger adds its cost); then the asset's total is counted
# again from its own contribution rows, the one rule 003 keeps: never copied from memory.
DELETE_CONTRIBUTION = "DELETE FROM contributions WHERE id = $1"
RECOUNT_ASSET_TOTAL = """
UPDATE assets a SET total_cost = (
    SELECT COALESCE(sum(c.cost_amount), 0) FROM contributions c WHERE c.asset_id = a.id)
WHERE a.id = $1"""
DELETE_PROJECT = "DELETE FROM projects WHERE id = $1"
DELETE_DEPENDENCY = """
DELETE FROM project_dependencies d USING projects p
WHERE p.id = d.from_project_id AND p.ecosystem = $1 AND p.name = $2
  AND d.to_ecosystem = $3 AND d.to_name = $4"""
DELETE_CONTRIBUTOR = "DELETE FROM contributors WHERE id = $1"
DELETE_ASSET = "DELETE FROM assets WHERE id = $1"
DELETE_TASK = "DELETE FROM agent_tasks WHERE id = $1"

# ---------------------------------------------------------------- checkpoint (014)

GET_CHECKPOINT = """
SELECT kind, position, last_key, done, total, written, skipped, refused_ids, batches,
    cutoff, started_at, updated_at, finished_at
FROM migration_checkpoint WHERE run = $1 ORDER BY position"""
START_CHECKPOINT = """
INSERT INTO migration_checkpoint (run, kind, position, total, cutoff, finished_at)
VALUES ($1, $2, $3, $4::bigint, $5, CASE WHEN $4::bigint = 0 THEN now() END)
ON CONFLICT (run, kind) DO NOTHING"""
ADVANCE_CHECKPOINT = """
UPDATE migration_checkpoint SET last_key = $3::jsonb, done = done + $4::bigint,
    written = written + $5::bigint, skipped = skipped + $6::bigint,
    refused_ids = refused_ids || $7::jsonb, batches = batches + 1, updated_at = now(),
    finished_at = CASE WHEN $8::boolean THEN now() END
WHERE run = $1 AND kind = $2"""
RESET_CHECKPOINT = "DELETE FROM migration_checkpoint WHERE run = $1"
# A new Job of a run copies again each kind PostgreSQL refused a record of: the refusal
# may have been fixed at its cause, and the run has not succeeded until it copies it.
RETRY_REFUSED = """
UPDATE migration_checkpoint SET last_key = NULL, done = 0, written = 0, skipped = 0,
    refused_ids = '[]'::jsonb, batches = 0, finished_at = NULL, updated_at = now()
WHERE run = $1 AND jsonb_array_length(refused_ids) > 0"""
