/**
 * The idle_gpus table (migration 008): the streaks of idle GPU readings the leader's idle monitor
 * keeps (server/idle/), as SQL over a SqlDb. SqlStore calls these inside its transactions; the
 * rows become IdleGpuRecords, never domain objects of their own.
 */
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

const UPSERT = `INSERT INTO idle_gpus (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
  ON CONFLICT (job_id, idx, attempt, gpu) DO UPDATE SET node_id = excluded.node_id, tenant = excluded.tenant, gpu_milli = excluded.gpu_milli,
  idle_since = excluded.idle_since, last_idle_at = excluded.last_idle_at, crossed_at = excluded.crossed_at`;
const DELETE = 'DELETE FROM idle_gpus WHERE job_id = $1 AND idx = $2 AND attempt = $3 AND gpu = $4';

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

export async function upsertIdleGpu(db: SqlDb, r: IdleGpuRecord): Promise<void> {
  await db.run(UPSERT, [Number(r.jobId), r.task, r.attempt, r.gpu, r.node, r.tenant, r.gpuMilli, r.since, r.lastAt, r.crossedAt]);
}

export async function deleteIdleGpu(db: SqlDb, k: IdleGpuKey): Promise<void> {
  await db.run(DELETE, [Number(k.jobId), k.task, k.attempt, k.gpu]);
}
