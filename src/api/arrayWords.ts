/** Batch arrays' shared words: their counts, and element indexes as Slurm writes them ("0-9,12"). */
import { JOB_STATES, type JobState } from './types.ts';

/** An array job's first element index (TIDE_ARRAY_INDEX of an element), or undefined for a job that is none. */
export function arrayIndexOf(job: { readonly spec: object; readonly arrayIndex?: number }): number | undefined {
  return job.arrayIndex ?? (job.spec as { arrayIndex?: number }).arrayIndex;
}

/** How an array's job names its elements: "5" for one, "[5-999]" for several (Slurm's `7_[5-999]`). */
export function elementsOf(job: { readonly spec: object; readonly arrayIndex?: number; readonly arrayCount?: number }): string {
  const first = arrayIndexOf(job) ?? 0;
  const n = job.arrayCount ?? 1;
  return n > 1 ? `[${first}-${first + n - 1}]` : String(first);
}

/** An array's job's elements in words: "element 5", "elements 5-999, waiting together", "elements 0-189, run together". */
export function describeElements(job: { readonly spec: object; readonly state: string; readonly arrayIndex?: number; readonly arrayCount?: number }): string {
  const first = arrayIndexOf(job) ?? 0;
  const n = job.arrayCount ?? 1;
  return n === 1 ? `element ${first}` : `elements ${first}-${first + n - 1}, ${job.state === 'pending' ? 'waiting' : 'run'} together`;
}

/** An array's elements by state in words, the states it has elements in: "990 pending, 10 running" ("none" for none). */
export function describeCounts(counts: Readonly<Record<JobState, number>>): string {
  return JOB_STATES.filter((s) => counts[s] > 0).map((s) => `${counts[s]} ${s}`).join(', ') || 'none';
}

/** The indexes "0-9,12" names, or a message saying what is wrong (a range backwards, an index past the array's size). */
export function parseIndexRanges(text: string, size: number): Set<number> | string {
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(part);
    if (!m) return `"${part.slice(0, 20)}" is no index or range`;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) return `${part} runs backwards`;
    if (hi >= size) return `${hi} is past the array's last element (${size - 1})`;
    for (let i = lo; i <= hi; i++) out.add(i);
  }
  return out;
}
