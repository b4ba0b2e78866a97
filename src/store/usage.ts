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
 *   (usage taken as even over the run); `records` counts the attempts that started in it.
 * - Daily rollups (usage_days, as slurmdbd's usage tables that sreport reads): `rollUp` folds the
 *   records that finished before a local midnight at least an hour ago into per-day sums, and
 *   moves the watermark there. A report whose window starts at a local midnight (and ends at
 *   one, or after the watermark) by tenant, queue or model reads the rollups for the records
 *   before the watermark and the records themselves after it (the two sets are disjoint); any
 *   other report reads the records. Energy that reaches a record after it was rolled up is added
 *   to the day it finished.
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
  /** The local time the daily rollups are cut in; given, whole days are read from them where they can be. */
  readonly utcOffsetHours?: number;
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
  finished_at: number | null;
  tenant: string | null;
  queue: string | null;
  gpu_model: string | null;
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
  const rolled = r.runs.length ? await db.get<RollupRow>('SELECT through, utc_offset_ms FROM usage_rollup WHERE id = 1') : undefined;
  for (const run of r.runs) {
    const id = parseRunId(run.runId);
    if (!id) continue;
    const key: Param[] = [Number(id.jobId), id.index, id.attempt];
    const row = await db.get<RunMeterRow>('SELECT started_at, finished_at, tenant, queue, gpu_model, meter_epoch, meter_j, meter_idle_j, meter_at FROM task_attempts WHERE job_id = $1 AND idx = $2 AND attempt = $3 AND node_id = $4', [...key, nodeId]);
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
    // Late joules of a record already rolled up go to the day it finished.
    if (rolled && row.finished_at !== null && Number(row.finished_at) < Number(rolled.through)) {
      const day = localDay(Number(row.finished_at), Number(rolled.utc_offset_ms));
      await upsertDays(db, [[bucketKey(day, row), { records: 0, gpuMs: 0, energyJ: dJ, idleJ: dIdle, kwh: c.kwh, energyYuan: c.energyYuan, co2Grams: c.co2Grams }]]);
    }
  }
  return true;
}

/** Groups of usage records (see UsageQuery and the file comment), ordered by key and model. */
export async function usageGroups(db: SqlDb, q: UsageQuery): Promise<UsageGroup[]> {
  const roll = q.utcOffsetHours === undefined || q.by === 'job' || q.by === 'node' ? undefined : await db.get<RollupRow>('SELECT through, utc_offset_ms FROM usage_rollup WHERE id = 1');
  const offsetMs = Math.round((q.utcOffsetHours ?? 0) * HOUR);
  const through = roll ? Number(roll.through) : 0;
  const aligned = (t: number): boolean => localDay(t, offsetMs) === t;
  if (!roll || Number(roll.utc_offset_ms) !== offsetMs || through <= 0 || !(q.from <= 0 || aligned(q.from)) || !(q.to >= through || aligned(q.to))) return recordGroups(db, q, null);
  const merged = new Map<string, UsageGroup>();
  const { limit: _, ...unlimited } = q;
  for (const g of [...(await dayGroups(db, q)), ...(await recordGroups(db, unlimited, through))]) {
    const k = `${g.key}\u0000${g.model ?? ''}`;
    const had = merged.get(k);
    merged.set(k, had ? { ...had, records: had.records + g.records, gpuSeconds: had.gpuSeconds + g.gpuSeconds, energyJ: had.energyJ + g.energyJ, idleJ: had.idleJ + g.idleJ, kwh: had.kwh + g.kwh, energyYuan: had.energyYuan + g.energyYuan, co2Grams: had.co2Grams + g.co2Grams } : g);
  }
  const sorted = [...merged.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : (a.model ?? '') < (b.model ?? '') ? -1 : (a.model ?? '') > (b.model ?? '') ? 1 : 0));
  return q.limit === undefined ? sorted : sorted.slice(0, q.limit);
}

type GroupRow = { k: string | number | null; model: string | null; tenant?: string | null; queue?: string | null; records: number | string | null; gpu_seconds: number | null; energy_j: number | null; idle_j: number | null; kwh: number | null; energy_yuan: number | null; co2_g: number | null };

const groupFromRow = (by: UsageBy) => (r: GroupRow): UsageGroup => ({
  key: r.k === null ? '' : String(r.k),
  model: r.model === '' ? null : r.model,
  ...(by === 'job' ? { tenant: r.tenant ?? '', queue: r.queue ?? '' } : {}),
  records: Number(r.records ?? 0),
  gpuSeconds: Number(r.gpu_seconds ?? 0),
  energyJ: Number(r.energy_j ?? 0),
  idleJ: Number(r.idle_j ?? 0),
  kwh: Number(r.kwh ?? 0),
  energyYuan: Number(r.energy_yuan ?? 0),
  co2Grams: Number(r.co2_g ?? 0),
});

