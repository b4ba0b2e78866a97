/**
 * Rollups of finished usage records into hourly and daily sums (usage_hours, usage_days;
 * migrations 009 and 012; docs/energy.md), as slurmdbd keeps the hourly and daily usage tables
 * that sreport reads.
 *
 * How a record is split: its usage is taken as even over its run [started_at, finished_at), so a
 * local hour (or day) gets the share of the record's run inside it — GPU-ms are gpu_milli × the
 * ms inside, every other measure × (ms inside ÷ run ms); a run of no length goes whole to the
 * hour holding its start. Hours and days are cut at the same local midnight, so a day's sums are
 * the sums of its 24 hours (up to float rounding). `records` counts a record in the hour (and day)
 * it started in. An hour also keeps apart the part of the records that ran through all of it
 * (`cover_*`: started before the hour, ended at or after its end; `covering` of them): that part
 * is even over the hour, so a report cut inside the hour takes it pro rata and reads only the
 * records that started or ended within the hour (usage.ts).
 *
 * The watermark (usage_rollup.through, a local hour) says which records are in the sums: exactly
 * those finished before it. Joules or requests that reach a record after it was folded are
 * spread over its hours and days by the same rule (no record is counted again), so the sums stay
 * what the records give.
 */
import type { Param, SqlDb } from './sqlDb.ts';

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;
/** Records are folded once the hour they finished in ended at least this long ago (late heartbeats first). */
export const ROLLUP_LAG_MS = 15 * 60_000;

/** The start (ms) of the local hour holding t, hours cut at UTC + offsetMs. */
export const localHour = (t: number, offsetMs: number): number => Math.floor((t + offsetMs) / HOUR) * HOUR - offsetMs;
/** The start (ms) of the local day holding t. */
export const localDay = (t: number, offsetMs: number): number => Math.floor((t + offsetMs) / DAY) * DAY - offsetMs;

/** The measures summed, as columns of task_attempts, usage_hours and usage_days (gpu_ms: from gpu_milli). */
export const MEASURES = ['gpu_ms', 'energy_j', 'idle_j', 'kwh', 'energy_yuan', 'co2_g', 'requests', 'tokens'] as const;
const N = MEASURES.length;

/** A finished record as the rollup reads it (numbers may come back as strings from PostgreSQL). */
export interface RollupRecord {
  readonly tenant: string | null;
  readonly queue: string | null;
  readonly gpu_model: string | null;
  readonly gpu_milli: number;
  readonly started_at: number;
  readonly finished_at: number;
  readonly energy_j: number;
  readonly idle_j: number;
  readonly kwh: number;
  readonly energy_yuan: number;
  readonly co2_g: number;
  readonly requests: number;
  readonly tokens: number;
}

/** The columns of task_attempts a RollupRecord is read from. */
export const ROLLUP_COLUMNS = 'tenant, queue, gpu_model, gpu_milli, started_at, finished_at, energy_j, idle_j, kwh, energy_yuan, co2_g, requests, tokens';

/** One (hour or day, tenant, queue, model) bucket's sums. */
export interface Bucket {
  readonly at: number;
  readonly tenant: string;
  readonly queue: string;
  readonly model: string;
  records: number;
  readonly sums: number[];
  /** Hours only: the records that ran through the whole hour, and their part of the sums. */
  covering: number;
  readonly cover: number[];
}

export interface Spread {
  readonly hours: Map<string, Bucket>;
  readonly days: Map<string, Bucket>;
}

const bucket = (map: Map<string, Bucket>, at: number, r: RollupRecord): Bucket => {
  const tenant = r.tenant ?? '';
  const queue = r.queue ?? '';
  const model = r.gpu_model ?? '';
  const k = `${at}\u0000${tenant}\u0000${queue}\u0000${model}`;
  let b = map.get(k);
  if (!b) {
    b = { at, tenant, queue, model, records: 0, sums: new Array<number>(N).fill(0), covering: 0, cover: new Array<number>(N).fill(0) };
    map.set(k, b);
  }
  return b;
};

/**
 * Spreads records over the local hours and days they ran in (the rule in the file comment).
 * `late`: the records are deltas of records already folded (late joules or requests): they add
 * to the sums but count no record and no covering record.
 */
