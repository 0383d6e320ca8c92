"""Named SQL for PostgresGraphStore: parameterized statements, never built by formatting.

The bulk statements read from temp tables the adapter fills with COPY (the fastest
path into PostgreSQL, docs/BENCHMARKS.md "Machine limits"), then upsert with one
INSERT..SELECT per table; rows held at a newer updated_at are left alone. The
newer-wins rule is written once per table, as a SQL function of migration 012
(storemigration_<kind>_newer), and both the single puts and the bulk imports call it.
"""


GET_PROJECT = """
SELECT p.id, p.ecosystem, p.name, p.version, p.description, p.homepage_url,
    p.repository_url, p.created_at, p.updated_at,
    (SELECT count(*) FROM project_dependencies d WHERE d.from_project_id = p.id)
        AS dependency_count FROM projects p WHERE p.ecosystem = $1 AND p.name = $2"""

UPDATE_PROJECT = """
WITH u AS (
    UPDATE projects SET version = $3, description = $4, homepage_url = $5,
        repository_url = $6, description_lower = $8,
        updated_at = GREATEST($7, updated_at + interval '1 microsecond')
    WHERE ecosystem = $1 AND name = $2
    RETURNING *
)
SELECT p.id, p.ecosystem, p.name, p.version, p.description, p.homepage_url,
    p.repository_url, p.created_at, p.updated_at,
    (SELECT count(*) FROM project_dependencies d WHERE d.from_project_id = p.id)
        AS dependency_count FROM u p"""

INSERT_PROJECT = """
WITH i AS (
    INSERT INTO projects (ecosystem, name, version, description, homepage_url,
        repository_url, created_at, updated_at, description_lower)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)
    ON CONFLICT (ecosystem, name) DO UPDATE SET version = excluded.version,
        description = excluded.description, homepage_url = excluded.homepage_url,
        repository_url = excluded.repository_url, updated_at = excluded.updated_at,
        description_lower = excluded.description_lower
    RETURNING *
)
SELECT p.id, p.ecosystem, p.name, p.version, p.description, p.homepage_url,
    p.repository_url, p.created_at, p.updated_at,
    (SELECT count(*) FROM project_dependencies d WHERE d.from_project_id = p.id)
        AS dependency_count FROM i p"""

# Migration 006's trigger-maintained counter rows: exact, and O(1) in the table's size.
COUNT_PROJECTS = "SELECT COALESCE(sum(n), 0)::bigint FROM project_counts"

# $1: '%q%' and $3: 'q%' with LIKE wildcards escaped; $2: the normalized query.
SEARCH = r"""
SELECT name, ecosystem, description, count(*) OVER () AS total
FROM projects
WHERE name LIKE $1 ESCAPE '\' OR description_lower LIKE $1 ESCAPE '\'
ORDER BY CASE WHEN name = $2 THEN 0 WHEN name LIKE $3 ESCAPE '\' THEN 1 ELSE 2 END,
    name COLLATE "C", ecosystem COLLATE "C"
LIMIT $4"""

COUNT_MATCHES = r"""
SELECT count(*) FROM projects
WHERE name LIKE $1 ESCAPE '\' OR description_lower LIKE $1 ESCAPE '\'"""

ADD_DEPENDENCY = """
WITH p AS (SELECT id FROM projects WHERE ecosystem = $1 AND name = $2),
ins AS (
    INSERT INTO project_dependencies (from_project_id, to_ecosystem, to_name, created_at)
    SELECT id, $3, $4, $5 FROM p
    ON CONFLICT DO NOTHING
    RETURNING created_at
),
moved AS (
    UPDATE projects SET updated_at = GREATEST($5, updated_at + interval '1 microsecond')
    WHERE id = (SELECT id FROM p) AND EXISTS (SELECT 1 FROM ins)
)
SELECT (SELECT id FROM p) AS project_id,
    COALESCE((SELECT created_at FROM ins),
             (SELECT d.created_at FROM project_dependencies d JOIN p ON d.from_project_id = p.id
              WHERE d.to_ecosystem = $3 AND d.to_name = $4)) AS created_at"""

GET_DEPENDENCY_CREATED = """
SELECT d.created_at FROM project_dependencies d JOIN projects p ON d.from_project_id = p.id
WHERE p.ecosystem = $1 AND p.name = $2 AND d.to_ecosystem = $3 AND d.to_name = $4"""

