-- Services (docs/services.md). A service is a job of kind `service` that runs no task itself:
-- its replicas are jobs of their own (one task each) whose service_id is the service's id; the
-- service's controller starts and stops them. services holds what its autoscaler last decided
-- (desired replicas, GPUs kept from lending in milli-GPU, urgent, why) and its bounds, which
-- `tide scale` may change after submission.
ALTER TABLE jobs ADD COLUMN service_id BIGINT;
CREATE INDEX jobs_service ON jobs (service_id);
-- 1 while the job runs on GPUs its queue borrows from its cohort (kept by the scheduling loop).
ALTER TABLE jobs ADD COLUMN borrowed BIGINT NOT NULL DEFAULT 0;
-- A replica's readiness: the attempt whose readiness check answered 200 (NULL: not ready yet).
ALTER TABLE jobs ADD COLUMN ready_attempt BIGINT;
-- The grace period of the current stop (ms) where it is not the spec's: 0 for an immediate reclaim.
ALTER TABLE jobs ADD COLUMN stop_grace_ms BIGINT;
CREATE TABLE services (
  job_id BIGINT PRIMARY KEY,
  min_replicas BIGINT NOT NULL,
  max_replicas BIGINT NOT NULL,
  desired BIGINT NOT NULL,
  keep_milli BIGINT NOT NULL,
  urgent BIGINT NOT NULL DEFAULT 0,
  reason TEXT,
  decided_at BIGINT,
  updated_at BIGINT NOT NULL
);
