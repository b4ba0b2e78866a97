-- Services' output and hourly rollups (docs/energy.md).
--
-- A service replica's attempt records what it served, from its Prometheus counters scraped by the
-- services' controller: requests (the count of its service-time summary: requests finished) and
-- tokens (its tokens counter). The counters are cumulative per process; requests_seen and
-- tokens_seen are the values last scraped, so each scrape adds only the increase (a value below
-- the last one is a restarted counter and counts from 0 again, as Prometheus's rate() reads it).
ALTER TABLE task_attempts ADD COLUMN requests DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE task_attempts ADD COLUMN tokens DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE task_attempts ADD COLUMN requests_seen DOUBLE PRECISION;
ALTER TABLE task_attempts ADD COLUMN tokens_seen DOUBLE PRECISION;
ALTER TABLE usage_days ADD COLUMN requests DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE usage_days ADD COLUMN tokens DOUBLE PRECISION NOT NULL DEFAULT 0;

-- Hourly rollups beside the daily ones, cut at the same local hours (a local day is the sum of
-- its 24 hours): each finished record's usage spread over the hours it ran in proportion to its
-- time in each. The cover_* columns hold the part of the records that ran through the whole
-- hour (started before it, ended at or after its end), with `covering` their count: their usage
-- is even over the hour, so a report edge cut inside the hour takes them pro rata and reads only
-- the records that started or ended within that hour.
CREATE TABLE usage_hours (
  hour BIGINT NOT NULL,
  tenant TEXT NOT NULL,
  queue TEXT NOT NULL,
  gpu_model TEXT NOT NULL,
  records BIGINT NOT NULL,
  gpu_ms DOUBLE PRECISION NOT NULL,
  energy_j DOUBLE PRECISION NOT NULL,
  idle_j DOUBLE PRECISION NOT NULL,
  kwh DOUBLE PRECISION NOT NULL,
  energy_yuan DOUBLE PRECISION NOT NULL,
  co2_g DOUBLE PRECISION NOT NULL,
  requests DOUBLE PRECISION NOT NULL,
  tokens DOUBLE PRECISION NOT NULL,
  covering BIGINT NOT NULL,
  cover_gpu_ms DOUBLE PRECISION NOT NULL,
  cover_energy_j DOUBLE PRECISION NOT NULL,
  cover_idle_j DOUBLE PRECISION NOT NULL,
  cover_kwh DOUBLE PRECISION NOT NULL,
  cover_energy_yuan DOUBLE PRECISION NOT NULL,
  cover_co2_g DOUBLE PRECISION NOT NULL,
  cover_requests DOUBLE PRECISION NOT NULL,
  cover_tokens DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (hour, tenant, queue, gpu_model)
);

-- The records that started within an edge hour of a report.
CREATE INDEX task_attempts_started ON task_attempts (started_at);

-- The watermark moves to hours now: the daily sums are rebuilt with the hourly ones at the next
-- rollup (they are derived from task_attempts, which keeps every record).
DELETE FROM usage_days;
DELETE FROM usage_rollup;
