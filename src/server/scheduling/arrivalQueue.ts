/**
 * New pending jobs waiting to be taken into the core, at most `perCycle` a cycle (like Slurm's
 * `default_queue_depth`, which bounds the jobs one scheduling pass looks at). A burst of array
 * elements is then planned over several short cycles instead of one long one: taking a job in
 * (its core spec, its place in the waiting table, a first placement attempt) costs about 0.1 ms
 * of the scheduler thread, and a cycle that took in 8,000 arrivals at once took 0.6-0.9 s to plan
 * and held binds for every other job meanwhile. Jobs the core already knows are never held.
 *
 * Taken first: the highest priority, then the oldest (submission time, then id), so a
 * high-priority job that arrives behind a burst waits at most one cycle.
 */
import type { Job } from '../../api/types.ts';

/** Default arrivals taken in per cycle. */
export const ARRIVALS_PER_CYCLE = 4000;

export class ArrivalQueue {
  private readonly held = new Map<string, Job>();

  constructor(readonly perCycle: number = ARRIVALS_PER_CYCLE) {
    if (!(Number.isInteger(perCycle) && perCycle > 0)) throw new RangeError(`arrivals per cycle must be a positive integer, not ${perCycle}`);
  }

  /** Arrivals held now. */
  get size(): number {
    return this.held.size;
  }

  /** Holds a new pending job (its latest object replaces an earlier one). */
  hold(job: Job): void {
    this.held.set(job.id, job);
  }

  /** Forgets job `id` (it changed state, left, or was taken in another way). */
  drop(id: string): void {
    this.held.delete(id);
  }

  clear(): void {
    this.held.clear();
  }

  /** Takes out this cycle's arrivals: all of them if they fit in `perCycle`, else the first by priority and age. */
  take(): Job[] {
    if (this.held.size === 0) return [];
    let taken = [...this.held.values()];
    // Arrivals mostly come in the order they are taken in (one priority, ids rising): sorting a
    // backlog of 90,000 each cycle is then a look at each neighbour.
    if (taken.length > this.perCycle) taken = (inOrder(taken) ? taken : taken.sort(firstTaken)).slice(0, this.perCycle);
    for (const job of taken) this.held.delete(job.id);
    return taken;
  }
}

function inOrder(jobs: readonly Job[]): boolean {
  for (let i = 1; i < jobs.length; i++) if (firstTaken(jobs[i - 1] as Job, jobs[i] as Job) > 0) return false;
  return true;
}

function firstTaken(a: Job, b: Job): number {
  return b.spec.priority - a.spec.priority || a.createdAt - b.createdAt || Number(a.id) - Number(b.id) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
