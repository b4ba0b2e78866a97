/**
 * Which of a plan's pending reasons the loop writes: those a job does not show yet. Shared by the
 * loop, the scheduler thread and the adapter.
 */
import type { Job } from '../../api/types.ts';
import type { AppliedPlan, StoreSnapshot } from '../../store/store.ts';
import { openJobsById } from '../../store/openJobIndex.ts';

/**
 * Only the pending reasons that changed (an estimate moving by under 5 s is not a change):
 * rewriting 10,000 unchanged reasons every cycle would dominate the cycle.
 */
export function changedReasons(pending: AppliedPlan['pending'], snap: StoreSnapshot, byId?: ReadonlyMap<string, Job>): AppliedPlan['pending'] {
  // The scheduler thread passes the map of open jobs it keeps (building one per cycle over
  // 100,000 jobs was a fifth of the thread's time); a few reasons are looked up by id.
  const jobs = byId ?? (pending.length * 16 < snap.openJobs.length ? null : openJobsById(snap.openJobs));
  const out: AppliedPlan['pending'][number][] = [];
  for (const p of pending) {
    const j = jobs ? jobs.get(p.jobId) : openJob(snap, p.jobId);
    if (j && reasonChanged(j, p)) out.push(p);
  }
  return out;
}

/** Whether a pending reason says something the job does not show yet (an estimate moving by under 5 s is no change). */
export function reasonChanged(j: Pick<Job, 'reason' | 'estimatedStart'>, p: AppliedPlan['pending'][number]): boolean {
  return (
    j.reason !== p.reason ||
    (j.estimatedStart === null) !== (p.estimatedStart === null) ||
    (j.estimatedStart !== null && p.estimatedStart !== null && Math.abs(j.estimatedStart - p.estimatedStart) >= 5000)
  );
}

/**
 * An open job of the snapshot by id: a binary search (the store lists them by id), then a walk
 * should the list not be in order.
 */
export function openJob(snap: StoreSnapshot, id: string): Job | undefined {
  const list = snap.openJobs;
  const n = Number(id);
  let lo = 0;
  let hi = list.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const j = list[mid] as Job;
    const v = Number(j.id);
    if (v === n && j.id === id) return j;
    if (v < n) lo = mid + 1;
    else hi = mid - 1;
  }
  return list.find((j) => j.id === id);
}