/**
 * The records themselves (those finished at or after `unrolledFrom` and the running ones, when
 * given), each counted for its share inside the window. SQLite is told how to read the table:
 * it has no statistics for a range bound at run time, and an index walk with a row lookup per
 * record is many times slower than a scan when the window holds most of them.
 */
async function recordGroups(db: SqlDb, q: UsageQuery, unrolledFrom: number | null): Promise<UsageGroup[]> {
  const pg = db.dialect === 'postgres';
  const least = pg ? 'LEAST' : 'MIN';
  const greatest = pg ? 'GREATEST' : 'MAX';
  const end = 'COALESCE(a.finished_at, $3)';
  // ms of the record inside [from, to), and that as a share of its run (1 for a run of no length).
  const inside = `CAST(${greatest}(0, ${least}(${end}, $2) - ${greatest}(a.started_at, $1)) AS DOUBLE PRECISION)`;
  const share = `(CASE WHEN ${end} > a.started_at THEN ${inside} / (${end} - a.started_at) ELSE 1.0 END)`;
  const key = { tenant: 'a.tenant', queue: 'a.queue', job: 'a.job_id', model: "COALESCE(a.gpu_model, '')", node: 'a.node_id' }[q.by];
  const params: Param[] = [q.from, q.to, q.now];
  let where = 'a.started_at IS NOT NULL AND a.started_at < $2 AND (a.finished_at >= $1 OR (a.finished_at IS NULL AND $3 >= $1))';
  if (unrolledFrom !== null) {
    params.push(unrolledFrom);
    where += ` AND (a.finished_at >= $${params.length} OR a.finished_at IS NULL)`;
  }
  if (q.tenant !== undefined) {
    params.push(q.tenant);
    where += ` AND a.tenant = $${params.length}`;
  }
  params.push(q.limit ?? 1_000_000_000);
  const hint = pg || q.tenant !== undefined ? '' : unrolledFrom !== null ? ' INDEXED BY task_attempts_finished' : ' NOT INDEXED';
  const sql = `SELECT ${key} AS k, a.gpu_model AS model,${q.by === 'job' ? ' MIN(a.tenant) AS tenant, MIN(a.queue) AS queue,' : ''}
      SUM(CASE WHEN a.started_at >= $1 THEN 1 ELSE 0 END) AS records,
      SUM(a.gpu_milli * ${inside}) / 1000000.0 AS gpu_seconds,
      SUM(a.energy_j * ${share}) AS energy_j,
      SUM(a.idle_j * ${share}) AS idle_j,
      SUM(a.kwh * ${share}) AS kwh,
      SUM(a.energy_yuan * ${share}) AS energy_yuan,
      SUM(a.co2_g * ${share}) AS co2_g
    FROM task_attempts a${hint} WHERE ${where}
    GROUP BY ${key}, a.gpu_model ORDER BY ${key}, a.gpu_model LIMIT $${params.length}`;
  return (await db.all<GroupRow>(sql, params)).map(groupFromRow(q.by));
}

/** The daily rollups of the days in [from, to). */
async function dayGroups(db: SqlDb, q: UsageQuery): Promise<UsageGroup[]> {
  const key = { tenant: 'tenant', queue: 'queue', model: 'gpu_model', job: 'tenant', node: 'tenant' }[q.by];
  // A window from the epoch (or before) takes every day: the first local day may start before it.
  const params: Param[] = [q.from <= 0 ? -Number.MAX_SAFE_INTEGER : q.from, q.to];
  let where = 'day >= $1 AND day < $2';
  if (q.tenant !== undefined) {
    params.push(q.tenant);
    where += ` AND tenant = $${params.length}`;
  }
  const sql = `SELECT ${key} AS k, gpu_model AS model, SUM(records) AS records, SUM(gpu_ms) / 1000000.0 AS gpu_seconds, SUM(energy_j) AS energy_j, SUM(idle_j) AS idle_j,
      SUM(kwh) AS kwh, SUM(energy_yuan) AS energy_yuan, SUM(co2_g) AS co2_g FROM usage_days WHERE ${where} GROUP BY ${key}, gpu_model`;
  return (await db.all<GroupRow>(sql, params)).map(groupFromRow(q.by));
}

interface RollupRow {
  through: number;
  utc_offset_ms: number;
}