COUNT_DEPENDENTS = """
SELECT count(*) FROM project_dependencies WHERE to_ecosystem = $1 AND to_name = $2"""

INSERT_CONTRIBUTOR = """
INSERT INTO contributors (id, type, name, email, github_username, wallet_address, hourly_rate,
    metadata, created_at, updated_at, email_key)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"""
GET_CONTRIBUTOR = """
SELECT id, type, name, email, github_username, wallet_address, hourly_rate,
    metadata, created_at, updated_at FROM contributors WHERE id = $1"""
LIST_CONTRIBUTORS = """
SELECT id, type, name, email, github_username, wallet_address, hourly_rate,
    metadata, created_at, updated_at FROM contributors ORDER BY created_at DESC, id DESC LIMIT $1"""
CONTRIBUTOR_EXISTS = "SELECT EXISTS (SELECT 1 FROM contributors WHERE id = $1)"

INSERT_ASSET = """
INSERT INTO assets (id, type, name, description, metadata, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)"""
GET_ASSET = """
SELECT id, type, name, description, total_cost, metadata, created_at, updated_at
FROM assets WHERE id = $1"""
LIST_ASSETS = """
SELECT id, type, name, description, total_cost, metadata, created_at, updated_at
FROM assets ORDER BY created_at DESC, id DESC LIMIT $1"""
ASSET_EXISTS = "SELECT EXISTS (SELECT 1 FROM assets WHERE id = $1)"

# One round trip: both parents are checked (contributor first, as the contract orders
# the 404s) and the row is inserted only when both exist; the trigger adds the cost.
CREATE_CONTRIBUTION = """
WITH c AS (SELECT 1 FROM contributors WHERE id = $2),
a AS (SELECT 1 FROM assets WHERE id = $3),
ins AS (
    INSERT INTO contributions (id, contributor_id, asset_id, cost_amount, coherence_score,
        metadata, "timestamp")
    SELECT $1, $2, $3, $4, $5, $6, $7
    WHERE EXISTS (SELECT 1 FROM c) AND EXISTS (SELECT 1 FROM a)
    RETURNING 1
),
moved AS (
    UPDATE assets SET updated_at = GREATEST($7, updated_at + interval '1 microsecond')
    WHERE id = $3 AND EXISTS (SELECT 1 FROM ins)
)
SELECT EXISTS (SELECT 1 FROM c) AS has_contributor, EXISTS (SELECT 1 FROM a) AS has_asset,
    EXISTS (SELECT 1 FROM ins) AS inserted"""
GET_CONTRIBUTION = """
SELECT id, contributor_id, asset_id, cost_amount, coherence_score, metadata,
    "timestamp"  FROM contributions WHERE id = $1"""
LIST_CONTRIBUTIONS = """
SELECT id, contributor_id, asset_id, cost_amount, coherence_score, metadata,
    "timestamp"  FROM contributions ORDER BY "timestamp" DESC, id DESC LIMIT $1"""
ASSET_CONTRIBUTIONS = """
SELECT id, contributor_id, asset_id, cost_amount, coherence_score, metadata,
    "timestamp"  FROM contributions WHERE asset_id = $1 ORDER BY "timestamp", id"""
CONTRIBUTOR_CONTRIBUTIONS = """
SELECT id, contributor_id, asset_id, cost_amount, coherence_score, metadata,
    "timestamp"  FROM contributions WHERE contributor_id = $1
ORDER BY "timestamp", id"""

# ---------------------------------------------------------------- replica: one record

# One statement (one round trip, autocommit): the upsert, then the identity moved past
# the replicated id so ids the database assigns later never collide.
PUT_PROJECT = """
WITH put AS (
    INSERT INTO projects (id, ecosystem, name, version, description, homepage_url,
        repository_url, created_at, updated_at, description_lower)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
    ON CONFLICT (ecosystem, name) DO UPDATE SET version = excluded.version,
        description = excluded.description, homepage_url = excluded.homepage_url,
        repository_url = excluded.repository_url, created_at = excluded.created_at,
        updated_at = excluded.updated_at, description_lower = excluded.description_lower
    WHERE storemigration_project_newer(excluded, projects)
    RETURNING 1
)
SELECT setval('projects_id_seq', $1::bigint) FROM projects_id_seq
WHERE last_value < $1::bigint OR NOT is_called"""

