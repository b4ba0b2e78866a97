/**
 * Usage records and budgets in SQL (migrations 009 and 012; docs/energy.md): applying an agent's energy
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
 * - Rollups (usageRollup.ts: hourly and daily sums of the records finished before a watermark, as
 *   slurmdbd's usage tables that sreport reads). A report by tenant, queue or model reads, for the
 *   part of its window before the watermark, whole days from the daily sums, whole hours from the
 *   hourly ones, and at most two partial hours at the edges (the hour's records that ran through
 *   it pro rata, and those that started or ended within it); the records not rolled up are read
 *   themselves (the two sets are disjoint). By job, node or service it reads the records.
 * - Services: a replica's attempt holds the requests it served and the tokens it produced, from
 *   its scraped counters (applyServed); reports spread them over the run like the energy.
 */
import { energyCharge, type EnergyPrices } from '../core/energy/pricing.ts';
import type { EnergyReport } from '../api/types.ts';
import { parseRunId } from './lifecycle.ts';
import type { Param, SqlDb } from './sqlDb.ts';
import { foldLate, HOUR, rollupState } from './usageRollup.ts';
import { planWindow, type HourPart, type Span } from './usageWindow.ts';

export type UsageBy = 'tenant' | 'queue' | 'job' | 'model' | 'node' | 'service';
export const USAGE_BY: readonly UsageBy[] = ['tenant', 'queue', 'job', 'model', 'node', 'service'];
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
  /** The local time the rollups are cut in; given (and the rollups' own), reports by tenant, queue or model read them. */
  readonly utcOffsetHours?: number;
}

/** One (key, GPU model) group of records; sums are the records' shares inside the window. */
export interface UsageGroup {
  readonly key: string;
  /** null: CPU-only tasks. */
  readonly model: string | null;
  /** For by=job and by=service: the tenant and queue. */
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
  /** Services: requests the replicas served and tokens they produced (0 for other jobs). */
  readonly requests: number;
  readonly tokens: number;
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
    // Late joules of a record already rolled up are spread over its hours and days too.
    if (row.finished_at !== null && row.started_at !== null) {
      await foldLate(db, { ...row, gpu_milli: 0, started_at: Number(row.started_at), finished_at: Number(row.finished_at), energy_j: dJ, idle_j: dIdle, kwh: c.kwh, energy_yuan: c.energyYuan, co2_g: c.co2Grams, requests: 0, tokens: 0 });
    }
  }
  return true;
}

/** What a service replica's metrics endpoint said it served so far (cumulative counters; absent: not exposed). */
export interface ServedReport {
  readonly jobId: string;
  readonly attempt: number;
  readonly requests?: number;
  readonly tokens?: number;
}

/** Counter values above this are not physical (a replica cannot inflate a report past it). */
const MAX_COUNTER = 1e15;

/**
 * Adds what a replica's counters rose by since they were last read to its attempt's record
 * (task 0: a replica has one task). The first reading counts from 0 (the process's start); a
 * reading below the last one is a restarted counter and counts from 0 again — increases only, as
 * Prometheus's rate() reads a counter. The last readings are kept in the record, so a new leader
 * (whose controller starts afresh) counts nothing twice. False when the attempt is unknown.
 */
