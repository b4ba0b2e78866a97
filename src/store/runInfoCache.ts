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
 * migration 006) and everything when the nodes' version moved: another server's reclaim holds
 * here within `checkMs`, a re-registration within the nodes' version's own cache (a second) and
 * `checkMs`. With a 30-s lifetime instead, the 5,000 running
 * jobs of the full-size benchmark were read again ~190 a second, most of PostgreSQL's
 * statement time in the steady phase. This server's own such writes clear the cache at once.
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
}

/** A job's run info as read when cached: the row's name and task_count are fixed; the stop grace and power cap change the job's version. */
export interface RunInfo {
  readonly row: RunRow;
  readonly spec: JobSpec;
  readonly peers: string[];
}

/** Reads the ids of the jobs changed since a watermark (null: none yet), and the next watermark. */
export type ChangedJobs = (since: number | null) => Promise<{ readonly next: number; readonly ids: readonly number[] }>;

export class RunInfoCache {
  /** Per job: its current attempt's entry. */
  private readonly entries = new Map<number, { attempt: number; info: RunInfo; at: number }>();
  /** Counts forgettings: a value read before one may be stale, and is not kept. */
  private generation = 0;
  private nodesVersion: string | null = null;
  private readonly checks: ChangeCheck<number>;

  constructor(
    private readonly ttlMs = 600_000,
    private readonly maxEntries = 50_000,
    checkMs = 250,
  ) {
    this.checks = new ChangeCheck(checkMs, {
      some: (ids) => {
        this.generation++;
        for (const id of ids) this.entries.delete(Number(id));
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
      const { next, ids } = await changed(since);
      const moved = nodes !== this.nodesVersion;
      this.nodesVersion = nodes;
      return { next, keys: ids, all: moved };
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

  clear(): void {
    this.generation++;
    this.entries.clear();
  }
}