# Replicated ids are inserted explicitly: move the identity past them so ids the
# database assigns later never collide.
ADVANCE_PROJECT_IDS = """
SELECT setval('projects_id_seq', $1::bigint) FROM projects_id_seq
WHERE last_value < $1::bigint OR NOT is_called"""
MAX_PROJECT_ID = "SELECT max(id) FROM projects"

PUT_DEPENDENCY = """
WITH p AS (SELECT id FROM projects WHERE ecosystem = $1 AND name = $2),
ins AS (
    INSERT INTO project_dependencies (from_project_id, to_ecosystem, to_name, created_at)
    SELECT id, $3, $4, $5 FROM p ON CONFLICT DO NOTHING RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM p)"""

PUT_CONTRIBUTOR = """
INSERT INTO contributors (id, type, name, email, github_username, wallet_address, hourly_rate,
    metadata, created_at, updated_at, email_key)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (id) DO UPDATE SET type = excluded.type, name = excluded.name,
    email = excluded.email, github_username = excluded.github_username,
    wallet_address = excluded.wallet_address, hourly_rate = excluded.hourly_rate,
    metadata = excluded.metadata, created_at = excluded.created_at,
    updated_at = excluded.updated_at, email_key = excluded.email_key
WHERE storemigration_contributor_newer(excluded, contributors)"""

# total_cost is never written here: only the contributions trigger changes it.
PUT_ASSET = """
INSERT INTO assets (id, type, name, description, metadata, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (id) DO UPDATE SET type = excluded.type, name = excluded.name,
    description = excluded.description, metadata = excluded.metadata,
    created_at = excluded.created_at, updated_at = excluded.updated_at
WHERE storemigration_asset_newer(excluded, assets)"""

PUT_CONTRIBUTION = """
INSERT INTO contributions (id, contributor_id, asset_id, cost_amount, coherence_score,
    metadata, "timestamp")
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (id) DO NOTHING"""

# ---------------------------------------------------------------- replica: export

EXPORT_PROJECTS = """
SELECT p.id, p.ecosystem, p.name, p.version, p.description, p.homepage_url,
    p.repository_url, p.created_at, p.updated_at,
    (SELECT count(*) FROM project_dependencies d WHERE d.from_project_id = p.id)
        AS dependency_count FROM projects p ORDER BY p.id"""
EXPORT_DEPENDENCIES = """
SELECT p.ecosystem AS from_ecosystem, p.name AS from_name, d.to_ecosystem, d.to_name,
    d.created_at
FROM project_dependencies d JOIN projects p ON p.id = d.from_project_id
ORDER BY d.created_at, p.ecosystem, p.name, d.to_ecosystem, d.to_name"""
EXPORT_CONTRIBUTORS = """
SELECT id, type, name, email, github_username, wallet_address, hourly_rate,
    metadata, created_at, updated_at FROM contributors ORDER BY created_at, id"""
EXPORT_ASSETS = """
SELECT id, type, name, description, total_cost, metadata, created_at, updated_at
FROM assets ORDER BY created_at, id"""
EXPORT_CONTRIBUTIONS = """
SELECT id, contributor_id, asset_id, cost_amount, coherence_score, metadata,
    "timestamp"  FROM contributions ORDER BY "timestamp", id"""

# ---------------------------------------------------------------- replica: bulk import

TEMP_PROJECTS = """
CREATE TEMP TABLE import_projects (
    id bigint, ecosystem text, name text, version text, description text,
    homepage_url text, repository_url text, created_at timestamptz, updated_at timestamptz,
    description_lower text
) ON COMMIT DROP"""
# After a large import: clean the trigram indexes' GIN pending lists (007), and ANALYZE
# projects as well when the import was most of the table (005); both lend the app role
# owner-only maintenance.
CLEAN_PROJECT_SEARCH = "SELECT storemigration_clean_project_search()"
MAINTAIN_PROJECTS = "SELECT storemigration_analyze_projects()"
# The planner's row estimates of the contributions import's parents (-1: never analyzed).
PARENT_ESTIMATES = """
SELECT relname, reltuples FROM pg_class
WHERE oid IN ('public.contributors'::regclass, 'public.assets'::regclass)"""
ANALYZE_PARENTS = "SELECT storemigration_analyze_parents($1::text[])"

