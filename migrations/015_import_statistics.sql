-- 015: statistics for the parents a batched backfill has just filled.
--
-- A backfill copies kind by kind in foreign-key order, in batches. At 1,000,000 records
-- the contributions batches, right after assets and contributors were filled, ran for
-- seconds each (1,000 rows ~6 s, 5,000 past the 10 s statement timeout): the tables had
-- never been analyzed, so the plans of the contributions import (its EXISTS checks and
-- the cost trigger's UPDATE of assets) were made for empty tables, until autovacuum came
-- (docs/BENCHMARKS.md section 9). Only a table's owner may ANALYZE it, so, as 005 does
-- for projects, this function runs it for the app role: SECURITY DEFINER, fixed
-- search_path, a fixed list of tables, EXECUTE for the app role only. An ANALYZE
-- updates pg_class, which invalidates every cached plan on the table.
CREATE FUNCTION storemigration_analyze_parents(kinds text[]) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF 'contributors' = ANY (kinds) THEN
        ANALYZE public.contributors;
    END IF;
    IF 'assets' = ANY (kinds) THEN
        ANALYZE public.assets;
    END IF;
END;
$$;

REVOKE ALL ON FUNCTION storemigration_analyze_parents(text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION storemigration_analyze_parents(text[]) TO storemigration_app;
