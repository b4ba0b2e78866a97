/**
 * Estimated start times from what a real scheduler knows: each running job ends when its
 * declared time limit runs out (or an estimate from similar jobs); pending jobs start, in
 * priority order, at the earliest time enough GPUs of a model they can use are free for
 * their estimated run time. Counts GPUs per model and ignores fragmentation, so an estimate
 * is a forecast, not a promise. The same profile gives EASY backfill its shadow time.
 *
 * A model's steps may come in two parts: a base (the running jobs' ends, sorted once per cycle
 * and shared by every profile of that cycle, see RunningEnds) and the steps added to this
 * profile (releases and reservations). The base only ever adds GPUs, so between two added
 * steps the level only rises: a query binary-searches the base and walks the added steps,
 * instead of walking every step.
 */
import type { GpuModel } from '../model.ts';
import { ascending } from './model.ts';

interface Step {
  readonly time: number;
  readonly delta: number;
}

/**
 * GPUs that become free after `now`, in time order: distinct times (all after `now`) and the GPUs
 * freed up to and including each; `atNow` were freed at `now` or before. Every delta is ≥ 0.
 * A profile of a later instant may use it as is (its steps up to then count as free then).
 */
export interface ProfileBase {
  readonly now: number;
  readonly atNow: number;
  readonly times: Float64Array;
  readonly freed: Float64Array;
  readonly length: number;
}

/** The steps added to a profile, merged at their distinct times (sorted). */
interface Merged {
  readonly times: number[];
  /** Sum of the deltas up to and including each time. */
  readonly sums: number[];
  /** The base's GPUs freed up to and including each time. */
  readonly baseAt: number[];
}

const NO_BASE: ProfileBase = { now: 0, atNow: 0, times: new Float64Array(0), freed: new Float64Array(0), length: 0 };

export class AvailabilityProfile {
  private readonly free = new Map<GpuModel, number>();
  private readonly steps = new Map<GpuModel, Step[]>();
  private readonly unsorted = new Set<GpuModel>();
  private readonly bases = new Map<GpuModel, ProfileBase>();
  private readonly merged = new Map<GpuModel, Merged>();

  constructor(readonly now: number) {}

  /** GPUs of `model` free now. */
  setFree(model: GpuModel, gpus: number): void {
    this.free.set(model, gpus);
  }

  /** Releases of `model` shared with other profiles of the same instant (instead of one release() per job). */
  setBase(model: GpuModel, base: ProfileBase): void {
    if (base.now > this.now) throw new Error('profile base of a later instant');
    this.bases.set(model, base);
    this.merged.delete(model);
  }

  /** Like setBase for every model, each base made only when a query first needs it. */
  setBaseSource(source: (model: GpuModel) => ProfileBase | undefined): void {
    this.baseSource = source;
  }

  private baseSource: ((model: GpuModel) => ProfileBase | undefined) | undefined;

  private baseOf(model: GpuModel): ProfileBase | undefined {
    let base = this.bases.get(model);
    if (base === undefined && this.baseSource) {
      base = this.baseSource(model) ?? NO_BASE;
      if (base !== NO_BASE && base.now > this.now) throw new Error('profile base of a later instant');
      this.bases.set(model, base);
    }
    return base;
  }

  /** `gpus` of `model` become free at `time` (Infinity: never, as far as we know). */
  release(model: GpuModel, gpus: number, time: number): void {
    if (!Number.isFinite(time) || gpus === 0) return;
    const steps = this.steps.get(model) ?? [];
    steps.push({ time: Math.max(time, this.now), delta: gpus });
    this.steps.set(model, steps);
    this.unsorted.add(model);
    this.merged.delete(model);
  }

  private sorted(model: GpuModel): Step[] {
    const steps = this.steps.get(model) ?? [];
    if (this.unsorted.delete(model)) steps.sort((a, b) => ascending(a.time, b.time));
    return steps;
  }

  private mergedSteps(model: GpuModel): Merged {
    let m = this.merged.get(model);
    if (m) return m;
    const base = this.baseOf(model) ?? NO_BASE;
    const times: number[] = [];
    const sums: number[] = [];
    const baseAt: number[] = [];
    let sum = 0;
    for (const st of this.sorted(model)) {
      sum += st.delta;
      if (times.length > 0 && st.time <= (times[times.length - 1] as number)) sums[sums.length - 1] = sum;
      else {
        times.push(st.time);
        sums.push(sum);
        baseAt.push(freedAt(base, st.time));
      }
    }
    m = { times, sums, baseAt };
    this.merged.set(model, m);
    return m;
  }

