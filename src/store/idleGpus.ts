/**
 * The idle_gpus table (migration 008): the streaks of idle GPU readings the leader's idle monitor
 * keeps (server/idle/), as SQL over a SqlDb. SqlStore calls these inside its transactions; the
 * rows become IdleGpuRecords, never domain objects of their own.
 */
import { castRows } from './queries.ts';
import type { Param, SqlDb } from './sqlDb.ts';
import type { IdleGpuKey, IdleGpuRecord } from './store.ts';

interface IdleGpuRow {
  job_id: number | string;
  idx: number | string;
  attempt: number | string;
  gpu: number | string;
  node_id: string;
  tenant: string;
  gpu_milli: number | string;
  idle_since: number | string;
  last_idle_at: number | string;
  crossed_at: number | string | null;
}

const COLUMNS = 'job_id, idx, attempt, gpu, node_id, tenant, gpu_milli, idle_since, last_idle_at, crossed_at';

/**
 * Rows written or deleted per statement: a monitor step on a 10,000-GPU cluster touches thousands
 * (one a statement, a step took 3-5 s on PostgreSQL; 100 a statement, the ~2,700 streaks rewritten
 * together every 7.5 s were 27 round trips, 0.4-1.0 s of a cycle on a loaded PostgreSQL).
 */
const ROWS_PER_STATEMENT = 500;
const upsertRows = (n: number): string => `INSERT INTO idle_gpus (${COLUMNS}) VALUES ${castRows(n, ['BIGINT', 'BIGINT', 'BIGINT', 'BIGINT', 'TEXT', 'TEXT', 'BIGINT', 'BIGINT', 'BIGINT', 'BIGINT'])}
  ON CONFLICT (job_id, idx, attempt, gpu) DO UPDATE SET node_id = excluded.node_id, tenant = excluded.tenant, gpu_milli = excluded.gpu_milli,
  idle_since = excluded.idle_since, last_idle_at = excluded.last_idle_at, crossed_at = excluded.crossed_at`;
const deleteRows = (n: number): string => `DELETE FROM idle_gpus WHERE (job_id, idx, attempt, gpu) IN (VALUES ${castRows(n, ['BIGINT', 'BIGINT', 'BIGINT', 'BIGINT'])})`;
const keyOf = (k: IdleGpuKey): string => `${k.jobId}/${k.task}/${k.attempt}/${k.gpu}`;

function recordFromRow(r: IdleGpuRow): IdleGpuRecord {
  return {
    jobId: String(r.job_id),
    task: Number(r.idx),
    attempt: Number(r.attempt),
    gpu: Number(r.gpu),
    node: r.node_id,
    tenant: r.tenant,
    gpuMilli: Number(r.gpu_milli),
    since: Number(r.idle_since),
    lastAt: Number(r.last_idle_at),
    crossedAt: r.crossed_at === null ? null : Number(r.crossed_at),
  };
}

/** Rows of one tenant, of one job, or all; by job, task, attempt and GPU. */
export async function selectIdleGpus(db: SqlDb, filter: { readonly tenant?: string; readonly jobId?: string }): Promise<IdleGpuRecord[]> {
  const where: string[] = [];
  const params: Param[] = [];
  if (filter.tenant !== undefined) {
    params.push(filter.tenant);
    where.push(`tenant = $${params.length}`);
  }
  if (filter.jobId !== undefined) {
    if (!/^\d{1,15}$/.test(filter.jobId)) return [];
    params.push(Number(filter.jobId));
    where.push(`job_id = $${params.length}`);
  }
  const sql = `SELECT ${COLUMNS} FROM idle_gpus${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY job_id, idx, attempt, gpu`;
  return (await db.all<IdleGpuRow>(sql, params)).map(recordFromRow);
}

/** Writes the records, ROWS_PER_STATEMENT to a statement; of two with one key, the later wins (one statement cannot upsert a row twice). */
export async function upsertIdleGpus(db: SqlDb, records: readonly IdleGpuRecord[]): Promise<void> {
  const rows = [...new Map(records.map((r) => [keyOf(r), r])).values()];
  for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
    const part = rows.slice(i, i + ROWS_PER_STATEMENT);
    await db.run(upsertRows(part.length), part.flatMap((r) => [Number(r.jobId), r.task, r.attempt, r.gpu, r.node, r.tenant, r.gpuMilli, r.since, r.lastAt, r.crossedAt]));
  }
}

export async function deleteIdleGpus(db: SqlDb, keys: readonly IdleGpuKey[]): Promise<void> {
  for (let i = 0; i < keys.length; i += ROWS_PER_STATEMENT) {
    const part = keys.slice(i, i + ROWS_PER_STATEMENT);
    await db.run(deleteRows(part.length), part.flatMap((k) => [Number(k.jobId), k.task, k.attempt, k.gpu]));
  }
}
