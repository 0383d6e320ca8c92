-- 014: where a resumable backfill keeps its place, and the ordered index the chunked
-- verify and the backfill's key ranges read agent_tasks by.
--
-- A backfill copies memory's records kind by kind in key order, one batch per call.
-- After each batch the API advances this row (kind, last key copied, done/total,
-- written/skipped/refused): a killed Job, started again under the same run name,
-- continues after `last_key`, so at most the one batch in flight is copied twice
-- (harmlessly: the imports are newer-wins). `cutoff` is when the run began: the run
-- copies only records created by then; dual-write carries everything newer.
-- The operator reads progress through the API (GET /api/admin/backfill/progress).
-- The app role may read and write these rows, nothing more.

CREATE TABLE migration_checkpoint (
    run          text NOT NULL,
    kind         text NOT NULL,
    position     smallint NOT NULL,
    last_key     jsonb,
    done         bigint NOT NULL DEFAULT 0,
    total        bigint NOT NULL,
    written      bigint NOT NULL DEFAULT 0,
    skipped      bigint NOT NULL DEFAULT 0,
    refused_ids  jsonb NOT NULL DEFAULT '[]'::jsonb,
    batches      integer NOT NULL DEFAULT 0,
    cutoff       timestamptz NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    PRIMARY KEY (run, kind),
    CONSTRAINT migration_checkpoint_counts CHECK (done >= 0 AND total >= 0)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON migration_checkpoint TO storemigration_app;

-- Key ranges compare task ids bytewise (COLLATE "C", Python's order), so the range
-- reads use this index instead of sorting the table per chunk.
CREATE INDEX agent_tasks_id_c ON agent_tasks (id COLLATE "C");