  /**
   * Earliest start ≥ now when `gpus` of `model` stay free for `duration`; Infinity if never.
   * Candidate starts are `now` and the times of steps; a start holds when no step time before
   * start + duration has fewer than `gpus` free.
   */
  earliest(model: GpuModel, gpus: number, duration: number): number {
    const now = this.now;
    const base = this.baseOf(model) ?? NO_BASE;
    const { times: et, sums: es, baseAt: eb } = this.mergedSteps(model);
    const initial = (this.free.get(model) ?? 0) + base.atNow;
    const bt = base.times;
    const bf = base.freed;
    const nb = base.length;
    const ne = et.length;
    // Added steps at `now` count from the start.
    let a = 0;
    while (a < ne && (et[a] as number) <= now) a++;
    // t: a candidate start (now or a step time); a: added steps at or before t; tBase: base freed by t.
    let t = now;
    let tBase = freedAt(base, now);
    for (;;) {
      // First candidate ≥ t with enough free GPUs: until the next added step the level only rises.
      const need = gpus - initial - (a > 0 ? (es[a - 1] as number) : 0);
      const segmentEnd = a < ne ? (et[a] as number) : Infinity;
      let start = -1;
      if (tBase >= need) start = t;
      else if (nb > 0) {
        const k = Math.max(upperBound(bt, nb, t), lowerBound(bf, nb, need));
        if (k < nb && (bt[k] as number) < segmentEnd) start = bt[k] as number;
      }
      if (start < 0) {
        if (a >= ne) return Infinity;
        t = segmentEnd;
        tBase = eb[a] as number;
        a++;
        continue;
      }
      // Does it hold until start + duration? Only an added step can take GPUs away.
      const end = start + duration;
      let dip = -1;
      for (let j = a; j < ne && (et[j] as number) < end; j++) {
        if ((et[j] as number) > start && initial + (eb[j] as number) + (es[j] as number) < gpus) {
          dip = j;
          break;
        }
      }
      if (dip < 0) return start;
      // Go on from the first step time after the dip.
      const tDip = et[dip] as number;
      const kb = upperBound(bt, nb, tDip);
      const nextBase = kb < nb ? (bt[kb] as number) : Infinity;
      const nextAdded = dip + 1 < ne ? (et[dip + 1] as number) : Infinity;
      if (nextBase === Infinity && nextAdded === Infinity) return Infinity;
      a = dip + 1;
      if (nextAdded <= nextBase) {
        t = nextAdded;
        tBase = eb[a] as number;
        a++;
      } else {
        t = nextBase;
        tBase = bf[kb] as number;
      }
    }
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
    // The base's steps come before added steps of the same time, as if released first.
    const base = this.baseOf(model);
    const steps: Step[] = [];
    if (base) {
      if (base.atNow !== 0) steps.push({ time: this.now, delta: base.atNow });
      let i = 0;
      for (const st of this.sorted(model)) {
        for (; i < base.length && (base.times[i] as number) <= st.time; i++) steps.push(baseStep(base, i));
        steps.push(st);
      }
      for (; i < base.length; i++) steps.push(baseStep(base, i));
    } else steps.push(...this.sorted(model));
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
    // Keep the merged steps in step rather than merging them again.
    const m = this.merged.get(model);
    if (!m) return;
    const { times, sums, baseAt } = m;
    let k = times.length;
    while (k > 0 && (times[k - 1] as number) > time) k--;
    if (k > 0 && times[k - 1] === time) k--;
    else {
      times.splice(k, 0, time);
      sums.splice(k, 0, k > 0 ? (sums[k - 1] as number) : 0);
      baseAt.splice(k, 0, freedAt(this.baseOf(model) ?? NO_BASE, time));
    }
    for (; k < sums.length; k++) sums[k] = (sums[k] as number) + delta;
  }
}

/** The base's GPUs freed at or before t (t ≥ now). */
function freedAt(base: ProfileBase, t: number): number {
  if (base.length === 0 || t < (base.times[0] as number)) return 0;
  return base.freed[upperBound(base.times, base.length, t) - 1] as number;
}

