/**
 * Time limits (`timeLimit` in a job spec, like Slurm's --time and Kueue's
 * maximumExecutionTimeSeconds). The server is the authority: each scheduling cycle (leader
 * only), a job whose running time over all its attempts (Job.runSeconds, kept across requeues,
 * plus the current attempt's now − startedAt) has reached its limit is timed out through
 * Store.timeOut: its tasks are asked to stop (SIGTERM, SIGKILL after the job's grace period, as
 * for cancel and preemption) and it ends `timeout` once they have, never requeued. A job
 * requeued with its limit already spent ends `timeout` at once.
 */
import type { Job } from '../api/types.ts';
import type { Store, StoreSnapshot } from '../store/store.ts';
import { openJobsById, startedJobs } from '../store/openJobIndex.ts';

/** Seconds the job has run over all attempts at `now` (the current attempt counts from its start). */
export function runningSeconds(job: Job, now: number): number {
  const current = job.startedAt !== null && (job.state === 'admitted' || job.state === 'running' || job.state === 'preempted') ? Math.max(0, now - job.startedAt) / 1000 : 0;
  return job.runSeconds + current;
}

/** "30m", "1h 30m", "30m 2s", "0s": whole seconds in the largest units that fit. */
export function shortDuration(seconds: number): string {
  let s = Math.max(0, Math.floor(seconds));
  const parts: string[] = [];
  for (const [unit, size] of [['d', 86_400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    const n = Math.floor(s / size);
    s -= n * size;
    if (n > 0) parts.push(`${n}${unit}`);
  }
  return parts.join(' ') || '0s';
}

/** The reason a timed-out job carries: "time limit 30m reached (ran 30m 2s over 2 attempts)". */
export function timeLimitReason(limitSeconds: number, ranSeconds: number, attempts: number): string {
  return `time limit ${shortDuration(limitSeconds)} reached (ran ${shortDuration(ranSeconds)} over ${attempts} attempt${attempts === 1 ? '' : 's'})`;
}

/** Whether the job is at its limit now and should be timed out. */
export function overLimit(job: Job, now: number): boolean {
  const limit = job.spec.timeLimitSeconds;
  if (limit === undefined) return false;
  if (job.state === 'pending') return job.runSeconds >= limit;
  if (job.state !== 'admitted' && job.state !== 'running') return false;
  return job.startedAt !== null && runningSeconds(job, now) >= limit;
}

export class TimeLimits {
  /** Jobs this server already timed out (their tasks are stopping): not asked again. */
  private readonly done = new Set<string>();

  constructor(private readonly store: Store) {}

  /**
   * Times out every open job of the snapshot that is at its limit; returns their ids. Only jobs
   * that run or ran can be (a pending job that never started has used none of its limit).
   */
  async enforce(snap: StoreSnapshot, now: number): Promise<string[]> {
    const out: string[] = [];
    for (const job of startedJobs(snap.openJobs)) {
      if (this.done.has(job.id) || !overLimit(job, now)) continue;
      this.done.add(job.id);
      const reason = timeLimitReason(job.spec.timeLimitSeconds ?? 0, runningSeconds(job, now), job.attempt + 1);
      if (await this.store.timeOut(job.id, reason, now)) out.push(job.id);
    }
    const open = openJobsById(snap.openJobs);
    for (const id of this.done) if (!open.has(id)) this.done.delete(id);
    return out;
  }
}
