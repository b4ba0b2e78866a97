-- Change tracking for active tasks (store/activeTasks.ts), as 006 does for jobs: every update of a
-- task is stamped with the writing transaction's id, and a reader remembers its snapshot's xmin.
-- The scheduler's snapshot and the node list then read only the tasks changed since their last
-- read instead of every active task. An insert is stamped only when the task is already active
-- (the store inserts them pending: a task becomes active, or stops being so, by an update).
ALTER TABLE tasks ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
CREATE INDEX tasks_version ON tasks (version);
CREATE FUNCTION tide_task_version() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'UPDATE' OR NEW.state IN ('assigned', 'running', 'stopping') THEN
    NEW.version := pg_current_xact_id()::text::bigint;
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER tasks_version BEFORE INSERT OR UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION tide_task_version();
-- A page of jobs in one state (GET /v1/jobs?state=pending&after=…) walks this index from the cursor.
CREATE INDEX jobs_state_id ON jobs (state, id);
