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

  constructor(readonly now: number) {}

  /** GPUs of `model` free now. */
  setFree(model: GpuModel, gpus: number): void {
    this.free.set(model, gpus);
  }

  /** `gpus` of `model` become free at `time` (Infinity: never, as far as we know). */
  release(model: GpuModel, gpus: number, time: number): void {
    if (!Number.isFinite(time) || gpus === 0) return;
    this.addStep(model, Math.max(time, this.now), gpus);
  }

  /** Earliest start ≥ now when `gpus` of `model` stay free for `duration`; Infinity if never. */
  earliest(model: GpuModel, gpus: number, duration: number): number {
    const steps = this.steps.get(model) ?? [];
    const candidates = [this.now, ...steps.map((s) => s.time)];
    for (const t of candidates) {
      if (t < this.now) continue;
      if (this.minFree(model, t, t + duration) >= gpus) return t;
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
    const steps = this.steps.get(model) ?? [];
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
    const steps = this.steps.get(model) ?? [];
    let i = steps.length;
    while (i > 0 && (steps[i - 1] as Step).time > time) i--;
    steps.splice(i, 0, { time, delta });
    this.steps.set(model, steps);
  }
}
