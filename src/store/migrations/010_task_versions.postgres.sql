-- Change tracking for active tasks (store/activeTasks.ts), as 006 does for jobs: every update of a
-- task is stamped with the writing transaction's id, and a reader remembers its snapshot's xmin.
-- The scheduler's snapshot and the node list then read only the tasks changed since their last
-- read instead of every active task. Inserts need none: a new task is pending, and a task becomes
-- active (or stops being so) only by an update.
ALTER TABLE tasks ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
CREATE INDEX tasks_version ON tasks (version);
CREATE FUNCTION tide_task_version() RETURNS trigger AS $$
BEGIN
  NEW.version := pg_current_xact_id()::text::bigint;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER tasks_version BEFORE UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION tide_task_version();
-- A page of jobs in one state (GET /v1/jobs?state=pending&after=…) walks this index from the cursor.
CREATE INDEX jobs_state_id ON jobs (state, id);
