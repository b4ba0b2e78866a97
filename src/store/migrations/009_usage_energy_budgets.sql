-- Usage records (docs/energy.md): each row of task_attempts (one run of one task, never
-- overwritten, kept across requeues) becomes its usage record. tenant, queue and gpu_model are
-- copied at bind so reports aggregate without joins; GPU-seconds are gpu_milli × the attempt's
-- run time. Measured energy is applied from the agents' cumulative counters: energy_j (GPU joules
-- attributed to the run), idle_j (the part spent while its GPU read 0 %), kwh, energy_yuan and
-- co2_g (priced by hour of the tariff when applied, PUE included). meter_epoch/meter_j/
-- meter_idle_j are the last counters applied (so a repeated heartbeat adds nothing) and meter_at
-- when they were.
ALTER TABLE task_attempts ADD COLUMN tenant TEXT;
ALTER TABLE task_attempts ADD COLUMN queue TEXT;
ALTER TABLE task_attempts ADD COLUMN gpu_model TEXT;
ALTER TABLE task_attempts ADD COLUMN energy_j DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE task_attempts ADD COLUMN idle_j DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE task_attempts ADD COLUMN kwh DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE task_attempts ADD COLUMN energy_yuan DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE task_attempts ADD COLUMN co2_g DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE task_attempts ADD COLUMN meter_epoch TEXT;
ALTER TABLE task_attempts ADD COLUMN meter_j DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE task_attempts ADD COLUMN meter_idle_j DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE task_attempts ADD COLUMN meter_at BIGINT;
UPDATE task_attempts SET tenant = (SELECT j.tenant FROM jobs j WHERE j.id = task_attempts.job_id), queue = (SELECT j.queue FROM jobs j WHERE j.id = task_attempts.job_id);

-- Records not yet rolled up into usage_days (finished since its watermark, or running) are read
-- by finished_at; budgets read one tenant's.
CREATE INDEX task_attempts_finished ON task_attempts (finished_at);
CREATE INDEX task_attempts_tenant_finished ON task_attempts (tenant, finished_at);

-- Daily rollups of finished records (as slurmdbd's usage tables, which sreport reads): per local
-- day (ms of its start), tenant, queue and GPU model ('' for CPU-only), each record's usage
-- spread over the days it ran in proportion to its time in each; records: those that started
-- that day. usage_rollup holds the watermark (records finished before `through` are in
-- usage_days; none after) and the local-day offset the days were cut with.
CREATE TABLE usage_days (
  day BIGINT NOT NULL,
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
  PRIMARY KEY (day, tenant, queue, gpu_model)
);
CREATE TABLE usage_rollup (
  id BIGINT PRIMARY KEY,
  through BIGINT NOT NULL,
  utc_offset_ms BIGINT NOT NULL
);

-- Per node, the measured energy of all its GPUs and the unallocated part (no run held the GPU),
-- with the last counters applied (epoch, seq, cumulative joules).
CREATE TABLE node_energy (
  node_id TEXT PRIMARY KEY,
  epoch TEXT NOT NULL,
  seq BIGINT NOT NULL,
  meter_j DOUBLE PRECISION NOT NULL,
  meter_unallocated_j DOUBLE PRECISION NOT NULL,
  energy_j DOUBLE PRECISION NOT NULL,
  unallocated_j DOUBLE PRECISION NOT NULL,
  updated_at BIGINT NOT NULL
);

-- Budgets per tenant and period (day, week, month, total): any limit given (GPU-hours, kWh at the
-- meter, yuan) that the tenant's usage in the current period has reached holds its pending jobs.
CREATE TABLE budgets (
  tenant TEXT NOT NULL,
  period TEXT NOT NULL,
  gpu_hours DOUBLE PRECISION,
  kwh DOUBLE PRECISION,
  yuan DOUBLE PRECISION,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (tenant, period)
);
