/** Every SQL statement the store runs, in one place; PostgreSQL placeholders ($1 …), portable to SQLite. */
import type { SqlDb } from './sqlDb.ts';

export const JOB_COLS = 'id, tenant, name, queue, priority, kind, state, reason, attempt, gpu_milli, task_count, preemptible, spec, client_key, created_at, started_at, finished_at, updated_at, estimated_start, run_ms, timed_out_at, progress_step, progress_total, progress_checkpoint_step, progress_checkpoint_at, progress_at, borrowed, service_id, ready_attempt, stop_grace_ms, power_cap_watts, array_id, array_index, array_count';
/** The job columns with an empty spec, for readers that take specs from memory (specs never change). */
export const JOB_COLS_LITE = JOB_COLS.replace(' spec,', " '' AS spec,");
export const TASK_COLS = 'job_id, idx, grp, attempt, state, node_id, gpus, gpu_milli, cpu_milli, memory_mib, pid, exit_code, started_at, finished_at';
const TOKEN_COLS = 'id, role, tenant, node_id, created_at, expires_at, revoked_at, last_used_at';
export const ACTIVE_IN = "('assigned', 'running', 'stopping')";
export const OPEN_JOBS_IN = "('pending', 'admitted', 'running', 'preempted')";

/**
 * Hot updates set the row's change version themselves (above every other row's, as the SQLite
 * triggers of migrations 006 and 010 would): on SQLite the trigger then does not fire, which was
 * a second UPDATE of the row every time. PostgreSQL's trigger sets the version whatever the
 * statement says.
 */
const JOB_VERSION = 'version = (SELECT MAX(version) FROM jobs) + 1';
const TASK_VERSION = 'version = (SELECT MAX(version) FROM tasks) + 1';

// The multi-row statements below test a state as `state || ''`, and join their VALUES as `+v.x`
// (numbers) or `v.x || ''` (text): otherwise, from a few hundred rows of VALUES on, SQLite's
// planner walked the whole table or its state index (every pending job) and probed an index it
// built on the VALUES, 16-60 ms a statement at 100,000 pending jobs instead of one primary-key
// lookup per row (2.5 ms for 500 reasons).

/** `$first, …` for n parameters. */
const params = (first: number, n: number): string => Array.from({ length: n }, (_, i) => `$${first + i}`).join(', ');

/**
 * The watermark of a table's `version` column (migrations 006, 010, 014), read before the rows:
 * a row changed after the read has a version at or above it. On SQLite (one writer) the version
 * is a counter and the watermark MAX(version) + 1; on PostgreSQL it is the writing transaction's
 * id and the watermark the reading snapshot's xmin (every transaction below it has ended), so
 * another server's late commit is still read.
 */
export async function readVersionWatermark(db: SqlDb, table: 'jobs' | 'tasks' | 'tokens'): Promise<number> {
  const sql = db.dialect === 'sqlite' ? `SELECT COALESCE(MAX(version), 0) + 1 AS w FROM ${table}` : 'SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS w';
  return Number((await db.get<{ w: number | string }>(sql))?.w ?? 0);
}

/** n rows of VALUES, one parameter per column cast to its type (`(CAST($1 AS BIGINT), …), …`), numbered from $1. */
export const castRows = (n: number, types: readonly string[]): string =>
  Array.from({ length: n }, (_, i) => `(${types.map((t, k) => `CAST($${types.length * i + k + 1} AS ${t})`).join(', ')})`).join(', ');

