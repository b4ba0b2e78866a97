/** Batch arrays' shared words: their counts, and element indexes as Slurm writes them ("0-9,12"). */
import { JOB_STATES, type JobState } from './types.ts';

/** An array element's index (TIDE_ARRAY_INDEX), or undefined for a job that is none. */
export function arrayIndexOf(job: { readonly spec: object }): number | undefined {
  return (job.spec as { arrayIndex?: number }).arrayIndex;
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