interface Sums {
  records: number;
  gpuMs: number;
  energyJ: number;
  idleJ: number;
  kwh: number;
  energyYuan: number;
  co2Grams: number;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** The start (ms) of the local day holding t. */
const localDay = (t: number, offsetMs: number): number => Math.floor((t + offsetMs) / DAY) * DAY - offsetMs;
const bucketKey = (day: number, r: { tenant: string | null; queue: string | null; gpu_model: string | null }): string => JSON.stringify([day, r.tenant ?? '', r.queue ?? '', r.gpu_model ?? '']);

/** Adds sums to day buckets (keys from bucketKey), 200 per statement. */
async function upsertDays(db: SqlDb, buckets: readonly [string, Sums][]): Promise<void> {
  for (let i = 0; i < buckets.length; i += 200) {
    const batch = buckets.slice(i, i + 200);
    const params: Param[] = [];
    const rows = batch.map(([k, s]) => {
      const [day, tenant, queue, model] = JSON.parse(k) as [number, string, string, string];
      params.push(day, tenant, queue, model, s.records, s.gpuMs, s.energyJ, s.idleJ, s.kwh, s.energyYuan, s.co2Grams);
      const b = params.length - 11;
      return `(${Array.from({ length: 11 }, (_, j) => `$${b + j + 1}`).join(', ')})`;
    });
    await db.run(
      `INSERT INTO usage_days (day, tenant, queue, gpu_model, records, gpu_ms, energy_j, idle_j, kwh, energy_yuan, co2_g) VALUES ${rows.join(', ')}
       ON CONFLICT (day, tenant, queue, gpu_model) DO UPDATE SET records = usage_days.records + excluded.records, gpu_ms = usage_days.gpu_ms + excluded.gpu_ms,
         energy_j = usage_days.energy_j + excluded.energy_j, idle_j = usage_days.idle_j + excluded.idle_j, kwh = usage_days.kwh + excluded.kwh,
         energy_yuan = usage_days.energy_yuan + excluded.energy_yuan, co2_g = usage_days.co2_g + excluded.co2_g`,
      params,
    );
  }
}

interface FinishedRecord {
  tenant: string | null;
  queue: string | null;
  gpu_model: string | null;
  gpu_milli: number;
  started_at: number;
  finished_at: number;
  energy_j: number;
  idle_j: number;
  kwh: number;
  energy_yuan: number;
  co2_g: number;
}

/** Spreads finished records over the local days they ran in. */
export function spreadOverDays(records: readonly FinishedRecord[], offsetMs: number): Map<string, Sums> {
  const out = new Map<string, Sums>();
  for (const r of records) {
    const start = Number(r.started_at);
    const end = Math.max(start, Number(r.finished_at));
    const span = end - start;
    for (let d = localDay(start, offsetMs); d === localDay(start, offsetMs) || d < end; d += DAY) {
      const inside = Math.max(0, Math.min(end, d + DAY) - Math.max(start, d));
      const share = span > 0 ? inside / span : 1;
      const k = bucketKey(d, r);
      const s = out.get(k) ?? { records: 0, gpuMs: 0, energyJ: 0, idleJ: 0, kwh: 0, energyYuan: 0, co2Grams: 0 };
      if (start >= d && start < d + DAY) s.records++;
      s.gpuMs += Number(r.gpu_milli) * inside;
      s.energyJ += Number(r.energy_j) * share;
      s.idleJ += Number(r.idle_j) * share;
      s.kwh += Number(r.kwh) * share;
      s.energyYuan += Number(r.energy_yuan) * share;
      s.co2Grams += Number(r.co2_g) * share;
      out.set(k, s);
    }
  }
  return out;
}

/**
 * Folds the records that finished before the last local midnight at least an hour before `now`
 * into usage_days, one day of them per transaction, and moves the watermark there; a change of
 * the local time's offset rebuilds the rollups from the start. Returns the records folded.
 */
export async function rollUp(db: SqlDb, now: number, utcOffsetHours: number): Promise<number> {
  const offsetMs = Math.round(utcOffsetHours * HOUR);
  const target = localDay(now - HOUR, offsetMs);
  const lock = db.dialect === 'postgres' ? ' FOR UPDATE' : '';
  let folded = 0;
  for (;;) {
    const step = await db.tx(async (tx) => {
      let row = await tx.get<RollupRow>(`SELECT through, utc_offset_ms FROM usage_rollup WHERE id = 1${lock}`);
      if (!row || Number(row.utc_offset_ms) !== offsetMs) {
        await tx.run('DELETE FROM usage_days');
        await tx.run('DELETE FROM usage_rollup');
        await tx.run('INSERT INTO usage_rollup (id, through, utc_offset_ms) VALUES (1, 0, $1)', [offsetMs]);
        row = { through: 0, utc_offset_ms: offsetMs };
      }
      let from = Number(row.through);
      if (from >= target) return null;
      if (from === 0) {
        const first = await tx.get<{ t: number | null }>('SELECT MIN(finished_at) AS t FROM task_attempts');
        from = first?.t === null || first?.t === undefined ? target : Math.min(target, localDay(Number(first.t), offsetMs));
      }
      const to = Math.min(target, localDay(from, offsetMs) + DAY);
      const records = await tx.all<FinishedRecord>(
        'SELECT tenant, queue, gpu_model, gpu_milli, started_at, finished_at, energy_j, idle_j, kwh, energy_yuan, co2_g FROM task_attempts WHERE finished_at >= $1 AND finished_at < $2 AND started_at IS NOT NULL',
        [from, to],
      );
      await upsertDays(tx, [...spreadOverDays(records, offsetMs)]);
      await tx.run('UPDATE usage_rollup SET through = $1 WHERE id = 1', [Math.max(to, from)]);
      return records.length;
    });
    if (step === null) return folded;
    folded += step;
  }
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
