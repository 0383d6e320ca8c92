"""Named SQL for PostgresAgentTaskStore. Orders mirror app.domain.tasks: newest first by
(created_at, id); ids compare in code-point order (COLLATE "C") as Python compares them.
"""


INSERT_TASK = """
INSERT INTO agent_tasks (id, direction, task_type, status, model, command, output, context,
    progress_pct, current_step, decision_prompt, decision, tier, started_at, created_at,
    updated_at)
VALUES ($1, $2, $3::task_type, $4::task_status, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
    $15, $16)"""

GET_TASK = """
SELECT id, direction, task_type::text AS task_type, status::text AS status, model,
    command, output, context, progress_pct, current_step, decision_prompt, decision, tier,
    started_at, created_at, updated_at FROM agent_tasks WHERE id = $1"""
GET_TASK_FOR_UPDATE = """
SELECT id, direction, task_type::text AS task_type, status::text AS status, model,
    command, output, context, progress_pct, current_step, decision_prompt, decision, tier,
    started_at, created_at, updated_at FROM agent_tasks WHERE id = $1
FOR UPDATE"""

UPDATE_TASK = """
UPDATE agent_tasks SET status = $2::task_status, output = $3, progress_pct = $4,
    current_step = $5, decision_prompt = $6, decision = $7, started_at = $8, updated_at = $9
WHERE id = $1"""

# Counts read migration 006's trigger-maintained counters (agent_task_counts: a row per
# (status, task_type), more only where writers overlapped, at most 16): exact in the
# reading statement's snapshot, and a few tiny rows however many tasks there are.

# $1/$2 are NULL for "any": one statement serves every filter combination. The page
# carries the filter's total (an InitPlan read once, in the page's snapshot), so a
# listing is one round trip; COUNT_TASKS answers only for a page past the end.
LIST_TASKS = """
SELECT id, direction, task_type::text AS task_type, status::text AS status, model,
    command, output, context, progress_pct, current_step, decision_prompt, decision, tier,
    started_at, created_at, updated_at,
    (SELECT COALESCE(sum(n), 0)::bigint FROM agent_task_counts
     WHERE ($1::task_status IS NULL OR status = $1::task_status)
       AND ($2::task_type IS NULL OR task_type = $2::task_type)) AS total
FROM agent_tasks
WHERE ($1::task_status IS NULL OR status = $1::task_status)
  AND ($2::task_type IS NULL OR task_type = $2::task_type)
ORDER BY created_at DESC, id COLLATE "C" DESC
LIMIT $3 OFFSET $4"""
COUNT_TASKS = """
SELECT COALESCE(sum(n), 0)::bigint FROM agent_task_counts
WHERE ($1::task_status IS NULL OR status = $1::task_status)
  AND ($2::task_type IS NULL OR task_type = $2::task_type)"""

ATTENTION_TASKS = """
SELECT id, direction, task_type::text AS task_type, status::text AS status, model,
    command, output, context, progress_pct, current_step, decision_prompt, decision, tier,
    started_at, created_at, updated_at FROM agent_tasks
WHERE status IN ('needs_decision', 'failed')
ORDER BY created_at DESC, id COLLATE "C" DESC
LIMIT $1"""
COUNT_ATTENTION = """
SELECT COALESCE(sum(n), 0)::bigint FROM agent_task_counts
WHERE status IN ('needs_decision', 'failed')"""

COUNT_BY_STATUS = """
SELECT status::text AS status, sum(n)::bigint AS n FROM agent_task_counts GROUP BY status"""

USAGE = """
SELECT model, status::text AS status, count(*) AS n,
    max(COALESCE(updated_at, created_at)) AS last_used
FROM agent_tasks GROUP BY model, status"""

