/**
 * Usage records and budgets in SQL (migration 009; docs/energy.md): applying an agent's energy
 * counters to the attempts it ran, aggregating the records for reports and budgets, and the
 * budgets themselves. Called by SqlStore inside its transactions; the rules in words:
 *
 * - A record is one task attempt (task_attempts). Its GPU-seconds are gpu_milli × its run time
 *   (to its end, or to now while it runs).
 * - Energy counters are cumulative per (node, epoch): a report whose seq is not above the last
 *   one applied for the node changes nothing; otherwise each run and the node get the difference
 *   from the counters last applied (the whole value when the epoch changed), so a repeated or
 *   reordered heartbeat never double counts and a lost one loses nothing. A run's joules go to
 *   its record only if the record is this node's; joules of runs the server does not know stay
 *   in the node's measured energy (reported as unattributed).
 * - Each delta is priced for the time since the record's counters were last applied (tariff and
 *   carbon by hour, PUE: core/energy/pricing.ts).
 * - A report over [from, to) counts each record for the share of its run time inside the window
 *   (usage taken as even over the run).
 */
import { energyCharge, type EnergyPrices } from '../core/energy/pricing.ts';
import type { EnergyReport } from '../api/types.ts';
import { parseRunId } from './lifecycle.ts';
import type { Param, SqlDb } from './sqlDb.ts';

export type UsageBy = 'tenant' | 'queue' | 'job' | 'model' | 'node';
export const USAGE_BY: readonly UsageBy[] = ['tenant', 'queue', 'job', 'model', 'node'];
export const BUDGET_PERIODS = ['day', 'week', 'month', 'total'] as const;
export type BudgetPeriod = (typeof BUDGET_PERIODS)[number];

export interface UsageQuery {
  /** Window [from, to), ms since the epoch. */
  readonly from: number;
  readonly to: number;
  /** Where running records end for now (ms). */
  readonly now: number;
  readonly by: UsageBy;
  /** Only this tenant's records. */
  readonly tenant?: string;
  /** The most (key, model) groups returned (ordered by key). */
  readonly limit?: number;
}

/** One (key, GPU model) group of records; sums are the records' shares inside the window. */
export interface UsageGroup {
  readonly key: string;
  /** null: CPU-only tasks. */
  readonly model: string | null;
  /** For by=job: the job's tenant and queue. */
  readonly tenant?: string;
  readonly queue?: string;
  readonly records: number;
  readonly gpuSeconds: number;
  readonly energyJ: number;
  readonly idleJ: number;
  /** At the meter (PUE included). */
  readonly kwh: number;
  readonly energyYuan: number;
  readonly co2Grams: number;
}

/** A node's measured energy since it first reported, and what its records were given. */
export interface NodeEnergy {
  readonly node: string;
  readonly energyJ: number;
  readonly unallocatedJ: number;
  /** Σ energy_j of the records on this node. */
  readonly jobsJ: number;
  /** Σ idle_j of those records (allocated but unused). */
  readonly allocatedIdleJ: number;
}

export interface Budget {
  readonly tenant: string;
  readonly period: BudgetPeriod;
  readonly gpuHours: number | null;
  readonly kwh: number | null;
  readonly yuan: number | null;
}

interface RunMeterRow {
  started_at: number | null;
  meter_epoch: string | null;
  meter_j: number;
  meter_idle_j: number;
  meter_at: number | null;
}

interface NodeMeterRow {
  epoch: string;
  seq: number;
  meter_j: number;
  meter_unallocated_j: number;
}

/**
 * Applies an agent's cumulative energy counters (see the file comment). Returns false when the
 * report was already applied (its seq is not newer).
 */
