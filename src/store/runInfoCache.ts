/**
 * What a heartbeat's answer needs of a job beyond its task rows (name, gang size, spec, the
 * peers' addresses), kept per job attempt for a few seconds: with 1,250 agents heartbeating
 * every 2 s, reading the job and its peers for each of a node's tasks on every heartbeat was
 * most of the heartbeat's queries. Name, size and spec never change; peers are fixed for an
 * attempt unless a node re-registers with another address: the store clears the cache then, and
 * the TTL (30 s less up to a quarter: with 10 s, a task's entry was read again every fifth
 * heartbeat) bounds how long another server's re-registration goes unseen.
 */
import type { JobSpec } from '../api/spec.ts';
import { spreadReadAt } from './cacheSpread.ts';
import type { JobRow } from './rows.ts';

/** The job's row as read when cached: use only what is fixed for an attempt (name, task_count). */
export interface RunInfo {
  readonly row: JobRow;
  readonly spec: JobSpec;
  readonly peers: string[];
}

export class RunInfoCache {
  private readonly entries = new Map<string, { info: RunInfo; at: number }>();

  constructor(
    private readonly ttlMs = 30_000,
    private readonly maxEntries = 50_000,
  ) {}

  get(jobId: number, attempt: number, now: number): RunInfo | undefined {
    const e = this.entries.get(`${jobId}/${attempt}`);
    return e && now - e.at < this.ttlMs && now >= e.at ? e.info : undefined;
  }

  set(jobId: number, attempt: number, info: RunInfo, now: number): void {
    if (this.entries.size >= this.maxEntries) {
      for (const [k, e] of this.entries) if (now - e.at >= this.ttlMs || now < e.at) this.entries.delete(k);
      if (this.entries.size >= this.maxEntries) this.entries.clear();
    }
    // Spread (cacheSpread.ts): the run info of jobs started together, read again in one burst
    // every 30 s, held steady heartbeats ~1 s on PostgreSQL.
    this.entries.set(`${jobId}/${attempt}`, { info, at: spreadReadAt(now, this.ttlMs) });
  }

  clear(): void {
    this.entries.clear();
  }
}
