-- 004: the least-privilege role the API connects as. It reads and writes rows but owns
-- nothing, so it can neither DROP nor TRUNCATE, and it cannot rewrite the audit log of
-- schema changes. Its LOGIN and password are set by the migrate command (the password
-- comes from the environment, never from a file in the repository).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'storemigration_app') THEN
        CREATE ROLE storemigration_app NOLOGIN;
    END IF;
END;
$$;

DO $$
BEGIN
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO storemigration_app',
                   current_database());
END;
$$;

GRANT USAGE ON SCHEMA public TO storemigration_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON projects, project_dependencies, contributors, assets,
    contributions, agent_tasks TO storemigration_app;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO storemigration_app;
GRANT SELECT ON schema_migrations TO storemigration_app;
REVOKE TRUNCATE ON ALL TABLES IN SCHEMA public FROM storemigration_app;