# The pipeline document in one statement (one round trip, one snapshot: a single
# statement sees one snapshot even in READ COMMITTED). Each part keeps its own order
# as `ord`; part 3 is the per-phase count (task_type, n) with the task columns NULL,
# read from the counters.
# Parts: 0 running (10 oldest started), 1 pending (20 oldest), 2 finished (10 newest by
# updated_at), 3 by phase, 4 latest task, 5 latest finished task with output.
PIPELINE_STATUS = """
SELECT part, ord, id, direction, task_type, status, model, command, output, context,
    progress_pct, current_step, decision_prompt, decision, tier, started_at, created_at,
    updated_at, n
FROM (
    (SELECT 0 AS part, row_number() OVER (ORDER BY COALESCE(started_at, created_at),
            id COLLATE "C") AS ord,
        id, direction, task_type::text AS task_type, status::text AS status, model,
        command, output, context, progress_pct, current_step, decision_prompt, decision, tier,
        started_at, created_at, updated_at, NULL::bigint AS n
     FROM agent_tasks WHERE status = 'running'
     ORDER BY COALESCE(started_at, created_at), id COLLATE "C" LIMIT 10)
    UNION ALL
    (SELECT 1, row_number() OVER (ORDER BY created_at, id COLLATE "C"),
        id, direction, task_type::text, status::text, model,
        command, output, context, progress_pct, current_step, decision_prompt, decision, tier,
        started_at, created_at, updated_at, NULL
     FROM agent_tasks WHERE status = 'pending'
     ORDER BY created_at, id COLLATE "C" LIMIT 20)
    UNION ALL
    (SELECT 2, row_number() OVER (ORDER BY COALESCE(updated_at, created_at) DESC,
            id COLLATE "C" DESC),
        id, direction, task_type::text, status::text, model,
        command, output, context, progress_pct, current_step, decision_prompt, decision, tier,
        started_at, created_at, updated_at, NULL
     FROM agent_tasks WHERE status IN ('completed', 'failed', 'needs_decision')
     ORDER BY COALESCE(updated_at, created_at) DESC, id COLLATE "C" DESC LIMIT 10)
    UNION ALL
    (SELECT 3, 0, NULL, NULL, task_type::text, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
        NULL, NULL, NULL, NULL, NULL, NULL, sum(n)::bigint
     FROM agent_task_counts WHERE status IN ('running', 'pending') GROUP BY task_type
     HAVING sum(n) <> 0)
    UNION ALL
    (SELECT 4, 1, id, direction, task_type::text, status::text, model,
        command, output, context, progress_pct, current_step, decision_prompt, decision, tier,
        started_at, created_at, updated_at, NULL
     FROM agent_tasks ORDER BY created_at DESC, id COLLATE "C" DESC LIMIT 1)
    UNION ALL
    (SELECT 5, 1, id, direction, task_type::text, status::text, model,
        command, output, context, progress_pct, current_step, decision_prompt, decision, tier,
        started_at, created_at, updated_at, NULL
     FROM agent_tasks
     WHERE status IN ('completed', 'failed', 'needs_decision') AND output IS NOT NULL
        AND output <> ''
     ORDER BY COALESCE(updated_at, created_at) DESC, id COLLATE "C" DESC LIMIT 1)
) AS parts
ORDER BY part, ord"""

# ---------------------------------------------------------------- replica

# A record replaces the held one only when it is newer (updated_at, or created_at for
# a task never updated): re-applying the same record changes nothing. The rule is
# migration 012's storemigration_task_newer, shared with IMPORT_TASKS.
PUT_TASK = """
INSERT INTO agent_tasks (id, direction, task_type, status, model, command, output, context,
    progress_pct, current_step, decision_prompt, decision, tier, started_at, created_at,
    updated_at)
VALUES ($1, $2, $3::task_type, $4::task_status, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
    $15, $16)
ON CONFLICT (id) DO UPDATE SET direction = excluded.direction,
    task_type = excluded.task_type, status = excluded.status, model = excluded.model,
    command = excluded.command, output = excluded.output, context = excluded.context,
    progress_pct = excluded.progress_pct, current_step = excluded.current_step,
    decision_prompt = excluded.decision_prompt, decision = excluded.decision,
    tier = excluded.tier, started_at = excluded.started_at,
    created_at = excluded.created_at, updated_at = excluded.updated_at
WHERE storemigration_task_newer(excluded, agent_tasks)"""

EXPORT_TASKS = """
SELECT id, direction, task_type::text AS task_type, status::text AS status, model,
    command, output, context, progress_pct, current_step, decision_prompt, decision, tier,
    started_at, created_at, updated_at FROM agent_tasks
ORDER BY created_at, id COLLATE "C" """

TEMP_TASKS = """
CREATE TEMP TABLE import_tasks (
    id text, direction text, task_type text, status text, model text, command text,
    output text, context text, progress_pct integer, current_step text,
    decision_prompt text, decision text, tier text, started_at timestamptz,
    created_at timestamptz, updated_at timestamptz
) ON COMMIT DROP"""
IMPORT_TASKS = """
WITH w AS (
    INSERT INTO agent_tasks (id, direction, task_type, status, model, command, output,
        context, progress_pct, current_step, decision_prompt, decision, tier, started_at,
        created_at, updated_at)
    SELECT id, direction, task_type::task_type, status::task_status, model, command, output,
        context::jsonb, progress_pct, current_step, decision_prompt, decision, tier,
        started_at, created_at, updated_at
    FROM import_tasks
    ON CONFLICT (id) DO UPDATE SET direction = excluded.direction,
        task_type = excluded.task_type, status = excluded.status, model = excluded.model,
        command = excluded.command, output = excluded.output, context = excluded.context,
        progress_pct = excluded.progress_pct, current_step = excluded.current_step,
        decision_prompt = excluded.decision_prompt, decision = excluded.decision,
        tier = excluded.tier, started_at = excluded.started_at,
        created_at = excluded.created_at, updated_at = excluded.updated_at
    WHERE storemigration_task_newer(excluded, agent_tasks)
    RETURNING 1
)
SELECT count(*) FROM w"""
