/**
 * What a heartbeat's answer needs of a job beyond its task rows (name, gang size, spec, the
 * peers' addresses), kept per job attempt: with 1,250 agents heartbeating every 2 s, reading
 * the job and its peers for each of a node's tasks on every heartbeat was most of the
 * heartbeat's queries. Name, size and spec never change; what may change for an attempt (the
 * stop grace of an immediate reclaim, the power cap) changes the job's version, and peers'
 * addresses change only when a node registers again.
 *
 * So entries live long (10 minutes, less up to a quarter: cacheSpread.ts), and `current`, at
 * most every `checkMs`, forgets the jobs changed since its last check (the jobs' versions,
 * migration 006) whose stop grace or power cap is not the entry's, and everything when the nodes'
 * version moved: another server's reclaim holds here within `checkMs`, a re-registration within
 * the nodes' version's own cache (a second) and `checkMs`. With a 30-s lifetime instead, the
 * 5,000 running jobs of the full-size benchmark were read again ~190 a second, most of
 * PostgreSQL's statement time in the steady phase. This server's own such writes clear the cache
 * at once. A bind puts its attempt's entry in (`seed`), so the node's first answer reads nothing:
 * short array tasks are each answered once or twice, and reading them was 1.6-2.5 s of
 * PostgreSQL's statements in the benchmark's array phase.
 */
import type { JobSpec } from '../api/spec.ts';
import { spreadReadAt } from './cacheSpread.ts';
import { ChangeCheck } from './changeCheck.ts';

/** What a heartbeat's answer reads of a job's row (queries.ts runRowsOf). */
export interface RunRow {
  readonly name: string;
  readonly task_count: number;
  readonly stop_grace_ms: number | string | null;
  readonly power_cap_watts: number | string | null;
  /** An array's element: its index (null: none, or an element written before migration 019, whose spec has it). */
  readonly array_index?: number | string | null | undefined;
  /** An array's job: how many elements it runs (more than 1: a range, TaskAssignment.arrayCount). */
  readonly array_count?: number | string | null | undefined;
}

/**
 * A job's run info as read when cached: the row's name and task_count are fixed; the stop grace
 * and power cap change the job's version. `peers`: a gang's tasks' addresses (a single task's
 * one peer is its own node, which the answer knows: empty here).
 */
export interface RunInfo {
  readonly row: RunRow;
  readonly spec: JobSpec;
  readonly peers: string[];
}

/** What a check reads of a changed job: what an attempt's entry may differ in. */
export type ChangedJob = Pick<RunRow, 'stop_grace_ms' | 'power_cap_watts'> & { readonly id: number | string };

/** Reads the jobs changed since a watermark (null: none yet), and the next watermark. */
export type ChangedJobs = (since: number | null) => Promise<{ readonly next: number; readonly rows: readonly ChangedJob[] }>;

/** A stop grace or power cap as compared: a number, or null. */
const valueOf = (v: number | string | null | undefined): number | null => (v === null || v === undefined ? null : Number(v));

/** Whether a changed job's row differs from what an entry holds in what an attempt may change. */
const differs = (held: RunRow, now: ChangedJob): boolean =>
  valueOf(held.stop_grace_ms) !== valueOf(now.stop_grace_ms) || valueOf(held.power_cap_watts) !== valueOf(now.power_cap_watts);

export class RunInfoCache {
  /** Per job: its current attempt's entry. */
  private readonly entries = new Map<number, { attempt: number; info: RunInfo; at: number }>();
  /** Counts forgettings: a value read before one may be stale, and is not kept. */
  private generation = 0;
  private nodesVersion: string | null = null;
  private readonly checks: ChangeCheck<ChangedJob>;

  constructor(
    private readonly ttlMs = 600_000,
    private readonly maxEntries = 50_000,
    checkMs = 250,
  ) {
    this.checks = new ChangeCheck(checkMs, {
      // A changed job's entry is kept while its stop grace and power cap are what it holds: a
      // job's own moves (bound, started, ended) change its version, and an entry put in at its
      // bind (seed) would otherwise be gone before the node's next heartbeat asked for it. A read
      // begun before the check may have seen the job before any change: it is not kept.
      some: (rows) => {
        this.generation++;
        for (const r of rows) {
          const e = this.entries.get(Number(r.id));
          if (e && differs(e.info.row, r)) this.entries.delete(Number(r.id));
        }
      },
      all: () => this.clear(),
    });
  }

  /**
   * Forgets the jobs changed since the last check, and everything when `nodesVersion` moved,
   * when that check began more than `checkMs` before `at`; concurrent callers share one check.
   * A check that fails, or the first, forgets everything.
   */
  current(changed: ChangedJobs, nodesVersion: () => Promise<string>, at: number = performance.now()): Promise<void> {
    return this.checks.run(at, async (since) => {
      const nodes = await nodesVersion();
      const { next, rows } = await changed(since);
      const moved = nodes !== this.nodesVersion;
      this.nodesVersion = nodes;
      return { next, keys: rows, all: moved };
    });
  }

  get(jobId: number, attempt: number, now: number): RunInfo | undefined {
    const e = this.entries.get(Number(jobId));
    return e && e.attempt === attempt && now - e.at < this.ttlMs && now >= e.at ? e.info : undefined;
  }

  /** The generation to pass to `set` for a read that starts now. */
  get readGeneration(): number {
    return this.generation;
  }

  /** Keeps what was read, unless the cache forgot anything since the read began (`readGeneration`). */
  set(jobId: number, attempt: number, info: RunInfo, now: number, readGeneration: number): void {
    if (readGeneration !== this.generation) return;
    if (this.entries.size >= this.maxEntries) {
      for (const [k, e] of this.entries) if (now - e.at >= this.ttlMs || now < e.at) this.entries.delete(k);
      if (this.entries.size >= this.maxEntries) this.entries.clear();
    }
    // Spread (cacheSpread.ts): the run info of jobs started together, read again in one burst
    // when it expired, held steady heartbeats ~1 s on PostgreSQL.
    this.entries.set(Number(jobId), { attempt, info, at: spreadReadAt(now, this.ttlMs) });
  }

  /**
   * Puts in what the transaction that bound the attempt wrote and read back (admitJobs): no read
   * can be more current. Only the scheduler's lease holder binds and changes an attempt's stop
   * grace or power cap, and a later change by anyone is seen by the next check, which compares.
   */
  seed(jobId: number, attempt: number, info: RunInfo, now: number): void {
    this.set(jobId, attempt, info, now, this.generation);
  }

  clear(): void {
    this.generation++;
    this.entries.clear();
  }
}
