/**
 * The job lifecycle rules, as pure functions of task states: what a job becomes when its tasks
 * change. The store applies them inside its transactions; nothing here does I/O.
 */
import type { JobState, TaskState } from '../api/types.ts';

export interface JobVerdict {
  readonly state: JobState;
  /** Active tasks to ask to stop (a failed gang member takes the whole gang down). */
  readonly stopActive: boolean;
  /** Set for a preempted job whose tasks have all stopped: back to pending, attempt + 1. */
  readonly requeue: boolean;
  readonly reason: string | null;
}

const ACTIVE = new Set<TaskState>(['assigned', 'running', 'stopping']);

/**
 * The job state implied by its current state and its tasks' states. `timedOut`: the job reached
 * its time limit and its tasks were asked to stop (see server/timeLimits.ts): once none is
 * active it ends `timeout` (never requeued), whatever stopped them (the stop request, a lost
 * node, a fence); a task that exits 0 meanwhile does not make it succeed unless all did.
 */
export function judgeJob(current: JobState, tasks: readonly TaskState[], timedOut = false): JobVerdict {
  const active = tasks.some((t) => ACTIVE.has(t));
  const keep = (state: JobState, reason: string | null = null): JobVerdict => ({ state, stopActive: false, requeue: false, reason });
  if (timedOut && (current === 'admitted' || current === 'running' || current === 'preempted')) {
    if (active) return keep(current);
    if (tasks.every((t) => t === 'succeeded')) return keep('succeeded');
    return keep('timeout');
  }
  switch (current) {
    case 'pending':
    case 'succeeded':
    case 'failed':
    case 'cancelled':
    case 'timeout':
      return keep(current);
    case 'preempted':
      return active ? keep('preempted') : { state: 'pending', stopActive: false, requeue: true, reason: 'requeued after preemption' };
    case 'admitted':
    case 'running': {
      // Tasks still pending were not bound in this attempt (an elastic gang below full size): not part of the run.
      const run = tasks.some((t) => t === 'pending') && tasks.some((t) => t !== 'pending') ? tasks.filter((t) => t !== 'pending') : tasks;
      const failed = run.filter((t) => t === 'failed').length;
      if (failed > 0) return { state: 'failed', stopActive: active, requeue: false, reason: `${failed} of ${run.length} tasks failed` };
      if (run.every((t) => t === 'succeeded')) return keep('succeeded');
      if (run.some((t) => t === 'stopped')) {
        // A task stopped without being asked to (its node went away): requeue the gang.
        return { state: 'preempted', stopActive: active, requeue: !active, reason: 'a task was stopped' };
      }
      if (current === 'admitted' && run.every((t) => t === 'running' || t === 'succeeded')) return keep('running');
      return keep(current);
    }
  }
}

/** The id an agent knows one attempt of one task by. */
export function runIdOf(jobId: string | number, index: number, attempt: number): string {
  return `${jobId}.${index}.${attempt}`;
}

export function parseRunId(runId: string): { jobId: string; index: number; attempt: number } | null {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(runId);
  if (!m) return null;
  return { jobId: m[1] as string, index: Number(m[2]), attempt: Number(m[3]) };
}
