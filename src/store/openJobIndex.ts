/**
 * Lookups over a snapshot's open jobs that cost what changed, not the 100,000 pending jobs a
 * cluster may hold: the jobs by id, and the jobs that run or ran. Every cycle several readers
 * (time limits, the idle monitor, the scheduler's answer) built a map of every open job; at
 * 100,000 jobs each such pass held the request thread for tens of milliseconds.
 *
 * Indexes belong to one list of open jobs (by identity). A store that keeps its open jobs between
 * snapshots registers the indexes it maintains with the list it hands out (store/openJobs.ts, the
 * scheduler thread); for any other list they are built on first use and kept with it. A list
 * registered by a store sees that store's later refreshes through its map (newer job objects,
 * never older ones).
 */
import type { Job } from '../api/types.ts';

interface Index {
  byId: ReadonlyMap<string, Job> | null;
  started: readonly Job[] | null;
  /** Where the list stands in its store's change log (openJobChanges). */
  log?: ChangeLog;
  seq?: number;
}

/** One refresh of a store's open jobs: the jobs it added or replaced and the ids it dropped. */
export interface OpenJobsChange {
  readonly upserts: readonly Job[];
  readonly removed: readonly string[];
}

/**
 * A store's last few refreshes that changed its list of open jobs, by sequence number: enough to
 * tell a reader of an older list what changed since (the scheduler thread's delta), without
 * keeping the older lists themselves alive.
 */
export class ChangeLog {
  static readonly KEPT = 16;
  private readonly entries: { readonly seq: number; readonly change: OpenJobsChange }[] = [];
  private seq = 0;

  /** Records a refresh; returns the sequence number of the list it made. */
  add(change: OpenJobsChange): number {
    this.entries.push({ seq: ++this.seq, change });
    if (this.entries.length > ChangeLog.KEPT) this.entries.shift();
    return this.seq;
  }

  /** Starts over (a full read): no list before this one can be brought up to date from the log. */
  restart(): number {
    this.entries.length = 0;
    return ++this.seq;
  }

  /** The refreshes after `from` up to `to`, oldest first; null when the log no longer has them all. */
  between(from: number, to: number): OpenJobsChange[] | null {
    const first = this.entries[0];
    if (from > to || !first || first.seq > from + 1 || (this.entries.at(-1)?.seq ?? 0) < to) return from === to ? [] : null;
    return this.entries.filter((e) => e.seq > from && e.seq <= to).map((e) => e.change);
  }
}

const indexes = new WeakMap<readonly Job[], Index>();

/** Whether a job runs now or has run: anything but a pending job that never started. */
export function hasRun(job: Job): boolean {
  return job.state !== 'pending' || job.attempt > 0 || job.runSeconds > 0;
}

/** Registers the indexes a store keeps for a list of open jobs (`started`: its hasRun jobs, oldest first). */
export function registerOpenJobs(list: readonly Job[], byId: ReadonlyMap<string, Job>, started: readonly Job[], at?: { readonly log: ChangeLog; readonly seq: number }): void {
  indexes.set(list, { byId, started, ...(at ? { log: at.log, seq: at.seq } : {}) });
}

/**
 * What changed from the open jobs `since` to `list` (jobs added or replaced, ids dropped), when
 * both come from one store's log and it still holds every refresh between them; null otherwise
 * (the caller compares the lists).
 */
export function openJobChanges(list: readonly Job[], since: readonly Job[]): OpenJobsChange | null {
  const a = indexes.get(since);
  const b = indexes.get(list);
  if (!a?.log || a.log !== b?.log || a.seq === undefined || b.seq === undefined) return null;
  const steps = a.log.between(a.seq, b.seq);
  if (!steps) return null;
  const upserts = new Map<string, Job>();
  const removed = new Set<string>();
  for (const c of steps) {
    for (const id of c.removed) {
      upserts.delete(id);
      removed.add(id);
    }
    for (const j of c.upserts) {
      removed.delete(j.id);
      upserts.set(j.id, j);
    }
  }
  return { upserts: [...upserts.values()], removed: [...removed] };
}

function indexOf(list: readonly Job[]): Index {
  let index = indexes.get(list);
  if (!index) {
    index = { byId: null, started: null };
    indexes.set(list, index);
  }
  return index;
}

/** The open jobs by id. */
export function openJobsById(list: readonly Job[]): ReadonlyMap<string, Job> {
  const index = indexOf(list);
  return (index.byId ??= new Map(list.map((j) => [j.id, j])));
}

/** The open jobs that run now or have run (hasRun), in the list's order. */
export function startedJobs(list: readonly Job[]): readonly Job[] {
  const index = indexOf(list);
  return (index.started ??= list.filter(hasRun));
}