export async function applyServed(db: SqlDb, s: ServedReport): Promise<boolean> {
  if (!/^\d{1,15}$/.test(s.jobId) || !Number.isSafeInteger(s.attempt)) return false;
  const lock = db.dialect === 'postgres' ? ' FOR UPDATE' : '';
  const key: Param[] = [Number(s.jobId), s.attempt];
  const row = await db.get<{ tenant: string | null; queue: string | null; gpu_model: string | null; started_at: number | null; finished_at: number | null; requests_seen: number | null; tokens_seen: number | null }>(
    `SELECT tenant, queue, gpu_model, started_at, finished_at, requests_seen, tokens_seen FROM task_attempts WHERE job_id = $1 AND idx = 0 AND attempt = $2${lock}`,
    key,
  );
  if (!row) return false;
  const reading = (v: number | undefined): number | undefined => (v === undefined || !Number.isFinite(v) || v < 0 || v > MAX_COUNTER ? undefined : v);
  const increase = (v: number | undefined, seen: number | null): number => (v === undefined ? 0 : seen === null || v < Number(seen) ? v : v - Number(seen));
  const requests = reading(s.requests);
  const tokens = reading(s.tokens);
  const dRequests = increase(requests, row.requests_seen);
  const dTokens = increase(tokens, row.tokens_seen);
  await db.run('UPDATE task_attempts SET requests = requests + $3, tokens = tokens + $4, requests_seen = $5, tokens_seen = $6 WHERE job_id = $1 AND idx = 0 AND attempt = $2', [
    ...key,
    dRequests,
    dTokens,
    requests ?? row.requests_seen,
    tokens ?? row.tokens_seen,
  ]);
  if ((dRequests > 0 || dTokens > 0) && row.finished_at !== null && row.started_at !== null) {
    await foldLate(db, { ...row, gpu_milli: 0, started_at: Number(row.started_at), finished_at: Number(row.finished_at), energy_j: 0, idle_j: 0, kwh: 0, energy_yuan: 0, co2_g: 0, requests: dRequests, tokens: dTokens });
  }
  return true;
}

/** Groups of usage records (see UsageQuery and the file comment), ordered by key and model. */
export async function usageGroups(db: SqlDb, q: UsageQuery): Promise<UsageGroup[]> {
  const rolled = q.utcOffsetHours === undefined || !ROLLED_UP_KEYS.has(q.by) ? undefined : await rollupState(db);
  const offsetMs = Math.round((q.utcOffsetHours ?? 0) * HOUR);
  if (!rolled || rolled.offsetMs !== offsetMs || rolled.through <= 0) return recordGroups(db, q, { kind: 'all' });
  const { limit: _, ...unlimited } = q;
  const plan = planWindow(q.from, q.to, rolled.through, offsetMs);
  const parts: Promise<UsageGroup[]>[] = [];
  if (plan.days) parts.push(bucketGroups(db, 'usage_days', plan.days, q));
  for (const span of plan.hours) parts.push(bucketGroups(db, 'usage_hours', span, q));
  for (const edge of plan.edges) {
    parts.push(coverGroups(db, edge, q));
    parts.push(recordGroups(db, { ...unlimited, from: edge.from, to: edge.to }, { kind: 'edge', hour: edge.hour, through: rolled.through }));
  }
  parts.push(recordGroups(db, unlimited, { kind: 'unrolled', since: rolled.through }));
  const merged = new Map<string, UsageGroup>();
  for (const part of parts) {
    for (const g of await part) {
      const k = `${g.key}\u0000${g.model ?? ''}`;
      const had = merged.get(k);
      merged.set(k, had ? addGroups(had, g) : g);
    }
  }
  const sorted = [...merged.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : (a.model ?? '') < (b.model ?? '') ? -1 : (a.model ?? '') > (b.model ?? '') ? 1 : 0));
  return q.limit === undefined ? sorted : sorted.slice(0, q.limit);
}

/** The keys the rollups hold (job, node and service read the records). */
const ROLLED_UP_KEYS: ReadonlySet<UsageBy> = new Set(['tenant', 'queue', 'model']);

const addGroups = (a: UsageGroup, b: UsageGroup): UsageGroup => ({
  ...a,
  records: a.records + b.records,
  gpuSeconds: a.gpuSeconds + b.gpuSeconds,
  energyJ: a.energyJ + b.energyJ,
  idleJ: a.idleJ + b.idleJ,
  kwh: a.kwh + b.kwh,
  energyYuan: a.energyYuan + b.energyYuan,
  co2Grams: a.co2Grams + b.co2Grams,
  requests: a.requests + b.requests,
  tokens: a.tokens + b.tokens,
});

type GroupRow = { k: string | number | null; model: string | null; tenant?: string | null; queue?: string | null; records: number | string | null; gpu_seconds: number | null; energy_j: number | null; idle_j: number | null; kwh: number | null; energy_yuan: number | null; co2_g: number | null; requests: number | null; tokens: number | null };

