-- 003: the derived values the database keeps itself.
-- total_cost changes ONLY here: no upsert or backfill writes it, so a contribution
-- inserted once (ON CONFLICT DO NOTHING on re-import) is counted exactly once.
CREATE FUNCTION contributions_add_cost() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE assets SET total_cost = total_cost + NEW.cost_amount WHERE id = NEW.asset_id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER contributions_add_cost
    AFTER INSERT ON contributions
    FOR EACH ROW EXECUTE FUNCTION contributions_add_cost();

-- updated_at moves on an update of a record's own fields unless the statement set it
-- (replicated records carry the updated_at the trusted store gave them). The column
-- lists leave total_cost out: a contribution changes the asset's derived total, not
-- the asset record the client wrote.
CREATE FUNCTION touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER projects_touch_updated_at
    BEFORE UPDATE OF ecosystem, name, version, description, homepage_url, repository_url
    ON projects FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
CREATE TRIGGER contributors_touch_updated_at
    BEFORE UPDATE OF type, name, email, github_username, wallet_address, hourly_rate, metadata
    ON contributors FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
CREATE TRIGGER assets_touch_updated_at
    BEFORE UPDATE OF type, name, description, metadata
    ON assets FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
CREATE TRIGGER agent_tasks_touch_updated_at
    BEFORE UPDATE OF status, output, progress_pct, current_step, decision_prompt, decision
    ON agent_tasks FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
