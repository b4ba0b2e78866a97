/** Every SQL statement the store runs, in one place; PostgreSQL placeholders ($1 …), portable to SQLite. */
export const JOB_COLS = 'id, tenant, name, queue, priority, kind, state, reason, attempt, gpu_milli, task_count, preemptible, spec, client_key, created_at, started_at, finished_at, updated_at, estimated_start';
const TASK_COLS = 'job_id, idx, grp, attempt, state, node_id, gpus, gpu_milli, cpu_milli, memory_mib, pid, exit_code, started_at, finished_at';
const TOKEN_COLS = 'id, role, tenant, node_id, created_at, expires_at, revoked_at, last_used_at';
export const ACTIVE_IN = "('assigned', 'running', 'stopping')";
export const OPEN_JOBS_IN = "('pending', 'admitted', 'running', 'preempted')";

export const Q = {
  createMigrations: 'CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)',
  appliedMigrations: 'SELECT version FROM schema_migrations ORDER BY version',
  recordMigration: 'INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)',

  ensureTenant: 'INSERT INTO tenants (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING',
  listTenants: 'SELECT name FROM tenants ORDER BY name',
  putToken: `INSERT INTO tokens (hash, role, tenant, created_at, id, node_id, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (hash) DO UPDATE SET role = excluded.role, tenant = excluded.tenant, node_id = excluded.node_id`,
  findToken: `SELECT ${TOKEN_COLS} FROM tokens WHERE hash = $1`,
  /** A new token only (no upsert): a node's credential never takes over an existing token. */
  insertToken: 'INSERT INTO tokens (hash, role, tenant, created_at, id, node_id, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)',
  touchToken: 'UPDATE tokens SET last_used_at = $2 WHERE hash = $1 AND (last_used_at IS NULL OR last_used_at <= $3)',
  listTokens: `SELECT ${TOKEN_COLS} FROM tokens ORDER BY created_at, id`,
  tokenById: `SELECT ${TOKEN_COLS} FROM tokens WHERE id = $1`,
  revokeToken: 'UPDATE tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1',
  liveNodeCredential: 'SELECT id FROM tokens WHERE node_id = $1 AND revoked_at IS NULL',
  resetNodeCredential: 'UPDATE tokens SET revoked_at = $2 WHERE node_id = $1 AND revoked_at IS NULL RETURNING id',
  /** $3…: the hashes to keep. */
  revokeRoleExcept: (keep: number): string =>
    `UPDATE tokens SET revoked_at = $2 WHERE role = $1 AND revoked_at IS NULL${keep ? ` AND hash NOT IN (${Array.from({ length: keep }, (_, i) => `$${i + 3}`).join(', ')})` : ''} RETURNING id`,
  putQueue: 'INSERT INTO queues (name, gpu_quota, borrowing_limit, updated_at, tenants) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO UPDATE SET gpu_quota = excluded.gpu_quota, borrowing_limit = excluded.borrowing_limit, updated_at = excluded.updated_at, tenants = excluded.tenants',
  listQueues: 'SELECT name, gpu_quota, borrowing_limit, tenants FROM queues ORDER BY name',

  insertJob: `INSERT INTO jobs (tenant, name, queue, priority, kind, state, reason, attempt, gpu_milli, task_count, preemptible, spec, client_key, created_at, updated_at, spec_hash)
    VALUES ($1, $2, $3, $4, $5, 'pending', 'submitted', 0, $6, $7, $8, $9, $10, $11, $11, $12) RETURNING ${JOB_COLS}`,
  insertTask: `INSERT INTO tasks (job_id, idx, grp, attempt, state, gpus, gpu_milli, cpu_milli, memory_mib) VALUES ($1, $2, $3, 0, 'pending', '[]', $4, $5, $6)`,
  jobByClientKey: `SELECT ${JOB_COLS}, spec_hash FROM jobs WHERE tenant = $1 AND client_key = $2`,
  jobById: `SELECT ${JOB_COLS} FROM jobs WHERE id = $1`,
  jobStateCounts: 'SELECT state, COUNT(*) AS n FROM jobs GROUP BY state',
  /** Open jobs without their spec text: specs never change, so the store caches them by id. */
  openJobsLite: `SELECT ${JOB_COLS.replace(' spec,', " '' AS spec,")} FROM jobs WHERE state IN ${OPEN_JOBS_IN} ORDER BY id`,
  specsByIds: (n: number): string => `SELECT id, spec FROM jobs WHERE id IN (${Array.from({ length: n }, (_, i) => `$${i + 1}`).join(', ')})`,
  tasksOfJob: `SELECT ${TASK_COLS} FROM tasks WHERE job_id = $1 ORDER BY idx`,
  activeTasks: `SELECT ${TASK_COLS} FROM tasks WHERE state IN ${ACTIVE_IN} ORDER BY job_id, idx`,
  activeTasksOnNode: `SELECT ${TASK_COLS} FROM tasks WHERE node_id = $1 AND state IN ${ACTIVE_IN} ORDER BY job_id, idx`,
  listJobsBase: `SELECT ${JOB_COLS} FROM jobs`,

  setJobState: 'UPDATE jobs SET state = $2, reason = $3, updated_at = $4 WHERE id = $1',
  setJobStarted: 'UPDATE jobs SET started_at = COALESCE(started_at, $2) WHERE id = $1',
  setJobFinished: 'UPDATE jobs SET finished_at = $2 WHERE id = $1',
  admitJob: "UPDATE jobs SET state = 'admitted', reason = NULL, estimated_start = NULL, updated_at = $3 WHERE id = $1 AND state = 'pending' AND attempt = $2",
  /** Pending reasons for n jobs in one statement (UPDATE … FROM VALUES runs on SQLite ≥ 3.33 and PostgreSQL). */
  setPendingReasons: (n: number): string =>
    `WITH v(id, reason, est) AS (VALUES ${Array.from({ length: n }, (_, i) => `(CAST($${3 * i + 1} AS BIGINT), CAST($${3 * i + 2} AS TEXT), CAST($${3 * i + 3} AS BIGINT))`).join(', ')})
     UPDATE jobs SET reason = v.reason, estimated_start = v.est FROM v WHERE jobs.id = v.id AND jobs.state = 'pending'`,
  requeueJob: "UPDATE jobs SET state = 'pending', reason = $2, attempt = attempt + 1, updated_at = $3 WHERE id = $1",
  requeueTasks: "UPDATE tasks SET state = 'pending', node_id = NULL, gpus = '[]', pid = NULL, exit_code = NULL, started_at = NULL, finished_at = NULL, attempt = $2 WHERE job_id = $1",
  bindTask: "UPDATE tasks SET state = 'assigned', node_id = $3, gpus = $4 WHERE job_id = $1 AND idx = $2 AND state = 'pending'",
  stopActiveTasks: "UPDATE tasks SET state = 'stopping' WHERE job_id = $1 AND state IN ('assigned', 'running')",
  stopPendingTasks: "UPDATE tasks SET state = 'stopped', finished_at = $2 WHERE job_id = $1 AND state = 'pending'",
  taskStarted: "UPDATE tasks SET state = 'running', pid = $3, started_at = $4 WHERE job_id = $1 AND idx = $2 AND state = 'assigned'",
  taskExited: 'UPDATE tasks SET state = $3, exit_code = $4, finished_at = $5 WHERE job_id = $1 AND idx = $2',
  stopTasksOnNode: `UPDATE tasks SET state = 'stopped', finished_at = $2 WHERE node_id = $1 AND state IN ${ACTIVE_IN}`,

  upsertNode: `INSERT INTO nodes (id, state, address, cpu_milli, memory_mib, gpus, simulated, last_heartbeat, telemetry, registered_at)
    VALUES ($1, 'ready', $2, $3, $4, $5, $6, $7, '[]', $7)
    ON CONFLICT (id) DO UPDATE SET state = 'ready', address = excluded.address, cpu_milli = excluded.cpu_milli, memory_mib = excluded.memory_mib,
      gpus = excluded.gpus, simulated = excluded.simulated, last_heartbeat = excluded.last_heartbeat, registered_at = excluded.registered_at`,
  nodeById: 'SELECT * FROM nodes WHERE id = $1',
  listNodes: 'SELECT * FROM nodes ORDER BY id',
  // registered_at is the latest registration: with the count of lost nodes it versions capacity.
  nodesVersion: "SELECT COUNT(*) AS n, COALESCE(MAX(registered_at), 0) AS r, COALESCE(SUM(CASE WHEN state = 'lost' THEN 1 ELSE 0 END), 0) AS l FROM nodes",
  /** $4 = 1 when the agent still runs tasks the server has written off: a lost node stays lost until they are gone. */
  heartbeatNode: "UPDATE nodes SET last_heartbeat = $2, telemetry = $3, state = CASE WHEN state = 'lost' AND $4 = 0 THEN 'ready' ELSE state END WHERE id = $1",
  silentNodes: "SELECT id FROM nodes WHERE state = 'ready' AND last_heartbeat < $1 ORDER BY id",
  setNodeSchedulable: "UPDATE nodes SET state = $2 WHERE id = $1 AND state IN ('ready', 'drained')",
  markNodeLost: "UPDATE nodes SET state = 'lost' WHERE id = $1 AND state = 'ready'",
  jobsOnNode: `SELECT DISTINCT job_id FROM tasks WHERE node_id = $1 AND state IN ${ACTIVE_IN}`,
  nodeAddresses: 'SELECT t.idx AS idx, n.address AS address FROM tasks t JOIN nodes n ON n.id = t.node_id WHERE t.job_id = $1 ORDER BY t.idx',

  insertEvent: 'INSERT INTO events (at, type, job_id, node_id, tenant, message) VALUES ($1, $2, $3, $4, $5, $6)',
  listEventsBase: 'SELECT id, at, type, job_id, node_id, tenant, message FROM events',

  acquireLease: `INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
    ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
    WHERE leases.holder = excluded.holder OR leases.expires_at < $4`,
  leaseHolder: 'SELECT holder, expires_at FROM leases WHERE name = $1',
  leaseHolderForUpdate: 'SELECT holder, expires_at FROM leases WHERE name = $1 FOR UPDATE',
  releaseLease: 'DELETE FROM leases WHERE name = $1 AND holder = $2',
} as const;
