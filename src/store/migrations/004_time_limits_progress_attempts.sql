-- Time limits, progress and attempts (the `timeout` state, TIDE_PROGRESS_FILE).
-- run_ms: running time of the job's earlier attempts (ms), added when an attempt ends, so a
-- requeue keeps it; started_at is from now on the current attempt's start (NULL again on requeue).
-- timed_out_at: when the server found the job at its time limit and asked its tasks to stop; the
-- job ends `timeout` once they have. progress_*: task 0's last progress report; checkpoint_at is
-- when checkpoint_step first took its current value (server time).
ALTER TABLE jobs ADD COLUMN run_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN timed_out_at BIGINT;
ALTER TABLE jobs ADD COLUMN progress_step BIGINT;
ALTER TABLE jobs ADD COLUMN progress_total BIGINT;
ALTER TABLE jobs ADD COLUMN progress_checkpoint_step BIGINT;
ALTER TABLE jobs ADD COLUMN progress_checkpoint_at BIGINT;
ALTER TABLE jobs ADD COLUMN progress_at BIGINT;

-- One row per run of a task (job, task index, attempt), kept across requeues: where and when it
-- ran and how it ended (end_reason: exited, stopped, start-failed, fenced, node-lost, vanished).
CREATE TABLE task_attempts (
  job_id BIGINT NOT NULL,
  idx BIGINT NOT NULL,
  attempt BIGINT NOT NULL,
  node_id TEXT NOT NULL,
  gpus TEXT NOT NULL,
  gpu_milli BIGINT NOT NULL,
  bound_at BIGINT NOT NULL,
  started_at BIGINT,
  finished_at BIGINT,
  exit_code BIGINT,
  end_reason TEXT,
  PRIMARY KEY (job_id, idx, attempt)
);
