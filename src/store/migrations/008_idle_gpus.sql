-- Idle allocations (server/idle/): one row per GPU of a running task while that GPU reads idle
-- (utilization and memory in use at or below the cluster's thresholds), written by the leader's
-- idle monitor and read by every server (GET /v1/idle, GET /v1/jobs/:id, /metrics).
-- idle_since: the first idle sample of the streak; last_idle_at: the latest idle sample the
-- leader has written (at most every half node lease: the idle time is last_idle_at - idle_since);
-- crossed_at: when the streak reached the configured idle time (NULL: not yet). A fractional GPU
-- shared by several tasks has one row per task.
CREATE TABLE idle_gpus (
  job_id BIGINT NOT NULL,
  idx BIGINT NOT NULL,
  attempt BIGINT NOT NULL,
  gpu BIGINT NOT NULL,
  node_id TEXT NOT NULL,
  tenant TEXT NOT NULL,
  gpu_milli BIGINT NOT NULL,
  idle_since BIGINT NOT NULL,
  last_idle_at BIGINT NOT NULL,
  crossed_at BIGINT,
  PRIMARY KEY (job_id, idx, attempt, gpu)
);
CREATE INDEX idle_gpus_tenant ON idle_gpus (tenant);
