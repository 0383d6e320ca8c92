-- 002: the spec's indexes plus the ones the adapters' listing orders need.
-- UNIQUE (ecosystem, name) in 001 is the composite (ecosystem, name) index.
CREATE INDEX projects_name_trgm ON projects USING gin (name gin_trgm_ops);
CREATE INDEX projects_description_trgm ON projects USING gin (lower(description) gin_trgm_ops);

CREATE INDEX project_dependencies_to_idx ON project_dependencies (to_ecosystem, to_name);

CREATE UNIQUE INDEX contributors_email_lower_key ON contributors (lower(email))
    WHERE email IS NOT NULL;
CREATE INDEX contributors_created_idx ON contributors (created_at DESC, id DESC);
CREATE INDEX assets_created_idx ON assets (created_at DESC, id DESC);

CREATE INDEX contributions_contributor_id_idx ON contributions (contributor_id, "timestamp", id);
CREATE INDEX contributions_asset_id_idx ON contributions (asset_id, "timestamp", id);
CREATE INDEX contributions_timestamp_idx ON contributions ("timestamp" DESC, id DESC);

CREATE INDEX agent_tasks_status_created_idx ON agent_tasks (status, created_at);
CREATE INDEX agent_tasks_created_idx ON agent_tasks (created_at DESC, id DESC);
CREATE INDEX agent_tasks_type_created_idx ON agent_tasks (task_type, created_at);
