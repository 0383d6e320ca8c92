-- 007: after a bulk import, clean the search indexes without re-analyzing the table.
--
-- 005's storemigration_analyze_projects() merges both trigram indexes' GIN pending
-- lists and ANALYZEs projects. The merge is what keeps searches right after an import
-- fast (new rows in a pending list are read linearly by every search); the ANALYZE
-- matters when the import is most of the table (the planner had no statistics for
-- it), but on a 10k-row import into 100k rows it was ~120 ms of ~380 ms and barely
-- moved the statistics, which autovacuum refreshes once 10% of the rows changed.
-- import_graph now calls this function, and 005's only when the import wrote at least
-- as many projects as the table held before it. Same terms as 005: SECURITY DEFINER,
-- fixed search_path, EXECUTE for the app role only.
CREATE FUNCTION storemigration_clean_project_search() RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    PERFORM gin_clean_pending_list('public.projects_name_trgm'::regclass);
    PERFORM gin_clean_pending_list('public.projects_description_trgm'::regclass);
END;
$$;

REVOKE ALL ON FUNCTION storemigration_clean_project_search() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION storemigration_clean_project_search() TO storemigration_app;
