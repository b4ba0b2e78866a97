/**
 * What a heartbeat's answer needs of a job beyond its task rows (name, gang size, spec, the
 * peers' addresses), kept per job attempt for a few seconds: with 1,250 agents heartbeating
 * every 2 s, reading the job and its peers for each of a node's tasks on every heartbeat was
 * most of the heartbeat's queries. Name, size and spec never change; peers are fixed for an
 * attempt unless a node re-registers with another address: the store clears the cache then, and
 * the TTL (30 s less a random quarter: with 10 s, a task's entry was read again every fifth
 * heartbeat) bounds how long another server's re-registration goes unseen.
 */
import type { JobSpec } from '../api/spec.ts';
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
    // Kept for 75-100 % of ttlMs, by when it was read: the entries of jobs that started together
    // (a cluster filled at once) are not all read again in the same second, which held steady
    // heartbeats ~1 s on PostgreSQL; those read by one heartbeat (same `now`) stay together.
    const spread = (Math.imul(now | 0, 2654435761) >>> 0) / 2 ** 32;
    this.entries.set(`${jobId}/${attempt}`, { info, at: now - spread * 0.25 * this.ttlMs });
  }

  clear(): void {
    this.entries.clear();
  }
}