export async function applyEnergy(db: SqlDb, nodeId: string, r: EnergyReport, now: number, prices: EnergyPrices): Promise<boolean> {
  const lock = db.dialect === 'postgres' ? ' FOR UPDATE' : '';
  const node = await db.get<NodeMeterRow>(`SELECT epoch, seq, meter_j, meter_unallocated_j FROM node_energy WHERE node_id = $1${lock}`, [nodeId]);
  if (node && node.epoch === r.epoch && r.seq <= Number(node.seq)) return false;
  const same = node !== undefined && node.epoch === r.epoch;
  const delta = (now: number, before: number): number => (same ? Math.max(0, now - before) : now);
  const dNode = delta(r.nodeJ, node ? Number(node.meter_j) : 0);
  const dUnallocated = delta(r.unallocatedJ, node ? Number(node.meter_unallocated_j) : 0);
  if (node) {
    await db.run(
      'UPDATE node_energy SET epoch = $2, seq = $3, meter_j = $4, meter_unallocated_j = $5, energy_j = energy_j + $6, unallocated_j = unallocated_j + $7, updated_at = $8 WHERE node_id = $1',
      [nodeId, r.epoch, r.seq, r.nodeJ, r.unallocatedJ, dNode, dUnallocated, now],
    );
  } else {
    await db.run('INSERT INTO node_energy (node_id, epoch, seq, meter_j, meter_unallocated_j, energy_j, unallocated_j, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)', [nodeId, r.epoch, r.seq, r.nodeJ, r.unallocatedJ, dNode, dUnallocated, now]);
  }
  for (const run of r.runs) {
    const id = parseRunId(run.runId);
    if (!id) continue;
    const key: Param[] = [Number(id.jobId), id.index, id.attempt];
    const row = await db.get<RunMeterRow>('SELECT started_at, meter_epoch, meter_j, meter_idle_j, meter_at FROM task_attempts WHERE job_id = $1 AND idx = $2 AND attempt = $3 AND node_id = $4', [...key, nodeId]);
    if (!row) continue;
    const sameRun = row.meter_epoch === r.epoch;
    const dJ = sameRun ? Math.max(0, run.energyJ - Number(row.meter_j)) : run.energyJ;
    const dIdle = sameRun ? Math.max(0, run.idleJ - Number(row.meter_idle_j)) : run.idleJ;
    if (sameRun && dJ === 0 && dIdle === 0) continue;
    const since = row.meter_at ?? row.started_at ?? now;
    const c = energyCharge(prices, dJ, Number(since) / 1000, now / 1000);
    await db.run(
      `UPDATE task_attempts SET energy_j = energy_j + $4, idle_j = idle_j + $5, kwh = kwh + $6, energy_yuan = energy_yuan + $7, co2_g = co2_g + $8,
         meter_epoch = $9, meter_j = $10, meter_idle_j = $11, meter_at = $12 WHERE job_id = $1 AND idx = $2 AND attempt = $3`,
      [...key, dJ, dIdle, c.kwh, c.energyYuan, c.co2Grams, r.epoch, run.energyJ, run.idleJ, now],
    );
  }
  return true;
}

/** Groups of usage records (see UsageQuery), in SQL: one scan, no joins. */
export async function usageGroups(db: SqlDb, q: UsageQuery): Promise<UsageGroup[]> {
  const pg = db.dialect === 'postgres';
  const least = pg ? 'LEAST' : 'MIN';
  const greatest = pg ? 'GREATEST' : 'MAX';
  const end = 'COALESCE(a.finished_at, $3)';
  // ms of the record inside [from, to), and that as a share of its run (1 for a run of no length).
  const inside = `CAST(${greatest}(0, ${least}(${end}, $2) - ${greatest}(a.started_at, $1)) AS DOUBLE PRECISION)`;
  const share = `(CASE WHEN ${end} > a.started_at THEN ${inside} / (${end} - a.started_at) ELSE 1.0 END)`;
  const key = { tenant: 'a.tenant', queue: 'a.queue', job: 'a.job_id', model: "COALESCE(a.gpu_model, '')", node: 'a.node_id' }[q.by];
  const params: Param[] = [q.from, q.to, q.now];
  let where = `a.started_at IS NOT NULL AND a.started_at < $2 AND ${end} >= $1`;
  if (q.tenant !== undefined) {
    params.push(q.tenant);
    where += ` AND a.tenant = $${params.length}`;
  }
  params.push(q.limit ?? 1_000_000);
  const sql = `SELECT ${key} AS k, a.gpu_model AS model,${q.by === 'job' ? ' MIN(a.tenant) AS tenant, MIN(a.queue) AS queue,' : ''}
      COUNT(*) AS records,
      SUM(a.gpu_milli * ${inside}) / 1000000.0 AS gpu_seconds,
      SUM(a.energy_j * ${share}) AS energy_j,
      SUM(a.idle_j * ${share}) AS idle_j,
      SUM(a.kwh * ${share}) AS kwh,
      SUM(a.energy_yuan * ${share}) AS energy_yuan,
      SUM(a.co2_g * ${share}) AS co2_g
    FROM task_attempts a WHERE ${where}
    GROUP BY ${key}, a.gpu_model ORDER BY ${key}, a.gpu_model LIMIT $${params.length}`;
  const rows = await db.all<{ k: string | number | null; model: string | null; tenant?: string | null; queue?: string | null; records: number | string; gpu_seconds: number | null; energy_j: number | null; idle_j: number | null; kwh: number | null; energy_yuan: number | null; co2_g: number | null }>(sql, params);
  return rows.map((r) => ({
    key: r.k === null ? '' : String(r.k),
    model: r.model,
    ...(q.by === 'job' ? { tenant: r.tenant ?? '', queue: r.queue ?? '' } : {}),
    records: Number(r.records),
    gpuSeconds: Number(r.gpu_seconds ?? 0),
    energyJ: Number(r.energy_j ?? 0),
    idleJ: Number(r.idle_j ?? 0),
    kwh: Number(r.kwh ?? 0),
    energyYuan: Number(r.energy_yuan ?? 0),
    co2Grams: Number(r.co2_g ?? 0),
  }));
}

