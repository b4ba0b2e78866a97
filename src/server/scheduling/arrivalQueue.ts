/**
 * New pending jobs waiting to be taken into the core, at most `perCycle` a cycle (like Slurm's
 * `default_queue_depth`, which bounds the jobs one scheduling pass looks at). A burst of array
 * elements is then planned over several short cycles instead of one long one: taking a job in
 * (its core spec, its place in the waiting table, a first placement attempt) costs about 0.1 ms
 * of the scheduler thread, and a cycle that took in 8,000 arrivals at once took 0.6-0.9 s to plan
 * and held binds for every other job meanwhile. Jobs the core already knows are never held.
 *
 * Taken first: the highest priority; at one priority the tenants in turn (each one's oldest
 * first: submission time, then id), as Kueue looks at the head of every queue each cycle. So a
 * high-priority job that arrives behind a burst waits at most one cycle, and so does another
 * tenant's job behind one tenant's 100,000.
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

  /** Takes out this cycle's arrivals: all of them if they fit in `perCycle`, else the first as the header says. */
  take(): Job[] {
    if (this.held.size === 0) return [];
    if (this.held.size <= this.perCycle) {
      const all = [...this.held.values()];
      this.held.clear();
      return all;
    }
    const heads = [...byTenant(this.held.values()).values()].map((list) => ({ list, next: 0 }));
    const taken: Job[] = [];
    while (taken.length < this.perCycle) {
      // The next job: highest priority, then the tenant that has had the fewest taken, then the oldest.
      let best: { list: Job[]; next: number } | undefined;
      for (const h of heads) {
        const job = h.list[h.next];
        const ahead = best?.list[best.next];
        if (job !== undefined && (!best || !ahead || comesFirst(job, h.next, ahead, best.next))) best = h;
      }
      if (!best) break;
      taken.push(best.list[best.next++] as Job);
    }
    for (const job of taken) this.held.delete(job.id);
    return taken;
  }
}

/** Each tenant's arrivals, highest priority then oldest first. */
function byTenant(jobs: Iterable<Job>): Map<string, Job[]> {
  const lists = new Map<string, Job[]>();
  for (const job of jobs) {
    const list = lists.get(job.tenant);
    if (list) list.push(job);
    else lists.set(job.tenant, [job]);
  }
  // Arrivals mostly come in the order they are taken in (one priority, ids rising): sorting a
  // backlog of 90,000 each cycle is then a look at each neighbour.
  for (const list of lists.values()) if (!inOrder(list)) list.sort(firstTaken);
  return lists;
}

/** Whether `a`, its tenant's `aTaken`-th this cycle, goes before `b`, its tenant's `bTaken`-th. */
function comesFirst(a: Job, aTaken: number, b: Job, bTaken: number): boolean {
  return (b.spec.priority - a.spec.priority || aTaken - bTaken || firstTaken(a, b)) < 0;
}

function inOrder(jobs: readonly Job[]): boolean {
  for (let i = 1; i < jobs.length; i++) if (firstTaken(jobs[i - 1] as Job, jobs[i] as Job) > 0) return false;
  return true;
}

function firstTaken(a: Job, b: Job): number {
  return b.spec.priority - a.spec.priority || a.createdAt - b.createdAt || Number(a.id) - Number(b.id) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
