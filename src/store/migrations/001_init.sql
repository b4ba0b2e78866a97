-- Tide's schema. One file per migration, applied in order; runs on SQLite and PostgreSQL 15.
-- {{serial}} becomes an auto-increment primary key in each dialect. Times are ms since epoch.

CREATE TABLE tenants (
  name TEXT PRIMARY KEY,
  created_at BIGINT NOT NULL
);

-- API tokens, stored as SHA-256 hashes. role: admin | tenant | agent.
CREATE TABLE tokens (
  hash TEXT PRIMARY KEY,
  role TEXT NOT NULL,
  tenant TEXT,
  created_at BIGINT NOT NULL
);

CREATE TABLE queues (
  name TEXT PRIMARY KEY,
  gpu_quota BIGINT,
  borrowing_limit BIGINT,
  updated_at BIGINT NOT NULL
);

CREATE TABLE jobs (
  id {{serial}},
  tenant TEXT NOT NULL,
  name TEXT NOT NULL,
  queue TEXT NOT NULL,
  priority BIGINT NOT NULL,
  kind TEXT NOT NULL,
  state TEXT NOT NULL,
  reason TEXT,
  attempt BIGINT NOT NULL,
  gpu_milli BIGINT NOT NULL,
  task_count BIGINT NOT NULL,
  preemptible BIGINT NOT NULL,
  spec TEXT NOT NULL,
  client_key TEXT,
  created_at BIGINT NOT NULL,
  started_at BIGINT,
  finished_at BIGINT,
  updated_at BIGINT NOT NULL,
  estimated_start BIGINT
);
CREATE UNIQUE INDEX jobs_tenant_client_key ON jobs (tenant, client_key);
CREATE INDEX jobs_state ON jobs (state, priority);
CREATE INDEX jobs_tenant ON jobs (tenant, id);

CREATE TABLE tasks (
  job_id BIGINT NOT NULL,
  idx BIGINT NOT NULL,
  grp TEXT NOT NULL,
  attempt BIGINT NOT NULL,
  state TEXT NOT NULL,
  node_id TEXT,
  gpus TEXT NOT NULL,
  gpu_milli BIGINT NOT NULL,
  cpu_milli BIGINT NOT NULL,
  memory_mib BIGINT NOT NULL,
  pid BIGINT,
  exit_code BIGINT,
  started_at BIGINT,
  finished_at BIGINT,
  PRIMARY KEY (job_id, idx)
);
CREATE INDEX tasks_node_state ON tasks (node_id, state);
CREATE INDEX tasks_state ON tasks (state);

CREATE TABLE nodes (
  id TEXT PRIMARY KEY,
  state TEXT NOT NULL,
  address TEXT NOT NULL,
  cpu_milli BIGINT NOT NULL,
  memory_mib BIGINT NOT NULL,
  gpus TEXT NOT NULL,
  simulated BIGINT NOT NULL,
  last_heartbeat BIGINT NOT NULL,
  telemetry TEXT NOT NULL,
  registered_at BIGINT NOT NULL
);

-- The audit log: one row per lifecycle transition.
CREATE TABLE events (
  id {{serial}},
  at BIGINT NOT NULL,
  type TEXT NOT NULL,
  job_id BIGINT,
  node_id TEXT,
  tenant TEXT,
  message TEXT NOT NULL
);
CREATE INDEX events_job ON events (job_id, id);

-- Leader election: the holder of a lease runs the scheduling loop until expires_at.
CREATE TABLE leases (
  name TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  expires_at BIGINT NOT NULL
);