function baseStep(base: ProfileBase, i: number): Step {
  return { time: base.times[i] as number, delta: (base.freed[i] as number) - (i > 0 ? (base.freed[i - 1] as number) : 0) };
}

/** First index in a[0, n) with a[i] > x (a ascending). */
function upperBound(a: Float64Array, n: number, x: number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((a[mid] as number) <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index in a[0, n) with a[i] ≥ x (a ascending). */
function lowerBound(a: Float64Array, n: number, x: number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((a[mid] as number) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

interface RunningEnd {
  /** Roughly when it ends (start + what its limit leaves): the sort key. */
  readonly key: number;
  /** Declared limit less the seconds it had run when this run started. */
  readonly left: number;
  readonly start: number;
  readonly gpus: number;
  readonly job: object;
}

/**
 * The running jobs' expected ends per model, kept sorted from one cycle to the next (a job is
 * added when it starts and removed when it stops), so a cycle's ProfileBase costs one pass
 * instead of a sort. A job ends at now + max(0, left − (now − start)), computed at each instant
 * exactly so; the sort key only orders the pass.
 */
export class RunningEnds {
  private readonly byModel = new Map<GpuModel, RunningEnd[]>();
  /** Each model's base, made when first asked for at an instant and kept until its list changes. */
  private readonly cached = new Map<GpuModel, ProfileBase>();

  clear(): void {
    this.byModel.clear();
    this.cached.clear();
  }

  /** A job started: `left` seconds of its declared limit remain at `start` (Infinity: no limit). */
  add(job: object, model: GpuModel, gpus: number, start: number, left: number): void {
    if (gpus === 0 || !Number.isFinite(left)) return;
    const list = this.byModel.get(model) ?? [];
    const key = start + left;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((list[mid] as RunningEnd).key <= key) lo = mid + 1;
      else hi = mid;
    }
    list.splice(lo, 0, { key, left, start, gpus, job });
    this.byModel.set(model, list);
    this.cached.delete(model);
  }

  /** A job added with these figures stopped. */
  remove(job: object, model: GpuModel, gpus: number, start: number, left: number): void {
    if (gpus === 0 || !Number.isFinite(left)) return;
    const list = this.byModel.get(model);
    if (!list) return;
    const key = start + left;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((list[mid] as RunningEnd).key < key) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < list.length && (list[i] as RunningEnd).key === key; i++) {
      if ((list[i] as RunningEnd).job === job) {
        list.splice(i, 1);
        this.cached.delete(model);
        return;
      }
    }
    throw new Error('RunningEnds.remove: job not found');
  }

  /**
   * A model's base at `now` (undefined: no running job with a declared end). A base made
   * earlier still holds while the model's list is unchanged: ends between its instant and
   * `now` are steps at or before `now`, which every query counts as free now.
   */
  base(model: GpuModel, now: number): ProfileBase | undefined {
    const kept = this.cached.get(model);
    if (kept !== undefined && kept.now <= now) return kept;
    const list = this.byModel.get(model);
    if (!list || list.length === 0) return undefined;
    const base = baseOf(list, now);
    this.cached.set(model, base);
    return base;
  }
}

function baseOf(list: readonly RunningEnd[], now: number): ProfileBase {
  const n = list.length;
  const t = new Float64Array(n);
  const g = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const e = list[i] as RunningEnd;
    let time = now + Math.max(0, e.left - (now - e.start));
    if (time < now) time = now;
    // Rounding may put near-equal ends out of key order: insertion sort (almost always no moves).
    let j = i;
    while (j > 0 && (t[j - 1] as number) > time) {
      t[j] = t[j - 1] as number;
      g[j] = g[j - 1] as number;
      j--;
    }
    t[j] = time;
    g[j] = e.gpus;
  }
  let atNow = 0;
  let i = 0;
  for (; i < n && (t[i] as number) <= now; i++) atNow += g[i] as number;
  const times = new Float64Array(n - i);
  const freed = new Float64Array(n - i);
  let len = 0;
  let sum = 0;
  for (; i < n; i++) {
    sum += g[i] as number;
    if (len > 0 && (t[i] as number) <= (times[len - 1] as number)) freed[len - 1] = sum;
    else {
      times[len] = t[i] as number;
      freed[len] = sum;
      len++;
    }
  }
  return { now, atNow, times, freed, length: len };
}
