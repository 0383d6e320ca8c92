-- 012: the newer-wins rule of the replica upserts, written once per table.
--
-- A replicated record (a dual-write copy, a backfill or rehydrate import) replaces the
-- row PostgreSQL holds only when it is newer, or as new with other values (a copy of the
-- same state changes nothing, so an import can be repeated). The single puts and the
-- bulk imports both upsert with ON CONFLICT .. DO UPDATE .. WHERE this rule; until now the
-- rule was spelt out in both statements of each table. Each function takes the incoming
-- row (`excluded`) and the held row whole, so the statements pass them as they are.
-- The keys of 008 (contributors.email_key, projects.description_lower) are compared
-- like every other column, so a re-run backfill replaces a key 008 computed in SQL.
-- Plain SQL expressions, IMMUTABLE, so the planner inlines them: no call per row.
-- EXECUTE for the app role only, as for every function of this schema.

CREATE FUNCTION storemigration_project_newer(incoming projects, held projects)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN incoming.updated_at > held.updated_at
    OR (incoming.updated_at = held.updated_at
        AND (incoming.version, incoming.description, incoming.homepage_url,
             incoming.repository_url, incoming.created_at, incoming.description_lower)
        IS DISTINCT FROM (held.version, held.description, held.homepage_url,
             held.repository_url, held.created_at, held.description_lower));

CREATE FUNCTION storemigration_contributor_newer(incoming contributors, held contributors)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN incoming.updated_at > held.updated_at
    OR (incoming.updated_at = held.updated_at
        AND (incoming.type, incoming.name, incoming.email, incoming.github_username,
             incoming.wallet_address, incoming.hourly_rate, incoming.metadata,
             incoming.created_at, incoming.email_key)
        IS DISTINCT FROM (held.type, held.name, held.email, held.github_username,
             held.wallet_address, held.hourly_rate, held.metadata, held.created_at,
             held.email_key));

-- total_cost is not compared: only the contributions trigger changes it.
CREATE FUNCTION storemigration_asset_newer(incoming assets, held assets)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN incoming.updated_at > held.updated_at
    OR (incoming.updated_at = held.updated_at
        AND (incoming.type, incoming.name, incoming.description, incoming.metadata,
             incoming.created_at)
        IS DISTINCT FROM (held.type, held.name, held.description, held.metadata,
             held.created_at));

-- A task never updated is as new as its creation.
CREATE FUNCTION storemigration_task_newer(incoming agent_tasks, held agent_tasks)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN COALESCE(incoming.updated_at, incoming.created_at)
        > COALESCE(held.updated_at, held.created_at)
    OR (COALESCE(incoming.updated_at, incoming.created_at)
        = COALESCE(held.updated_at, held.created_at)
        AND (incoming.direction, incoming.task_type, incoming.status, incoming.model,
             incoming.command, incoming.output, incoming.context, incoming.progress_pct,
             incoming.current_step, incoming.decision_prompt, incoming.decision,
             incoming.tier, incoming.started_at, incoming.created_at, incoming.updated_at)
        IS DISTINCT FROM (held.direction, held.task_type, held.status, held.model,
             held.command, held.output, held.context, held.progress_pct,
             held.current_step, held.decision_prompt, held.decision,
             held.tier, held.started_at, held.created_at, held.updated_at));

REVOKE ALL ON FUNCTION storemigration_project_newer(projects, projects) FROM PUBLIC;
REVOKE ALL ON FUNCTION storemigration_contributor_newer(contributors, contributors) FROM PUBLIC;
REVOKE ALL ON FUNCTION storemigration_asset_newer(assets, assets) FROM PUBLIC;
REVOKE ALL ON FUNCTION storemigration_task_newer(agent_tasks, agent_tasks) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION storemigration_project_newer(projects, projects)
    TO storemigration_app;
GRANT EXECUTE ON FUNCTION storemigration_contributor_newer(contributors, contributors)
    TO storemigration_app;
GRANT EXECUTE ON FUNCTION storemigration_asset_newer(assets, assets) TO storemigration_app;
GRANT EXECUTE ON FUNCTION storemigration_task_newer(agent_tasks, agent_tasks)
    TO storemigration_app;
