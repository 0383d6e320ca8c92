-- 006: exact row counts read from a few rows instead of counting the tables.
--
-- count_projects was count(*) over projects (~6 ms at 100k rows), and every task total
-- (get_task_count, list_tasks' total, the attention count, the pipeline's per-phase
-- count) counted agent_tasks rows. Here statement-level AFTER triggers add each
-- statement's net change to counter rows in the same transaction, so a reader's
-- snapshot sees a counter change exactly when it sees the rows: exact under MVCC, a
-- rolled-back write leaves the counters untouched. A count is sum(n) over the rows of
-- one key (usually one row; at most 16).
--
-- Concurrency: a key has up to 16 shard rows. A statement adds its delta to one of
-- them, skipping rows another open transaction holds (FOR NO KEY UPDATE SKIP LOCKED) and
-- creating a row in a free shard when all are held, so concurrent writers, including a
-- backfill's long import transaction, do not wait for one another; a writer waits only
-- when all 16 rows of a key are held (or when it races another writer creating the same
-- row). Writers in REPEATABLE READ or SERIALIZABLE may get a serialization failure on a
-- shard row (the application writes in READ COMMITTED only).
--
-- Privileges: the app role (004) may only SELECT the counters; the trigger functions
-- are SECURITY DEFINER with a fixed search_path (as in 005), so the role's writes keep
-- the counters right without the role being able to change them. TRUNCATE (owner only)
-- resets the table's counters. Anything that bypasses triggers (session_replication_role
-- = replica, disabled triggers) must be followed by a recount.

-- No writer may commit between the triggers' creation and the initial count below.
LOCK TABLE projects, agent_tasks IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE project_counts (
    shard smallint PRIMARY KEY,
    n     bigint NOT NULL,
    CONSTRAINT project_counts_shard_check CHECK (shard BETWEEN 0 AND 15)
);

CREATE TABLE agent_task_counts (
    status    task_status NOT NULL,
    task_type task_type NOT NULL,
    shard     smallint NOT NULL,
    n         bigint NOT NULL,
    PRIMARY KEY (status, task_type, shard),
    CONSTRAINT agent_task_counts_shard_check CHECK (shard BETWEEN 0 AND 15)
);

-- Adds delta to one existing shard row of a key that no other open transaction holds,
-- trying the backend's own shard (pg_backend_pid() % 16) first; when every existing row
-- is held (or the key has none), to a new row in the first free shard from its own
-- (its own when all 16 exist). A key so gets another row only when writers overlap:
-- reads sum few rows.
CREATE FUNCTION project_counts_add(delta bigint) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    UPDATE public.project_counts SET n = n + delta
    WHERE shard = (SELECT c.shard FROM public.project_counts c
                   ORDER BY (c.shard - pg_backend_pid() % 16 + 16) % 16
                   LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED);
    IF NOT FOUND THEN
        INSERT INTO public.project_counts AS c (shard, n)
        SELECT COALESCE((SELECT g FROM generate_series(0, 15) g
                         WHERE NOT EXISTS (SELECT FROM public.project_counts x
                                           WHERE x.shard = g)
                         ORDER BY (g - pg_backend_pid() % 16 + 16) % 16 LIMIT 1),
                        pg_backend_pid() % 16), delta
        ON CONFLICT (shard) DO UPDATE SET n = c.n + excluded.n;
    END IF;
END;
$$;

