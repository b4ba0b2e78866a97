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
}

const indexes = new WeakMap<readonly Job[], Index>();

/** Whether a job runs now or has run: anything but a pending job that never started. */
export function hasRun(job: Job): boolean {
  return job.state !== 'pending' || job.attempt > 0 || job.runSeconds > 0;
}

/** Registers the indexes a store keeps for a list of open jobs (`started`: its hasRun jobs, oldest first). */
export function registerOpenJobs(list: readonly Job[], byId: ReadonlyMap<string, Job>, started: readonly Job[]): void {
  indexes.set(list, { byId, started });
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