IMPORT_PROJECTS = """
WITH w AS (
    INSERT INTO projects (id, ecosystem, name, version, description, homepage_url,
        repository_url, created_at, updated_at, description_lower)
    SELECT id, ecosystem, name, version, description, homepage_url, repository_url,
        created_at, updated_at, description_lower
    FROM import_projects
    ON CONFLICT (ecosystem, name) DO UPDATE SET version = excluded.version,
        description = excluded.description, homepage_url = excluded.homepage_url,
        repository_url = excluded.repository_url, created_at = excluded.created_at,
        updated_at = excluded.updated_at, description_lower = excluded.description_lower
    WHERE storemigration_project_newer(excluded, projects)
    RETURNING 1
)
SELECT count(*) FROM w"""

TEMP_DEPENDENCIES = """
CREATE TEMP TABLE import_dependencies (
    from_ecosystem text, from_name text, to_ecosystem text, to_name text,
    created_at timestamptz
) ON COMMIT DROP"""
IMPORT_DEPENDENCIES = """
WITH w AS (
    INSERT INTO project_dependencies (from_project_id, to_ecosystem, to_name, created_at)
    SELECT p.id, i.to_ecosystem, i.to_name, i.created_at
    FROM import_dependencies i
    JOIN projects p ON p.ecosystem = i.from_ecosystem AND p.name = i.from_name
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT count(*) FROM w"""

TEMP_CONTRIBUTORS = """
CREATE TEMP TABLE import_contributors (
    id uuid, type text, name text, email text, github_username text, wallet_address text,
    hourly_rate numeric, metadata text, created_at timestamptz, updated_at timestamptz,
    email_key text
) ON COMMIT DROP"""
IMPORT_CONTRIBUTORS = """
WITH w AS (
    INSERT INTO contributors (id, type, name, email, github_username, wallet_address, hourly_rate,
    metadata, created_at, updated_at, email_key)
    SELECT id, type, name, email, github_username, wallet_address, hourly_rate,
        metadata::jsonb, created_at, updated_at, email_key
    FROM import_contributors
    ON CONFLICT (id) DO UPDATE SET type = excluded.type, name = excluded.name,
        email = excluded.email, github_username = excluded.github_username,
        wallet_address = excluded.wallet_address, hourly_rate = excluded.hourly_rate,
        metadata = excluded.metadata, created_at = excluded.created_at,
        updated_at = excluded.updated_at, email_key = excluded.email_key
    WHERE storemigration_contributor_newer(excluded, contributors)
    RETURNING 1
)
SELECT count(*) FROM w"""

TEMP_ASSETS = """
CREATE TEMP TABLE import_assets (
    id uuid, type text, name text, description text, metadata text,
    created_at timestamptz, updated_at timestamptz
) ON COMMIT DROP"""
IMPORT_ASSETS = """
WITH w AS (
    INSERT INTO assets (id, type, name, description, metadata, created_at, updated_at)
    SELECT id, type, name, description, metadata::jsonb, created_at, updated_at
    FROM import_assets
    ON CONFLICT (id) DO UPDATE SET type = excluded.type, name = excluded.name,
        description = excluded.description, metadata = excluded.metadata,
        created_at = excluded.created_at, updated_at = excluded.updated_at
    WHERE storemigration_asset_newer(excluded, assets)
    RETURNING 1
)
SELECT count(*) FROM w"""

TEMP_CONTRIBUTIONS = """
CREATE TEMP TABLE import_contributions (
    id uuid, contributor_id uuid, asset_id uuid, cost_amount numeric,
    coherence_score double precision, metadata text, "timestamp" timestamptz
) ON COMMIT DROP"""
# DO NOTHING on a known id: the trigger adds each contribution's cost exactly once.
IMPORT_CONTRIBUTIONS = """
WITH w AS (
    INSERT INTO contributions (id, contributor_id, asset_id, cost_amount, coherence_score,
        metadata, "timestamp")
    SELECT i.id, i.contributor_id, i.asset_id, i.cost_amount, i.coherence_score,
        i.metadata::jsonb, i."timestamp"
    FROM import_contributions i
    WHERE EXISTS (SELECT 1 FROM contributors c WHERE c.id = i.contributor_id)
      AND EXISTS (SELECT 1 FROM assets a WHERE a.id = i.asset_id)
    ORDER BY i."timestamp", i.id
    ON CONFLICT (id) DO NOTHING
    RETURNING 1
)
SELECT count(*) FROM w"""