CREATE FUNCTION agent_task_counts_add(s task_status, t task_type, delta bigint) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    UPDATE public.agent_task_counts SET n = n + delta
    WHERE status = s AND task_type = t
      AND shard = (SELECT c.shard FROM public.agent_task_counts c
                   WHERE c.status = s AND c.task_type = t
                   ORDER BY (c.shard - pg_backend_pid() % 16 + 16) % 16
                   LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED);
    IF NOT FOUND THEN
        INSERT INTO public.agent_task_counts AS c (status, task_type, shard, n)
        SELECT s, t,
            COALESCE((SELECT g FROM generate_series(0, 15) g
                      WHERE NOT EXISTS (SELECT FROM public.agent_task_counts x
                                        WHERE x.status = s AND x.task_type = t
                                          AND x.shard = g)
                      ORDER BY (g - pg_backend_pid() % 16 + 16) % 16 LIMIT 1),
                     pg_backend_pid() % 16), delta
        ON CONFLICT (status, task_type, shard) DO UPDATE SET n = c.n + excluded.n;
    END IF;
END;
$$;

-- The trigger functions run as the owner (the app role cannot write the counters).
CREATE FUNCTION projects_count_rows() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    delta bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT count(*) INTO delta FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT -count(*) INTO delta FROM old_rows;
    ELSE  -- TRUNCATE
        UPDATE public.project_counts SET n = 0 WHERE n <> 0;
        RETURN NULL;
    END IF;
    IF delta <> 0 THEN
        PERFORM public.project_counts_add(delta);
    END IF;
    RETURN NULL;
END;
$$;

-- An UPDATE moves a task between (status, task_type) keys: +1 for each new row's key,
-- -1 for each old row's key; keys whose changes cancel out are not touched at all.
CREATE FUNCTION agent_tasks_count_rows() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM public.agent_task_counts_add(d.status, d.task_type, d.n)
        FROM (SELECT status, task_type, count(*) AS n FROM new_rows
              GROUP BY status, task_type ORDER BY status, task_type) d;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM public.agent_task_counts_add(d.status, d.task_type, -d.n)
        FROM (SELECT status, task_type, count(*) AS n FROM old_rows
              GROUP BY status, task_type ORDER BY status, task_type) d;
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM public.agent_task_counts_add(d.status, d.task_type, d.n)
        FROM (SELECT status, task_type, sum(k) AS n
              FROM (SELECT status, task_type, 1 AS k FROM new_rows
                    UNION ALL
                    SELECT status, task_type, -1 FROM old_rows) c
              GROUP BY status, task_type HAVING sum(k) <> 0
              ORDER BY status, task_type) d;
    ELSE  -- TRUNCATE
        UPDATE public.agent_task_counts SET n = 0 WHERE n <> 0;
    END IF;
    RETURN NULL;
END;
$$;

REVOKE ALL ON FUNCTION project_counts_add(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION agent_task_counts_add(task_status, task_type, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION projects_count_rows() FROM PUBLIC;
REVOKE ALL ON FUNCTION agent_tasks_count_rows() FROM PUBLIC;

CREATE TRIGGER projects_count_insert AFTER INSERT ON projects
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION projects_count_rows();
CREATE TRIGGER projects_count_delete AFTER DELETE ON projects
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION projects_count_rows();
CREATE TRIGGER projects_count_truncate AFTER TRUNCATE ON projects
    FOR EACH STATEMENT EXECUTE FUNCTION projects_count_rows();

CREATE TRIGGER agent_tasks_count_insert AFTER INSERT ON agent_tasks
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION agent_tasks_count_rows();
CREATE TRIGGER agent_tasks_count_update AFTER UPDATE ON agent_tasks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION agent_tasks_count_rows();
CREATE TRIGGER agent_tasks_count_delete AFTER DELETE ON agent_tasks
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION agent_tasks_count_rows();
CREATE TRIGGER agent_tasks_count_truncate AFTER TRUNCATE ON agent_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION agent_tasks_count_rows();

-- The rows already there (the lock above keeps this exact).
INSERT INTO project_counts (shard, n) SELECT 0, count(*) FROM projects;
INSERT INTO agent_task_counts (status, task_type, shard, n)
SELECT status, task_type, 0, count(*) FROM agent_tasks GROUP BY status, task_type;

GRANT SELECT ON project_counts, agent_task_counts TO storemigration_app;