const groupFromRow = (by: UsageBy, scale = 1) => (r: GroupRow): UsageGroup => ({
  key: r.k === null ? '' : String(r.k),
  model: r.model === '' ? null : r.model,
  ...(by === 'job' || by === 'service' ? { tenant: r.tenant ?? '', queue: r.queue ?? '' } : {}),
  records: Number(r.records ?? 0),
  gpuSeconds: Number(r.gpu_seconds ?? 0) * scale,
  energyJ: Number(r.energy_j ?? 0) * scale,
  idleJ: Number(r.idle_j ?? 0) * scale,
  kwh: Number(r.kwh ?? 0) * scale,
  energyYuan: Number(r.energy_yuan ?? 0) * scale,
  co2Grams: Number(r.co2_g ?? 0) * scale,
  requests: Number(r.requests ?? 0) * scale,
  tokens: Number(r.tokens ?? 0) * scale,
});

/**
 * Which records a query reads: all of them; those not rolled up (finished at or after the
 * watermark, or running); or, for a partial hour at a report's edge, the rolled-up records that
 * started or ended within that hour (the others ran through it and are in its cover sums).
 */
type RecordSource = { readonly kind: 'all' } | { readonly kind: 'unrolled'; readonly since: number } | { readonly kind: 'edge'; readonly hour: number; readonly through: number };

/** The columns of task_attempts the record queries read. */
const RECORD_COLUMNS = 'job_id, node_id, tenant, queue, gpu_model, gpu_milli, started_at, finished_at, energy_j, idle_j, kwh, energy_yuan, co2_g, requests, tokens';

/**
 * The records of `source`, each counted for its share inside the window. SQLite is told how to
 * read the table: it has no statistics for a range bound at run time, and an index walk with a
 * row lookup per record is many times slower than a scan when the window holds most of them.
 */
async function recordGroups(db: SqlDb, q: UsageQuery, source: RecordSource): Promise<UsageGroup[]> {
  const pg = db.dialect === 'postgres';
  const least = pg ? 'LEAST' : 'MIN';
  const greatest = pg ? 'GREATEST' : 'MAX';
  const end = 'COALESCE(a.finished_at, $3)';
  // ms of the record inside [from, to), and that as a share of its run (1 for a run of no length).
  const inside = `CAST(${greatest}(0, ${least}(${end}, $2) - ${greatest}(a.started_at, $1)) AS DOUBLE PRECISION)`;
  const share = `(CASE WHEN ${end} > a.started_at THEN ${inside} / (${end} - a.started_at) ELSE 1.0 END)`;
  const key = { tenant: 'a.tenant', queue: 'a.queue', job: 'a.job_id', model: "COALESCE(a.gpu_model, '')", node: 'a.node_id', service: 'j.service_id' }[q.by];
  const params: Param[] = [q.from, q.to, q.now];
  const p = (v: Param): string => {
    params.push(v);
    return `$${params.length}`;
  };
  // Overlaps [from, to): a run ending at `from` has nothing inside (one of no length starting there has).
  let where = 'a.started_at IS NOT NULL AND a.started_at < $2 AND (a.finished_at > $1 OR (a.finished_at = $1 AND a.started_at = $1) OR (a.finished_at IS NULL AND $3 >= $1))';
  let table: string;
  if (source.kind === 'edge') {
    const h0 = p(source.hour);
    const h1 = p(source.hour + HOUR);
    const through = p(source.through);
    const started = pg ? '' : ' INDEXED BY task_attempts_started';
    const finished = pg ? '' : ' INDEXED BY task_attempts_finished';
    table = `(SELECT ${RECORD_COLUMNS} FROM task_attempts${started} WHERE started_at >= ${h0} AND started_at < ${h1} AND finished_at < ${through}
      UNION ALL SELECT ${RECORD_COLUMNS} FROM task_attempts${finished} WHERE finished_at > ${h0} AND finished_at < ${h1} AND started_at < ${h0}) a`;
  } else {
    const hint = pg || q.tenant !== undefined || q.by === 'service' ? '' : source.kind === 'unrolled' ? ' INDEXED BY task_attempts_finished' : ' NOT INDEXED';
    table = `task_attempts a${hint}`;
    if (source.kind === 'unrolled') where += ` AND (a.finished_at >= ${p(source.since)} OR a.finished_at IS NULL)`;
  }
  if (q.by === 'service') {
    // A service's records are its replicas' (jobs whose service_id is the service's).
    table = `jobs j JOIN ${table} ON a.job_id = j.id`;
    where += ' AND j.service_id IS NOT NULL';
  }
  if (q.tenant !== undefined) where += ` AND a.tenant = ${p(q.tenant)}`;
  const limit = p(q.limit ?? 1_000_000_000);
  const sql = `SELECT ${key} AS k, a.gpu_model AS model,${q.by === 'job' || q.by === 'service' ? ' MIN(a.tenant) AS tenant, MIN(a.queue) AS queue,' : ''}
      SUM(CASE WHEN a.started_at >= $1 THEN 1 ELSE 0 END) AS records,
      SUM(a.gpu_milli * ${inside}) / 1000000.0 AS gpu_seconds,
      SUM(a.energy_j * ${share}) AS energy_j,
      SUM(a.idle_j * ${share}) AS idle_j,
      SUM(a.kwh * ${share}) AS kwh,
      SUM(a.energy_yuan * ${share}) AS energy_yuan,
      SUM(a.co2_g * ${share}) AS co2_g,
      SUM(a.requests * ${share}) AS requests,
      SUM(a.tokens * ${share}) AS tokens
    FROM ${table} WHERE ${where}
    GROUP BY ${key}, a.gpu_model ORDER BY ${key}, a.gpu_model LIMIT ${limit}`;
  return (await db.all<GroupRow>(sql, params)).map(groupFromRow(q.by));
}