export const Q = {
  createMigrations: 'CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)',
  appliedMigrations: 'SELECT version FROM schema_migrations ORDER BY version',
  recordMigration: 'INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)',

  ensureTenant: 'INSERT INTO tenants (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING',
  listTenants: 'SELECT name FROM tenants ORDER BY name',
  putToken: `INSERT INTO tokens (hash, role, tenant, created_at, id, node_id, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (hash) DO UPDATE SET role = excluded.role, tenant = excluded.tenant, node_id = excluded.node_id`,
  findToken: `SELECT ${TOKEN_COLS} FROM tokens WHERE hash = $1`,
  /** Other servers' token writes, for the token cache (migration 014; readVersionWatermark). */
  tokensChangedSince: 'SELECT hash FROM tokens WHERE version >= $1',
  /** Jobs written since a watermark (readVersionWatermark), for the heartbeat answers' cache (store/runInfoCache.ts). */
  jobsChangedSince: 'SELECT id, stop_grace_ms, power_cap_watts FROM jobs WHERE version >= $1',
  /** A new token only (no upsert): a node's credential never takes over an existing token. */
  insertToken: 'INSERT INTO tokens (hash, role, tenant, created_at, id, node_id, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)',
  /** Tokens' last uses (hash, time), each written where the one recorded is a minute old or more. */
  touchTokens: (n: number): string =>
    `WITH v(hash, at) AS (VALUES ${castRows(n, ['TEXT', 'BIGINT'])})
     UPDATE tokens SET last_used_at = v.at FROM v WHERE tokens.hash = v.hash || '' AND (tokens.last_used_at IS NULL OR tokens.last_used_at <= v.at - 60000)`,
  listTokens: `SELECT ${TOKEN_COLS} FROM tokens ORDER BY created_at, id`,
  tokenById: `SELECT ${TOKEN_COLS} FROM tokens WHERE id = $1`,
  revokeToken: 'UPDATE tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1',
  liveNodeCredential: 'SELECT id FROM tokens WHERE node_id = $1 AND revoked_at IS NULL',
  resetNodeCredential: 'UPDATE tokens SET revoked_at = $2 WHERE node_id = $1 AND revoked_at IS NULL RETURNING id',
  /** $3…: the hashes to keep. */
  revokeRoleExcept: (keep: number): string =>
    `UPDATE tokens SET revoked_at = $2 WHERE role = $1 AND revoked_at IS NULL${keep ? ` AND hash NOT IN (${Array.from({ length: keep }, (_, i) => `$${i + 3}`).join(', ')})` : ''} RETURNING id`,
  putQueue: `INSERT INTO queues (name, gpu_quota, borrowing_limit, updated_at, tenants, cohort, model_quotas) VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (name) DO UPDATE SET gpu_quota = excluded.gpu_quota, borrowing_limit = excluded.borrowing_limit, updated_at = excluded.updated_at, tenants = excluded.tenants,
      cohort = excluded.cohort, model_quotas = excluded.model_quotas`,
  listQueues: 'SELECT name, gpu_quota, borrowing_limit, tenants, cohort, model_quotas FROM queues ORDER BY name',
  /** Jobs that ran out their work after a cursor (finished_at, id), oldest first (the bound on finished_at alone is the index's range: an OR was a scan from the index's start on PostgreSQL). */
  finishedAfter: `SELECT ${JOB_COLS_LITE} FROM jobs WHERE state IN ('succeeded', 'timeout') AND finished_at >= $1 AND (finished_at > $1 OR id > $2) ORDER BY finished_at, id LIMIT $3`,
  finishedLatest: `SELECT ${JOB_COLS_LITE} FROM jobs WHERE state IN ('succeeded', 'timeout') AND finished_at IS NOT NULL ORDER BY finished_at DESC, id DESC LIMIT $1`,
  /** Task 0 of n jobs with its node's GPUs: the last attempt's running time and model. */
  firstTasksOf: (n: number): string =>
    `SELECT t.job_id AS job_id, t.gpus AS gpus, t.started_at AS started_at, t.finished_at AS finished_at, n.gpus AS node_gpus FROM tasks t LEFT JOIN nodes n ON n.id = t.node_id
     WHERE t.idx = 0 AND t.job_id IN (${Array.from({ length: n }, (_, i) => `$${i + 1}`).join(', ')})`,
  /**
   * Per tenant and hour of ending: resource-seconds of task runs that ended after $1, every
   * attempt counted (task_attempts keeps preempted and requeued runs; floats: no overflow on
   * either database).
   */
  usageByHour: `SELECT j.tenant AS tenant, (a.finished_at / 3600000) * 3600000 AS hour,
      SUM(CAST(a.gpu_milli AS DOUBLE PRECISION) * (a.finished_at - a.started_at) / 1000000.0) AS gpu,
      SUM(CAST(t.cpu_milli AS DOUBLE PRECISION) * (a.finished_at - a.started_at) / 1000000.0) AS cpu,
      SUM(CAST(t.memory_mib AS DOUBLE PRECISION) * (a.finished_at - a.started_at) / 1000.0) AS mem
    FROM task_attempts a JOIN tasks t ON t.job_id = a.job_id AND t.idx = a.idx JOIN jobs j ON j.id = a.job_id
    WHERE a.finished_at > $1 AND a.started_at IS NOT NULL AND a.finished_at >= a.started_at
    GROUP BY j.tenant, (a.finished_at / 3600000) * 3600000 ORDER BY j.tenant, hour`,
  recentSpecs: 'SELECT spec FROM jobs ORDER BY id DESC LIMIT $1',

  /**
   * A job, with its version set here on SQLite (one writer: MAX + 1; migration 010) rather than
   * by an UPDATE from a trigger; PostgreSQL's trigger sets it on the way in.
   */
  /**
   * n new jobs in one statement, pending: $1…$15 per job (tenant, name, queue, priority, kind, GPU
   * milli, task count, preemptible, spec, client key, time, spec hash, array or null, first
   * element index or null, elements).
   */
  insertJobs: (dialect: 'sqlite' | 'postgres', n: number): string => {
    const cols = 'tenant, name, queue, priority, kind, state, reason, attempt, gpu_milli, task_count, preemptible, spec, client_key, created_at, updated_at, spec_hash, array_id, array_index, array_count';
    const version = dialect === 'sqlite' ? ', (SELECT COALESCE(MAX(version), 0) + 1 FROM jobs)' : '';
    const rows = Array.from({ length: n }, (_, i) => {
      const p = (k: number): string => `$${15 * i + k}`;
      return `(${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)}, 'pending', 'submitted', 0, ${p(6)}, ${p(7)}, ${p(8)}, ${p(9)}, ${p(10)}, ${p(11)}, ${p(11)}, ${p(12)}, CAST(${p(13)} AS BIGINT), CAST(${p(14)} AS BIGINT), ${p(15)}${version})`;
    });
    return `INSERT INTO jobs (${cols}${dialect === 'sqlite' ? ', version' : ''}) VALUES ${rows.join(', ')} RETURNING ${JOB_COLS_LITE}, version`;
  },
  /** An array's row (migration 018): $1…$5 (tenant, name, queue, size, time); answers its id. */
  insertArray: 'INSERT INTO arrays (tenant, name, queue, size, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id',
  arrayById: 'SELECT id, tenant, name, queue, size, created_at FROM arrays WHERE id = $1',
  /** An array's elements by state, and its first job: `ok`, of the ranges that failed, the elements that exited 0 (migration 019). */
  arrayCounts: 'SELECT state, SUM(array_count) AS n, SUM(CASE WHEN array_failed > 0 THEN array_count - array_failed ELSE 0 END) AS ok, MIN(id) AS first FROM jobs WHERE array_id = $1 GROUP BY state',
  /** The nodes where n jobs ($1 …) have tasks that hold resources. */
  activeNodesOfJobs: (n: number): string => `SELECT DISTINCT node_id FROM tasks WHERE job_id IN (${params(1, n)}) AND state IN ${ACTIVE_IN} AND node_id IS NOT NULL`,
  /** n jobs ($3 …) cancelled with reason $1 at $2 where still pending; answers those cancelled. */
  cancelPendingJobs: (n: number): string =>
    `UPDATE jobs SET state = 'cancelled', reason = $1, updated_at = $2, finished_at = $2, ${JOB_VERSION} WHERE id IN (${params(3, n)}) AND state || '' = 'pending' RETURNING id, tenant`,
  /** The pending tasks of n jobs ($2 …) stopped at $1 (what stopPendingTasks does for one). */
  stopPendingTasksOf: (n: number): string => `UPDATE tasks SET state = 'stopped', finished_at = $1 WHERE job_id IN (${params(2, n)}) AND state || '' = 'pending'`,
  /** An array's unfinished jobs (id, state, and the elements they stand for), n at a time after an id. */
  arrayOpenJobs: `SELECT ${JOB_COLS} FROM jobs WHERE array_id = $1 AND id > $2 AND state IN ${OPEN_JOBS_IN} ORDER BY id LIMIT $3`,
  /** An array's job that stands for element $3: by its index range, or by name ($2: name-i) for one written before migration 019. */
  arrayElement: `SELECT ${JOB_COLS} FROM jobs WHERE array_id = $1 AND (name = $2 OR (array_index <= $3 AND array_index + array_count > $3)) ORDER BY array_count LIMIT 1`,
  /** The pending task of job $1 (a range of CPU-only array elements) sized to hold $2 CPU milli and $3 MiB. */
  setPendingTaskSize: `UPDATE tasks SET cpu_milli = $2, memory_mib = $3 WHERE job_id = $1 AND state || '' = 'pending'`,
  /** Of range $1 that ended: $2 of its elements exited non-zero (at most its count). */
  setArrayFailed: 'UPDATE jobs SET array_failed = CASE WHEN $2 < array_count THEN $2 ELSE array_count END WHERE id = $1',
  /** Job $1, still pending, made to stand for array elements $2 … $2 + $3 - 1, named $4, at $5. */
  setArrayRange: `UPDATE jobs SET array_index = $2, array_count = $3, name = $4, updated_at = $5, ${JOB_VERSION} WHERE id = $1 AND state || '' = 'pending'`,
  /** n tasks of one job: $1…$6 per task (job, index, group, GPU milli, CPU milli, memory). */
  insertTasks: (n: number): string =>
    `INSERT INTO tasks (job_id, idx, grp, attempt, state, gpus, gpu_milli, cpu_milli, memory_mib) VALUES ${Array.from({ length: n }, (_, i) => `($${6 * i + 1}, $${6 * i + 2}, $${6 * i + 3}, 0, 'pending', '[]', $${6 * i + 4}, $${6 * i + 5}, $${6 * i + 6})`).join(', ')}`,
  savepoint: 'SAVEPOINT tide_submit',
  releaseSavepoint: 'RELEASE SAVEPOINT tide_submit',
  rollbackToSavepoint: 'ROLLBACK TO SAVEPOINT tide_submit',
  /**
   * A tenant's jobs by client key ($1 the tenant, then n keys). On PostgreSQL each key is looked up
   * alone (a LATERAL subquery that LIMIT keeps apart): a generic plan of `tenant = $1 AND client_key
   * IN (…)`, made while the tenant looked small (statistics from before a burst, or a tenant far
   * above the average), walked the tenant's every job through jobs_tenant and filtered the keys
   * (100 ms at 8,000 jobs, 415 ms at 40,000) instead of probing jobs_tenant_client_key.
   */
  jobsByClientKeys: (dialect: 'sqlite' | 'postgres', n: number): string =>
    dialect === 'sqlite'
      ? `SELECT ${JOB_COLS}, spec_hash FROM jobs WHERE tenant = $1 AND client_key IN (${params(2, n)})`
      : `SELECT j.* FROM (VALUES ${Array.from({ length: n }, (_, i) => `(CAST($${i + 2} AS TEXT))`).join(', ')}) AS k(key) CROSS JOIN LATERAL (SELECT ${JOB_COLS}, spec_hash FROM jobs WHERE tenant = $1 AND client_key = k.key LIMIT 1) j`,
  jobById: `SELECT ${JOB_COLS} FROM jobs WHERE id = $1`,
  /** Jobs by state, an array's jobs counted by their elements (migration 019; `ok`: as arrayCounts). */
  jobStateCounts: 'SELECT state, SUM(array_count) AS n, SUM(CASE WHEN array_failed > 0 THEN array_count - array_failed ELSE 0 END) AS ok FROM jobs GROUP BY state',
  countJobsAfter: 'SELECT COALESCE(SUM(array_count), 0) AS n FROM jobs WHERE state = $1 AND id > $2',
  countOpenJobs: `SELECT COALESCE(SUM(array_count), 0) AS n FROM jobs WHERE tenant = $1 AND state IN ${OPEN_JOBS_IN}`,
  /** Open jobs without their spec text: specs never change, so the store caches them by id. */
  openJobsLite: `SELECT ${JOB_COLS_LITE} FROM jobs WHERE state IN ${OPEN_JOBS_IN} ORDER BY id`,
  tasksOfJob: `SELECT ${TASK_COLS} FROM tasks WHERE job_id = $1 ORDER BY idx`,
  /** n jobs ($1 …), and their tasks by job and index; lockJobs takes their row locks in id order (PostgreSQL). */
  tasksOfJobs: (n: number): string => `SELECT ${TASK_COLS} FROM tasks WHERE job_id IN (${params(1, n)}) ORDER BY job_id, idx`,
  lockJobs: (n: number): string => `SELECT id FROM jobs WHERE id IN (${params(1, n)}) ORDER BY id FOR UPDATE`,
  activeTasks: `SELECT ${TASK_COLS} FROM tasks WHERE state IN ${ACTIVE_IN} ORDER BY job_id, idx`,
  activeTasksOnNode: `SELECT ${TASK_COLS} FROM tasks WHERE node_id = $1 AND state IN ${ACTIVE_IN} ORDER BY job_id, idx`,
  activeTasksOnNodes: (n: number): string => `SELECT ${TASK_COLS} FROM tasks WHERE node_id IN (${params(1, n)}) AND state IN ${ACTIVE_IN}`,
  listJobsBase: `SELECT ${JOB_COLS} FROM jobs`,

  setJobState: `UPDATE jobs SET state = $2, reason = $3, updated_at = $4, ${JOB_VERSION} WHERE id = $1`,
  /** The current attempt's start: its first task's. */
  setJobStarted: `UPDATE jobs SET started_at = COALESCE(started_at, $2), ${JOB_VERSION} WHERE id = $1`,
  setJobFinished: `UPDATE jobs SET finished_at = $2, ${JOB_VERSION} WHERE id = $1`,
  /**
   * n jobs ($4 …) to state $1 with reason $2 at $3; `finished` (a terminal state) sets their
   * finished_at too. A job without a start yet takes its tasks' first (this attempt's: a requeue
   * clears both), so that a job started and settled in one heartbeat is written once (jobsStarted).
   */
  setJobsState: (n: number, finished: boolean): string =>
    `UPDATE jobs SET state = $1, reason = $2, updated_at = $3${finished ? ', finished_at = $3' : ''}, started_at = COALESCE(jobs.started_at, (SELECT MIN(t.started_at) FROM tasks t WHERE t.job_id = jobs.id)), ${JOB_VERSION} WHERE id IN (${params(4, n)})`,
  /** State and attempt of n jobs ($1 …), with the rest of what settle judges them by (not their specs). */
  jobStatesOf: (n: number): string => `SELECT id, tenant, state, reason, attempt, timed_out_at, array_count FROM jobs WHERE id IN (${params(1, n)})`,
  /**
   * Admits n jobs still pending in the attempt planned: $1…$4 per job (id, attempt, keep the
   * power cap: 1, else the cap in W per GPU its attempt runs at, or null), the time last.
   * Answers the admitted jobs' ids and tenants.
   */
  admitJobs: (n: number): string =>
    `WITH v(vid, vattempt, vkeep, vcap) AS (VALUES ${castRows(n, ['BIGINT', 'BIGINT', 'INTEGER', 'BIGINT'])})
     UPDATE jobs SET state = 'admitted', reason = NULL, estimated_start = NULL, updated_at = $${4 * n + 1}, power_cap_watts = CASE WHEN v.vkeep = 1 THEN jobs.power_cap_watts ELSE v.vcap END, ${JOB_VERSION}
     FROM v WHERE jobs.id = +v.vid AND jobs.state || '' = 'pending' AND jobs.attempt = +v.vattempt RETURNING id, tenant, name, task_count, stop_grace_ms, power_cap_watts, array_index, array_count`,
  /** Binds n pending tasks: $1…$4 per task (job, index, node, GPUs as JSON). */
  bindTasks: (n: number): string =>
    `WITH v(vjob, vidx, vnode, vgpus) AS (VALUES ${castRows(n, ['BIGINT', 'BIGINT', 'TEXT', 'TEXT'])})
     UPDATE tasks SET state = 'assigned', node_id = v.vnode, gpus = v.vgpus, ${TASK_VERSION} FROM v WHERE tasks.job_id = +v.vjob AND tasks.idx = +v.vidx AND tasks.state || '' = 'pending'`,
  /** The attempts' records of n bound tasks, with what usage reports group by (tenant, queue, GPU model: migration 009): $1…$3 per task (job, index, GPU model), the bind time last. */
  insertAttempts: (n: number): string =>
    `WITH v(vjob, vidx, vmodel) AS (VALUES ${castRows(n, ['BIGINT', 'BIGINT', 'TEXT'])})
     INSERT INTO task_attempts (job_id, idx, attempt, node_id, gpus, gpu_milli, bound_at, tenant, queue, gpu_model)
     SELECT t.job_id, t.idx, t.attempt, t.node_id, t.gpus, t.gpu_milli, $${3 * n + 1}, j.tenant, j.queue, v.vmodel FROM v JOIN tasks t ON t.job_id = +v.vjob AND t.idx = +v.vidx JOIN jobs j ON j.id = t.job_id
     WHERE t.state || '' = 'assigned'
     ON CONFLICT (job_id, idx, attempt) DO NOTHING`,
  /** Pending reasons for n jobs in one statement (UPDATE … FROM VALUES runs on SQLite ≥ 3.33 and PostgreSQL). */
  setPendingReasons: (n: number): string =>
    `WITH v(id, reason, est) AS (VALUES ${castRows(n, ['BIGINT', 'TEXT', 'BIGINT'])})
     UPDATE jobs SET reason = v.reason, estimated_start = v.est, ${JOB_VERSION} FROM v WHERE jobs.id = +v.id AND jobs.state || '' = 'pending'`,
  /**
   * A plan's pending reasons for n jobs ($1… per job: id, reason, estimate, the version the
   * scheduler's open-jobs mirror holds the job at, the version to write), where the job is still
   * pending at that version (store/openJobs.ts tookReasons); answers the ids written. On
   * PostgreSQL the version written is the transaction's id whatever is given (the jobs_version
   * trigger, migration 006).
   */
  setPlanReasons: (n: number): string =>
    `WITH v(id, reason, est, seen, ver) AS (VALUES ${castRows(n, ['BIGINT', 'TEXT', 'BIGINT', 'BIGINT', 'BIGINT'])})
     UPDATE jobs SET reason = v.reason, estimated_start = v.est, version = v.ver FROM v WHERE jobs.id = +v.id AND jobs.state || '' = 'pending' AND jobs.version = +v.seen RETURNING jobs.id AS id`,
  /** This PostgreSQL transaction's id (what the jobs_version trigger stamps its writes with). */
  currentTransaction: 'SELECT pg_current_xact_id()::text::bigint AS x',
  /**
   * Back to pending: the attempt's running time (since started_at, up to $3) joins run_ms. Its
   * start may not be written yet (a task that started and stopped in one heartbeat: jobsStarted),
   * and is then its tasks' first.
   */
  requeueJob:
    "UPDATE jobs SET state = 'pending', reason = $2, attempt = attempt + 1, updated_at = $3, run_ms = run_ms + COALESCE($3 - COALESCE(started_at, (SELECT MIN(t.started_at) FROM tasks t WHERE t.job_id = jobs.id)), 0), started_at = NULL, stop_grace_ms = NULL, borrowed = 0 WHERE id = $1",
  /** Marks a job at its time limit (once): its tasks are then asked to stop. */
  markTimedOut: "UPDATE jobs SET timed_out_at = $2, reason = $3, updated_at = $2 WHERE id = $1 AND timed_out_at IS NULL AND state IN ('pending', 'admitted', 'running')",
  setJobProgress: 'UPDATE jobs SET progress_step = $2, progress_total = $3, progress_checkpoint_step = $4, progress_checkpoint_at = $5, progress_at = $6 WHERE id = $1',
  /** The runs on a lost node end with it. */
  // Found from the node's active tasks by the attempts' key: tested on the finished_at index
  // (`+` keeps SQLite off it), every open attempt of the cluster was walked per lost node, 30-50
  // ms each in a burst of array tasks; hundreds of nodes lost together held the thread 18 s.
  attemptsLostOnNode: `UPDATE task_attempts SET finished_at = $2, end_reason = 'node-lost' WHERE (job_id, idx, attempt) IN
    (SELECT job_id, idx, attempt FROM tasks WHERE node_id = $1 AND state IN ${ACTIVE_IN}) AND +finished_at IS NULL`,
  attemptsOfJob: 'SELECT job_id, idx, attempt, node_id, gpus, gpu_milli, started_at, finished_at, exit_code, end_reason FROM task_attempts WHERE job_id = $1 ORDER BY attempt, idx',
  requeueTasks: "UPDATE tasks SET state = 'pending', node_id = NULL, gpus = '[]', pid = NULL, exit_code = NULL, started_at = NULL, finished_at = NULL, attempt = $2 WHERE job_id = $1",
  stopActiveTasks: "UPDATE tasks SET state = 'stopping' WHERE job_id = $1 AND state IN ('assigned', 'running')",
  stopPendingTasks: "UPDATE tasks SET state = 'stopped', finished_at = $2 WHERE job_id = $1 AND state = 'pending'",
  /** n tasks started: $1…$4 per task (job, index, pid, start), each still assigned. */
  tasksStarted: (n: number): string =>
    `WITH v(vjob, vidx, vpid, vat) AS (VALUES ${castRows(n, ['BIGINT', 'BIGINT', 'BIGINT', 'BIGINT'])})
     UPDATE tasks SET state = 'running', pid = v.vpid, started_at = v.vat, ${TASK_VERSION} FROM v WHERE tasks.job_id = +v.vjob AND tasks.idx = +v.vidx AND tasks.state || '' = 'assigned'`,
  /** Their attempts' starts: $1…$4 per task (job, index, attempt, start). */
  attemptsStarted: (n: number): string =>
    `WITH v(vjob, vidx, vatt, vat) AS (VALUES ${castRows(n, ['BIGINT', 'BIGINT', 'BIGINT', 'BIGINT'])})
     UPDATE task_attempts SET started_at = v.vat FROM v WHERE task_attempts.job_id = +v.vjob AND task_attempts.idx = +v.vidx AND task_attempts.attempt = +v.vatt`,
  /**
   * Their jobs' starts (each job once): $1…$2 per job (id, its first task's start); a job's start
   * is its first task's. Written after settle (SqlStore.heartbeat): a job settle moved took its
   * start with its state (setJobsState), and one it requeued starts again in its next attempt, so
   * only a job without a start that is not pending is written.
   */
  jobsStarted: (n: number): string =>
    `WITH v(vid, vat) AS (VALUES ${castRows(n, ['BIGINT', 'BIGINT'])})
     UPDATE jobs SET started_at = v.vat, ${JOB_VERSION} FROM v WHERE jobs.id = +v.vid AND jobs.started_at IS NULL AND jobs.state || '' <> 'pending'`,
  /** n tasks ended: $1…$4 per task (job, index, state, exit code), the time last. */
  tasksExited: (n: number): string =>
    `WITH v(vjob, vidx, vstate, vcode) AS (VALUES ${castRows(n, ['BIGINT', 'BIGINT', 'TEXT', 'BIGINT'])})
     UPDATE tasks SET state = v.vstate, exit_code = v.vcode, finished_at = $${4 * n + 1}, ${TASK_VERSION} FROM v WHERE tasks.job_id = +v.vjob AND tasks.idx = +v.vidx`,
  /**
   * n tasks that started and ended between two heartbeats, each still assigned: $1…$6 per task
   * (job, index, pid, start, state, exit code), the time last. One write of each row instead of a
   * start and then an end (on PostgreSQL every write of a row is a new copy of it).
   */
  tasksRan: (n: number): string =>
    `WITH v(vjob, vidx, vpid, vat, vstate, vcode) AS (VALUES ${castRows(n, ['BIGINT', 'BIGINT', 'BIGINT', 'BIGINT', 'TEXT', 'BIGINT'])})
     UPDATE tasks SET state = v.vstate, pid = v.vpid, started_at = v.vat, exit_code = v.vcode, finished_at = $${6 * n + 1}, ${TASK_VERSION} FROM v WHERE tasks.job_id = +v.vjob AND tasks.idx = +v.vidx AND tasks.state || '' = 'assigned'`,
  /** Their attempts' starts and ends: $1…$6 per task (job, index, attempt, start, exit code, end reason), the time last. */
  attemptsRan: (n: number): string =>
    `WITH v(vjob, vidx, vatt, vat, vcode, vreason) AS (VALUES ${castRows(n, ['BIGINT', 'BIGINT', 'BIGINT', 'BIGINT', 'BIGINT', 'TEXT'])})
     UPDATE task_attempts SET started_at = v.vat, finished_at = $${6 * n + 1}, exit_code = v.vcode, end_reason = v.vreason FROM v
     WHERE task_attempts.job_id = +v.vjob AND task_attempts.idx = +v.vidx AND task_attempts.attempt = +v.vatt AND task_attempts.finished_at IS NULL`,
  /** Their attempts' ends: $1…$5 per task (job, index, attempt, exit code, end reason), the time last. */
  attemptsEnded: (n: number): string =>
    `WITH v(vjob, vidx, vatt, vcode, vreason) AS (VALUES ${castRows(n, ['BIGINT', 'BIGINT', 'BIGINT', 'BIGINT', 'TEXT'])})
     UPDATE task_attempts SET finished_at = $${5 * n + 1}, exit_code = v.vcode, end_reason = v.vreason FROM v
     WHERE task_attempts.job_id = +v.vjob AND task_attempts.idx = +v.vidx AND task_attempts.attempt = +v.vatt AND task_attempts.finished_at IS NULL`,
  stopTasksOnNode: `UPDATE tasks SET state = 'stopped', finished_at = $2 WHERE node_id = $1 AND state IN ${ACTIVE_IN}`,

  upsertNode: `INSERT INTO nodes (id, state, address, cpu_milli, memory_mib, gpus, simulated, last_heartbeat, telemetry, registered_at)
    VALUES ($1, 'ready', $2, $3, $4, $5, $6, $7, '[]', $7)
    ON CONFLICT (id) DO UPDATE SET state = 'ready', address = excluded.address, cpu_milli = excluded.cpu_milli, memory_mib = excluded.memory_mib,
      gpus = excluded.gpus, simulated = excluded.simulated, last_heartbeat = excluded.last_heartbeat, registered_at = excluded.registered_at`,
  nodeById: 'SELECT * FROM nodes WHERE id = $1',
  /** A node's state with its active tasks, one row per task (task columns null when it has none), in one read for a heartbeat. */
  nodeWithActiveTasks: `SELECT n.state AS node_state, n.address AS node_address, ${TASK_COLS.split(', ').map((c) => `t.${c} AS ${c}`).join(', ')}
    FROM nodes n LEFT JOIN tasks t ON t.node_id = n.id AND t.state IN ${ACTIVE_IN} WHERE n.id = $1 ORDER BY t.job_id, t.idx`,
  /** Quiet heartbeats of n nodes in one statement (store/heartbeatWrites.ts): a node's last heartbeat never moves back. */
  heartbeatNodes: (n: number): string =>
    `WITH v(id, at, telemetry) AS (VALUES ${castRows(n, ['TEXT', 'BIGINT', 'TEXT'])})
     UPDATE nodes SET last_heartbeat = v.at, telemetry = v.telemetry FROM v WHERE nodes.id = v.id || '' AND nodes.last_heartbeat <= v.at`,
  /**
   * Lease renewals (SqlStore.renewNodeLease): the renewal time moves forward (never back), and
   * only for a node not lost, so that a renewal never outruns expiry. On PostgreSQL expiry locks
   * the silent rows first (silentNodesLocked): a renewal waits for it, then finds the node lost.
   */
  renewNodes: (n: number): string =>
    `WITH v(id, at) AS (VALUES ${castRows(n, ['TEXT', 'BIGINT'])})
     UPDATE nodes SET lease_renewed_at = CASE WHEN COALESCE(nodes.lease_renewed_at, 0) < v.at THEN v.at ELSE nodes.lease_renewed_at END
     FROM v WHERE nodes.id = v.id || '' AND nodes.state <> 'lost' RETURNING nodes.id AS id`,
  nodeIdsIn: (n: number): string => `SELECT id FROM nodes WHERE id IN (${params(1, n)})`,
  /** PostgreSQL: the turn of a shared write to many node rows (sqlStore.ts takeSharedNodeWrites), under a key of Tide's own. */
  sharedNodeWrites: 'SELECT pg_advisory_xact_lock(7464600110) AS turn',
  listNodes: 'SELECT * FROM nodes ORDER BY id',
  // registered_at is the latest registration: with the count of lost nodes it versions capacity.
  nodesVersion: "SELECT COUNT(*) AS n, COALESCE(MAX(registered_at), 0) AS r, COALESCE(SUM(CASE WHEN state = 'lost' THEN 1 ELSE 0 END), 0) AS l FROM nodes",
  /** $4 = 1 when the agent still runs tasks the server has written off: a lost node stays lost until they are gone. */
  heartbeatNode: "UPDATE nodes SET last_heartbeat = $2, telemetry = $3, state = CASE WHEN state = 'lost' AND $4 = 0 THEN 'ready' ELSE state END WHERE id = $1",
  /** Neither a heartbeat nor a lease renewal (renewNodes) since $1. */
  silentNodes: "SELECT id FROM nodes WHERE state = 'ready' AND last_heartbeat < $1 AND COALESCE(lease_renewed_at, 0) < $1 ORDER BY id",
  silentNodesLocked: "SELECT id FROM nodes WHERE state = 'ready' AND last_heartbeat < $1 AND COALESCE(lease_renewed_at, 0) < $1 ORDER BY id FOR UPDATE SKIP LOCKED",
  setNodeSchedulable: "UPDATE nodes SET state = $2 WHERE id = $1 AND state IN ('ready', 'drained')",
  markNodeLost: "UPDATE nodes SET state = 'lost' WHERE id = $1 AND state = 'ready'",
  jobsOnNode: `SELECT DISTINCT job_id FROM tasks WHERE node_id = $1 AND state IN ${ACTIVE_IN}`,
  /** What a heartbeat's answer reads of a job beyond its spec (store/runInfoCache.ts RunRow). */
  runRowsOf: (n: number): string => `SELECT id, name, task_count, stop_grace_ms, power_cap_watts, array_index, array_count FROM jobs WHERE id IN (${params(1, n)})`,
  nodeAddressesOfJobs: (n: number): string => `SELECT t.job_id AS job_id, t.idx AS idx, n.address AS address FROM tasks t JOIN nodes n ON n.id = t.node_id WHERE t.job_id IN (${params(1, n)}) ORDER BY t.job_id, t.idx`,

  // Services (migration 007, store/services.ts).
  insertService: 'INSERT INTO services (job_id, min_replicas, max_replicas, desired, keep_milli, updated_at) VALUES ($1, $2, $3, $4, $5, $6)',
  serviceRows: `SELECT s.job_id AS job_id, s.min_replicas AS min_replicas, s.max_replicas AS max_replicas, s.desired AS desired, s.keep_milli AS keep_milli, s.urgent AS urgent,
      s.reason AS reason, s.decided_at AS decided_at FROM services s JOIN jobs j ON j.id = s.job_id`,
  setServiceDecision: 'UPDATE services SET desired = $2, keep_milli = $3, urgent = $4, reason = $5, decided_at = $6, updated_at = $6 WHERE job_id = $1',
  setServiceBounds: 'UPDATE services SET min_replicas = $2, max_replicas = $3, urgent = 0, desired = CASE WHEN desired < $2 THEN $2 WHEN desired > $3 THEN $3 ELSE desired END, updated_at = $4 WHERE job_id = $1',
  insertReplica: `INSERT INTO jobs (tenant, name, queue, priority, kind, state, reason, attempt, gpu_milli, task_count, preemptible, spec, client_key, created_at, updated_at, service_id)
    VALUES ($1, $2, $3, $4, $5, 'pending', 'submitted', 0, $6, $7, 0, $8, NULL, $9, $9, $10) RETURNING ${JOB_COLS}`,
  /** Open replicas of n services, and finished ones whose task is still stopping. */
  replicasOf: (n: number): string => {
    const ids = Array.from({ length: n }, (_, i) => `$${i + 1}`).join(', ');
    return `SELECT ${JOB_COLS} FROM jobs WHERE service_id IN (${ids}) AND (state IN ${OPEN_JOBS_IN}
      OR id IN (SELECT t.job_id FROM tasks t JOIN jobs r ON r.id = t.job_id WHERE r.service_id IN (${ids}) AND t.state IN ${ACTIVE_IN})) ORDER BY id`;
  },
  openReplicaIds: `SELECT id FROM jobs WHERE service_id = $1 AND state IN ${OPEN_JOBS_IN} ORDER BY id`,
  replicaTasks: (n: number): string =>
    `SELECT t.job_id AS job_id, t.state AS state, t.node_id AS node_id, t.started_at AS started_at, n.address AS address FROM tasks t LEFT JOIN nodes n ON n.id = t.node_id
     WHERE t.idx = 0 AND t.job_id IN (${Array.from({ length: n }, (_, i) => `$${i + 1}`).join(', ')})`,
  markReady: 'UPDATE jobs SET ready_attempt = $2 WHERE id = $1 AND attempt = $2 AND (ready_attempt IS NULL OR ready_attempt <> $2)',
  setBorrowed: (n: number): string => `UPDATE jobs SET borrowed = $1 WHERE borrowed <> $1 AND id IN (${Array.from({ length: n }, (_, i) => `$${i + 2}`).join(', ')})`,
  setStopGrace: 'UPDATE jobs SET stop_grace_ms = $2 WHERE id = $1',

  insertEvent: 'INSERT INTO events (at, type, job_id, node_id, tenant, message) VALUES ($1, $2, $3, $4, $5, $6)',
  /** The tenants of n jobs ($1 …). */
  tenantsOfJobs: (n: number): string => `SELECT id, tenant FROM jobs WHERE id IN (${params(1, n)})`,
  /** n events in one statement: $1…$6 per event, as insertEvent. */
  insertEvents: (n: number): string =>
    `INSERT INTO events (at, type, job_id, node_id, tenant, message) VALUES ${Array.from({ length: n }, (_, i) => `($${6 * i + 1}, $${6 * i + 2}, $${6 * i + 3}, $${6 * i + 4}, $${6 * i + 5}, $${6 * i + 6})`).join(', ')}`,
  listEventsBase: 'SELECT id, at, type, job_id, node_id, tenant, message FROM events',

  acquireLease: `INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
    ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
    WHERE leases.holder = excluded.holder OR leases.expires_at < $4`,
  leaseHolder: 'SELECT holder, expires_at FROM leases WHERE name = $1',
  leaseHolderForUpdate: 'SELECT holder, expires_at FROM leases WHERE name = $1 FOR UPDATE',
  releaseLease: 'DELETE FROM leases WHERE name = $1 AND holder = $2',
} as const;
