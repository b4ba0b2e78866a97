/**
 * What a scheduler can learn about run times without knowing the future: users' declared
 * limits over-estimate, and finished jobs show by how much. `RuntimeHistory` keeps the mean
 * ratio (actual run ÷ declared limit) over recently finished jobs, and per job type the mean
 * run, and from them estimates a job's total run in seconds on its fastest model.
 */
import type { JobSpec } from './model.ts';
import type { FinishedJob } from './scheduler.ts';

/** Before any job has finished: assume a job uses half of what it declares. */
const PRIOR_RATIO = 0.5;
/** How many finished jobs the means remember (exponential window). */
const WINDOW = 500;

export class RuntimeHistory {
  private ratio = PRIOR_RATIO;
  private ratioSeen = 0;
  private readonly byType = new Map<string, { mean: number; seen: number }>();

  /** Learns from finished jobs; `best` gives a job's fastest throughput (steps/s). */
  learn(finished: readonly FinishedJob[], best: (spec: JobSpec) => number): void {
    for (const f of finished) {
      const actual = f.spec.totalSteps / best(f.spec);
      if (!(actual > 0) || !Number.isFinite(actual)) continue;
      const limit = f.spec.timeLimitSeconds;
      if (limit !== undefined && limit > 0) {
        this.ratioSeen = Math.min(WINDOW, this.ratioSeen + 1);
        this.ratio += (Math.min(1, actual / limit) - this.ratio) / this.ratioSeen;
      }
      if (f.spec.jobType !== undefined) {
        const t = this.byType.get(f.spec.jobType) ?? { mean: 0, seen: 0 };
        t.seen = Math.min(WINDOW, t.seen + 1);
        t.mean += (actual - t.mean) / t.seen;
        this.byType.set(f.spec.jobType, t);
      }
    }
  }

  /** Expected total run (seconds on the fastest model) of a job that declares `limit` (> 0) seconds. */
  fromLimit(limit: number): number {
    return limit * this.ratio;
  }

  /** Expected total run (seconds on the fastest model); undefined when nothing is known. */
  expectedSeconds(spec: JobSpec): number | undefined {
    if (spec.timeLimitSeconds !== undefined && spec.timeLimitSeconds > 0) return this.fromLimit(spec.timeLimitSeconds);
    if (spec.jobType !== undefined) return this.byType.get(spec.jobType)?.mean;
    return undefined;
  }
}