export function spread(records: readonly RollupRecord[], offsetMs: number, late = false, into: Spread = { hours: new Map(), days: new Map() }): Spread {
  const values = new Array<number>(N).fill(0);
  for (const r of records) {
    const start = Number(r.started_at);
    const end = Math.max(start, Number(r.finished_at));
    const span = end - start;
    const milli = Number(r.gpu_milli);
    values[1] = Number(r.energy_j);
    values[2] = Number(r.idle_j);
    values[3] = Number(r.kwh);
    values[4] = Number(r.energy_yuan);
    values[5] = Number(r.co2_g);
    values[6] = Number(r.requests);
    values[7] = Number(r.tokens);
    for (const [map, size, first] of [[into.hours, HOUR, localHour(start, offsetMs)], [into.days, DAY, localDay(start, offsetMs)]] as const) {
      for (let at = first; at === first || at < end; at += size) {
        const inside = Math.max(0, Math.min(end, at + size) - Math.max(start, at));
        const share = span > 0 ? inside / span : 1;
        const b = bucket(map, at, r);
        if (!late && start >= at && start < at + size) b.records++;
        const covers = size === HOUR && start < at && end >= at + HOUR;
        if (covers && !late) b.covering++;
        for (let i = 0; i < N; i++) {
          const v = i === 0 ? milli * inside : (values[i] as number) * share;
          b.sums[i] = (b.sums[i] as number) + v;
          if (covers) b.cover[i] = (b.cover[i] as number) + v;
        }
      }
    }
  }
  return into;
}

/** Adds buckets to usage_hours or usage_days, 200 rows per statement. */
export async function upsertBuckets(db: SqlDb, table: 'usage_hours' | 'usage_days', buckets: Iterable<Bucket>): Promise<void> {
  const hourly = table === 'usage_hours';
  const keyCol = hourly ? 'hour' : 'day';
  const cols = [keyCol, 'tenant', 'queue', 'gpu_model', 'records', ...MEASURES, ...(hourly ? ['covering', ...MEASURES.map((m) => `cover_${m}`)] : [])];
  const update = cols.slice(4).map((c) => `${c} = ${table}.${c} + excluded.${c}`).join(', ');
  const all = [...buckets];
  for (let i = 0; i < all.length; i += 200) {
    const batch = all.slice(i, i + 200);
    const params: Param[] = [];
    const rows = batch.map((b) => {
      params.push(b.at, b.tenant, b.queue, b.model, b.records, ...b.sums, ...(hourly ? [b.covering, ...b.cover] : []));
      const base = params.length - cols.length;
      return `(${cols.map((_, j) => `$${base + j + 1}`).join(', ')})`;
    });
    await db.run(`INSERT INTO ${table} (${cols.join(', ')}) VALUES ${rows.join(', ')} ON CONFLICT (${keyCol}, tenant, queue, gpu_model) DO UPDATE SET ${update}`, params);
  }
}

/** Writes a spread to both tables. */
export async function upsertSpread(db: SqlDb, s: Spread): Promise<void> {
  await upsertBuckets(db, 'usage_hours', s.hours.values());
  await upsertBuckets(db, 'usage_days', s.days.values());
}

export interface RollupRow {
  through: number;
  utc_offset_ms: number;
}

/** The watermark and the offset the sums were cut with, or undefined before the first rollup. */
export async function rollupState(db: SqlDb): Promise<{ through: number; offsetMs: number } | undefined> {
  const row = await db.get<RollupRow>('SELECT through, utc_offset_ms FROM usage_rollup WHERE id = 1');
  return row ? { through: Number(row.through), offsetMs: Number(row.utc_offset_ms) } : undefined;
}

/**
 * A delta (joules, requests…) that reached a record after it finished: when the record is already
 * in the sums (finished before the watermark), the delta is spread over its hours and days too.
 */
export async function foldLate(db: SqlDb, r: RollupRecord): Promise<void> {
  const s = await rollupState(db);
  if (!s || Number(r.finished_at) >= s.through) return;
  await upsertSpread(db, spread([r], s.offsetMs, true));
}

/**
 * Folds the records that finished before the last local hour that ended ROLLUP_LAG_MS before
 * `now` into usage_hours and usage_days, at most one local day of them per transaction, and moves
 * the watermark there; a change of the local time's offset rebuilds the sums from the start.
 * Returns the records folded.
 */
export async function rollUp(db: SqlDb, now: number, utcOffsetHours: number): Promise<number> {
  const offsetMs = Math.round(utcOffsetHours * HOUR);
  const target = localHour(now - ROLLUP_LAG_MS, offsetMs);
  const lock = db.dialect === 'postgres' ? ' FOR UPDATE' : '';
  let folded = 0;
  for (;;) {
    const step = await db.tx(async (tx) => {
      let row = await tx.get<RollupRow>(`SELECT through, utc_offset_ms FROM usage_rollup WHERE id = 1${lock}`);
      if (!row || Number(row.utc_offset_ms) !== offsetMs) {
        await tx.run('DELETE FROM usage_days');
        await tx.run('DELETE FROM usage_hours');
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
      const records = await tx.all<RollupRecord>(`SELECT ${ROLLUP_COLUMNS} FROM task_attempts WHERE finished_at >= $1 AND finished_at < $2 AND started_at IS NOT NULL`, [from, to]);
      await upsertSpread(tx, spread(records, offsetMs));
      await tx.run('UPDATE usage_rollup SET through = $1 WHERE id = 1', [Math.max(to, from)]);
      return records.length;
    });
    if (step === null) return folded;
    folded += step;
  }
}