/** Every node that reported energy, with what its records were given (all time). */
export async function nodeEnergy(db: SqlDb): Promise<NodeEnergy[]> {
  const nodes = await db.all<{ node_id: string; energy_j: number; unallocated_j: number }>('SELECT node_id, energy_j, unallocated_j FROM node_energy ORDER BY node_id');
  const jobs = new Map((await db.all<{ node_id: string; j: number | null; idle: number | null }>('SELECT node_id, SUM(energy_j) AS j, SUM(idle_j) AS idle FROM task_attempts GROUP BY node_id')).map((r) => [r.node_id, r]));
  return nodes.map((n) => ({ node: n.node_id, energyJ: Number(n.energy_j), unallocatedJ: Number(n.unallocated_j), jobsJ: Number(jobs.get(n.node_id)?.j ?? 0), allocatedIdleJ: Number(jobs.get(n.node_id)?.idle ?? 0) }));
}

interface BudgetRow {
  tenant: string;
  period: string;
  gpu_hours: number | null;
  kwh: number | null;
  yuan: number | null;
}

const budgetFromRow = (r: BudgetRow): Budget => ({
  tenant: r.tenant,
  period: r.period as BudgetPeriod,
  gpuHours: r.gpu_hours === null ? null : Number(r.gpu_hours),
  kwh: r.kwh === null ? null : Number(r.kwh),
  yuan: r.yuan === null ? null : Number(r.yuan),
});

export async function putBudget(db: SqlDb, b: Budget, now: number): Promise<void> {
  await db.run(
    `INSERT INTO budgets (tenant, period, gpu_hours, kwh, yuan, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (tenant, period) DO UPDATE SET gpu_hours = excluded.gpu_hours, kwh = excluded.kwh, yuan = excluded.yuan, updated_at = excluded.updated_at`,
    [b.tenant, b.period, b.gpuHours, b.kwh, b.yuan, now],
  );
}

export async function deleteBudget(db: SqlDb, tenant: string, period: BudgetPeriod): Promise<boolean> {
  return (await db.run('DELETE FROM budgets WHERE tenant = $1 AND period = $2', [tenant, period])) > 0;
}

export async function listBudgets(db: SqlDb, tenant?: string): Promise<Budget[]> {
  const rows = tenant === undefined ? await db.all<BudgetRow>('SELECT tenant, period, gpu_hours, kwh, yuan FROM budgets ORDER BY tenant, period') : await db.all<BudgetRow>('SELECT tenant, period, gpu_hours, kwh, yuan FROM budgets WHERE tenant = $1 ORDER BY period', [tenant]);
  return rows.map(budgetFromRow);
}
