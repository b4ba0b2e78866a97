import { JOB_STATES, type JobState } from './types.ts';

/** An array's elements by state in words, the states it has elements in: "990 pending, 10 running" ("none" for none). */
export function describeCounts(counts: Readonly<Record<JobState, number>>): string {
  return JOB_STATES.filter((s) => counts[s] > 0).map((s) => `${counts[s]} ${s}`).join(', ') || 'none';
}