const BUCKET_KEYS = { tenant: 'tenant', queue: 'queue', model: 'gpu_model', job: 'tenant', node: 'tenant', service: 'tenant' } as const;

/** The sums of the whole days (usage_days) or hours (usage_hours) in span. */
async function bucketGroups(db: SqlDb, table: 'usage_days' | 'usage_hours', span: Span, q: UsageQuery): Promise<UsageGroup[]> {
  const key = BUCKET_KEYS[q.by];
  const at = table === 'usage_days' ? 'day' : 'hour';
  const params: Param[] = [span.from, span.to];
  let where = `${at} >= $1 AND ${at} < $2`;
  if (q.tenant !== undefined) {
    params.push(q.tenant);
    where += ` AND tenant = $${params.length}`;
  }
  const sql = `SELECT ${key} AS k, gpu_model AS model, SUM(records) AS records, SUM(gpu_ms) / 1000000.0 AS gpu_seconds, SUM(energy_j) AS energy_j, SUM(idle_j) AS idle_j,
      SUM(kwh) AS kwh, SUM(energy_yuan) AS energy_yuan, SUM(co2_g) AS co2_g, SUM(requests) AS requests, SUM(tokens) AS tokens FROM ${table} WHERE ${where} GROUP BY ${key}, gpu_model`;
  return (await db.all<GroupRow>(sql, params)).map(groupFromRow(q.by));
}

/** For a partial hour: the records that ran through the whole hour, taken pro rata (their usage is even over it). */
async function coverGroups(db: SqlDb, part: HourPart, q: UsageQuery): Promise<UsageGroup[]> {
  const key = BUCKET_KEYS[q.by];
  const params: Param[] = [part.hour];
  let where = 'hour = $1 AND covering > 0';
  if (q.tenant !== undefined) {
    params.push(q.tenant);
    where += ` AND tenant = $${params.length}`;
  }
  const sql = `SELECT ${key} AS k, gpu_model AS model, 0 AS records, SUM(cover_gpu_ms) / 1000000.0 AS gpu_seconds, SUM(cover_energy_j) AS energy_j, SUM(cover_idle_j) AS idle_j,
      SUM(cover_kwh) AS kwh, SUM(cover_energy_yuan) AS energy_yuan, SUM(cover_co2_g) AS co2_g, SUM(cover_requests) AS requests, SUM(cover_tokens) AS tokens FROM usage_hours WHERE ${where} GROUP BY ${key}, gpu_model`;
  return (await db.all<GroupRow>(sql, params)).map(groupFromRow(q.by, (part.to - part.from) / HOUR));
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
