-- 009: an audit record of every schema change, whoever makes it, and no CREATE in public.
--
-- schema_migrations (migrate.py) records the migrations the runner applied; a change made
-- by hand, by the owner or a superuser, left no trace. Event triggers on ddl_command_end
-- and sql_drop append one row per object created, altered or dropped to schema_audit:
-- when, the role that ran it (the SET ROLE if any, else the login), the command, the
-- object, and the statement (left out for commands whose text can hold a password:
-- user mappings, foreign servers, subscriptions). A drop records what was named and what
-- CASCADE took with it, not the parts a table owns (its indexes, constraints, types).
-- Temporary objects are not schema changes and are skipped (the app role's import path
-- creates temp tables).
--
-- The record is append-only: the app role (004) has no privilege on it at all, and a
-- trigger refuses UPDATE, DELETE and TRUNCATE from anyone, the owner included; removing
-- that trigger or the event triggers is itself DDL, so it is recorded first. The
-- functions are SECURITY DEFINER (the row is written whatever privileges the caller
-- has) with a fixed search_path, as in 005.
--
-- PostgreSQL lets only a superuser create event triggers (on a managed service, its
-- superuser-like role): apply this migration with such a role.
--
-- PostgreSQL 14 and older grant CREATE on schema public to PUBLIC, so there the app
-- role could create tables: the REVOKE at the end closes that on every version.

CREATE TABLE schema_audit (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    run_by          text NOT NULL,
    session_user_name text NOT NULL DEFAULT session_user,
    event           text NOT NULL,
    command_tag     text NOT NULL,
    object_type     text,
    object_identity text,
    schema_name     text,
    statement       text,
    transaction_id  bigint NOT NULL DEFAULT txid_current(),
    application_name text DEFAULT current_setting('application_name', true),
    client_addr     inet DEFAULT inet_client_addr()
);
COMMENT ON TABLE schema_audit IS
    'Every schema change (event triggers of migration 009), append-only.';

CREATE FUNCTION storemigration_audit_role() RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE(NULLIF(current_setting('role', true), 'none'), session_user::text)
$$;

CREATE FUNCTION storemigration_audit_statement(tag text) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN tag ~ '(USER MAPPING|SERVER|SUBSCRIPTION)' THEN NULL
                ELSE left(current_query(), 4000) END
$$;

CREATE FUNCTION storemigration_audit_ddl() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
        CONTINUE WHEN r.schema_name = 'pg_temp' OR r.schema_name LIKE 'pg\_temp\_%';
        INSERT INTO public.schema_audit (run_by, event, command_tag, object_type,
                                         object_identity, schema_name, statement)
        VALUES (storemigration_audit_role(), TG_EVENT, r.command_tag, r.object_type,
                r.object_identity, r.schema_name,
                storemigration_audit_statement(r.command_tag));
    END LOOP;
END;
$$;

CREATE FUNCTION storemigration_audit_drop() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM pg_event_trigger_dropped_objects() LOOP
        CONTINUE WHEN r.is_temporary OR NOT (r.original OR r.normal);
        INSERT INTO public.schema_audit (run_by, event, command_tag, object_type,
                                         object_identity, schema_name, statement)
        VALUES (storemigration_audit_role(), TG_EVENT, TG_TAG, r.object_type,
                r.object_identity, r.schema_name, storemigration_audit_statement(TG_TAG));
    END LOOP;
END;
$$;

CREATE FUNCTION storemigration_audit_append_only() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'schema_audit is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER schema_audit_append_only
    BEFORE UPDATE OR DELETE ON schema_audit
    FOR EACH ROW EXECUTE FUNCTION storemigration_audit_append_only();
CREATE TRIGGER schema_audit_no_truncate
    BEFORE TRUNCATE ON schema_audit
    FOR EACH STATEMENT EXECUTE FUNCTION storemigration_audit_append_only();

REVOKE ALL ON FUNCTION storemigration_audit_ddl(), storemigration_audit_drop(),
    storemigration_audit_append_only(), storemigration_audit_role(),
    storemigration_audit_statement(text) FROM PUBLIC;
REVOKE ALL ON schema_audit FROM PUBLIC, storemigration_app;
-- Reading the record is allowed, writing it is not: the backup CronJob dumps the
-- database as the app role, and the record belongs in the dump.
GRANT SELECT ON schema_audit TO storemigration_app;
GRANT SELECT ON SEQUENCE schema_audit_id_seq TO storemigration_app;

CREATE EVENT TRIGGER storemigration_audit_ddl ON ddl_command_end
    EXECUTE FUNCTION storemigration_audit_ddl();
CREATE EVENT TRIGGER storemigration_audit_drop ON sql_drop
    EXECUTE FUNCTION storemigration_audit_drop();

REVOKE CREATE ON SCHEMA public FROM PUBLIC;
