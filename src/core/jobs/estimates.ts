/**
 * Estimated start times from what a real scheduler knows: each running job ends when its
 * declared time limit runs out (or an estimate from similar jobs); pending jobs start, in
 * priority order, at the earliest time enough GPUs of a model they can use are free for
 * their estimated run time. Counts GPUs per model and ignores fragmentation, so an estimate
 * is a forecast, not a promise. The same profile gives EASY backfill its shadow time.
 */
import type { GpuModel } from '../model.ts';

interface Step {
  readonly time: number;
  readonly delta: number;
}

export class AvailabilityProfile {
  private readonly free = new Map<GpuModel, number>();
  private readonly steps = new Map<GpuModel, Step[]>();
  private readonly unsorted = new Set<GpuModel>();

  constructor(readonly now: number) {}

  /** GPUs of `model` free now. */
  setFree(model: GpuModel, gpus: number): void {
    this.free.set(model, gpus);
  }

  /** `gpus` of `model` become free at `time` (Infinity: never, as far as we know). */
  release(model: GpuModel, gpus: number, time: number): void {
    if (!Number.isFinite(time) || gpus === 0) return;
    const steps = this.steps.get(model) ?? [];
    steps.push({ time: Math.max(time, this.now), delta: gpus });
    this.steps.set(model, steps);
    this.unsorted.add(model);
  }

  private sorted(model: GpuModel): Step[] {
    const steps = this.steps.get(model) ?? [];
    if (this.unsorted.delete(model)) steps.sort((a, b) => a.time - b.time);
    return steps;
  }

  /** Earliest start ≥ now when `gpus` of `model` stay free for `duration`; Infinity if never. One pass over the steps. */
  earliest(model: GpuModel, gpus: number, duration: number): number {
    const steps = this.sorted(model);
    // level[i]: GPUs free from times[i] until the next step.
    const times: number[] = [this.now];
    const levels: number[] = [this.free.get(model) ?? 0];
    for (const st of steps) {
      const last = levels.length - 1;
      if (st.time <= (times[last] as number)) levels[last] = (levels[last] as number) + st.delta;
      else {
        times.push(st.time);
        levels.push((levels[last] as number) + st.delta);
      }
    }
    let i = 0;
    while (i < times.length) {
      if ((levels[i] as number) < gpus) {
        i++;
        continue;
      }
      const start = times[i] as number;
      let j = i + 1;
      while (j < times.length && (times[j] as number) < start + duration && (levels[j] as number) >= gpus) j++;
      if (j >= times.length || (times[j] as number) >= start + duration) return start;
      i = j + 1;
    }
    return Infinity;
  }

  /** Holds `gpus` of `model` from `start` for `duration` (Infinity: until further notice). */
  reserve(model: GpuModel, gpus: number, start: number, duration: number): void {
    if (start <= this.now) this.free.set(model, (this.free.get(model) ?? 0) - gpus);
    else this.addStep(model, start, -gpus);
    if (Number.isFinite(duration)) this.addStep(model, Math.max(start, this.now) + duration, gpus);
  }

  /** Fewest GPUs of `model` free at any time in [from, to). */
  minFree(model: GpuModel, from: number, to: number): number {
    let level = this.free.get(model) ?? 0;
    const steps = this.sorted(model);
    let i = 0;
    for (; i < steps.length && (steps[i] as Step).time <= from; i++) level += (steps[i] as Step).delta;
    let min = level;
    for (; i < steps.length && (steps[i] as Step).time < to; i++) {
      level += (steps[i] as Step).delta;
      if (level < min) min = level;
    }
    return min;
  }

  private addStep(model: GpuModel, time: number, delta: number): void {
    const steps = this.sorted(model);
    let i = steps.length;
    while (i > 0 && (steps[i - 1] as Step).time > time) i--;
    steps.splice(i, 0, { time, delta });
    this.steps.set(model, steps);
  }
}
