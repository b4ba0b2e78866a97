/**
 * Ports of Gavel's max-min fair share with its round mechanism (OSDI'20; scheduler.py):
 * `gavel` (heterogeneity-aware: measured throughputs) and `las` (the agnostic baseline:
 * every throughput 1, which Gavel's paper calls LAS).
 *
 * Rounds of 360 s. The allocation X (maxMinShare) is recomputed at a round start after
 * arrivals or completions, at most every 1,920 s; new jobs wait until then. Before each round,
 * a job's priority on a model is X ÷ the fraction of that model's time it received since the
 * last recomputation (counters seeded with half a round; X·1e9 while nothing was received).
 * Models are walked in cluster order (aware) or shuffled (agnostic); on each, jobs are taken
 * by priority, then deficit, then X, then id, and packed while enough GPUs are free; a job
 * placed on one model is skipped on the others. A job that stays on its model keeps its GPUs.
 * A round ends after 360 s, or earlier when all its jobs have finished. Gavel's protocol
 * charges no preemption cost; the simulator charges whatever the jobs declare (a job that loses
 * its GPUs between rounds, or moves to another model, restarts). A running job that may not be
 * preempted (preemptionCost.ts: minimum run, budget) keeps its GPUs through the round, ahead of
 * the packing.
 *
 * One deliberate difference: Gavel lets a job that arrived after the last recomputation take
 * GPUs in the packing pass without running it (they idle for the round); here it does not.
 */
import { jobGpus, type JobSpec } from '../model.ts';
import { maxMinShare, type ShareJob } from '../maxMinShare.ts';
import { Placer } from '../placer.ts';
import { mayPreempt, preemptionSettings } from '../preemptionCost.ts';
import type { JobBind, JobScheduler, JobSchedulerContext, PendingReason, Preemption, SchedulePlan, SchedulerSnapshot } from '../scheduler.ts';

export const ROUND_SECONDS = 360;
export const MIN_SECONDS_BETWEEN_ALLOCATIONS = 1920;

interface Counters {
  readonly spec: JobSpec;
  /** Seconds run per model since the last recomputation (seeded with half a round). */
  readonly time: Float64Array;
  readonly deficit: Float64Array;
  readonly throughput: Float64Array;
}

export function maxMinRounds(ctx: JobSchedulerContext, aware: boolean): JobScheduler {
  const name = aware ? 'gavel' : 'las';
  const lp = ctx.lp;
  if (!lp) throw new Error(`${name} needs an LP solver in its context`);
  const round = Number(ctx.options?.['roundSeconds'] ?? ROUND_SECONDS);
  const minGap = Number(ctx.options?.['allocationSeconds'] ?? MIN_SECONDS_BETWEEN_ALLOCATIONS);
  const placer = new Placer(ctx.rng, ctx.placement);
  const limits = preemptionSettings(ctx.options);
  let models: string[] = [];
  const jobs = new Map<string, Counters>();
  let workerTime = new Float64Array(0);
  let allocation = new Map<string, Float64Array>();
  let lastReset = 0;
  let everAllocated = false;
  let needAllocation = false;
  let roundStart = 0;
  let roundEnd = -Infinity;
  /** Jobs of the current round and their model index. */
  let roundJobs = new Map<string, number>();
  /** Finish times of round jobs reported since the round started. */
  const finishedAt = new Map<string, number>();
  /**
   * Waiting jobs' reasons, kept until the allocation or the cluster changes (the only inputs of
   * `reasonFor`): between rounds every event re-lists every waiting job, which at thousands of
   * waiting jobs made the reasons most of a saturated run's time.
   */
  const reasons = new Map<string, PendingReason>();
  let reasonsFit = -1;

  function counters(spec: JobSpec): Counters {
    const throughput = Float64Array.from(models, (m) => spec.throughput[m] ?? 0);
    return { spec, time: new Float64Array(models.length).fill(round / 2), deficit: new Float64Array(models.length), throughput };
  }

  function account(now: number): void {
    for (const [id, k] of roundJobs) {
      const c = jobs.get(id);
      const end = Math.min(finishedAt.get(id) ?? now, now);
      const ran = Math.max(0, end - roundStart);
      if (c) c.time[k] = (c.time[k] as number) + ran;
      workerTime[k] = (workerTime[k] as number) + ran;
    }
    for (const id of finishedAt.keys()) {
      if (jobs.delete(id)) needAllocation = true;
    }
    finishedAt.clear();
  }

  function reallocate(now: number, capacity: number[]): void {
    const elapsed = now - lastReset;
    workerTime = new Float64Array(models.length);
    for (const [id, c] of jobs) {
      const x = allocation.get(id);
      for (let k = 0; k < models.length; k++) {
        c.deficit[k] = (c.deficit[k] as number) + (x ? (x[k] as number) * elapsed : 0) - ((c.time[k] as number) - round / 2);
        c.time[k] = round / 2;
        workerTime[k] = (workerTime[k] as number) + round / 2;
      }
    }
    const share: ShareJob[] = [...jobs.values()].map((c) => ({ id: c.spec.id, gpus: jobGpus(c.spec), weight: c.spec.weight ?? 1, throughput: Array.from(c.throughput) }));
    allocation = new Map(maxMinShare(share, models, capacity, aware, lp as NonNullable<typeof lp>).allocation);
    reasons.clear();
    lastReset = now;
    everAllocated = true;
    needAllocation = false;
  }

  function waitingPlan(s: SchedulerSnapshot, wakeAt: number): SchedulePlan {
    const pending: PendingReason[] = s.pending.map((p) => reasonFor(p.spec));
    return { binds: [], preemptions: [], pending, wakeAt };
  }

  function reasonFor(spec: JobSpec): PendingReason {
    const known = reasons.get(spec.id);
    if (known) return known;
    const made = freshReason(spec);
    reasons.set(spec.id, made);
    return made;
  }

  function freshReason(spec: JobSpec): PendingReason {
    const never = placer.unschedulable(spec);
    if (never) return { job: spec.id, ...never };
    const x = allocation.get(spec.id);
    if (!x) return { job: spec.id, code: 'waiting-for-round', message: `waits for the next allocation (every ${minGap} s at most)` };
    const share = x.reduce((a, v) => a + v, 0);
    return { job: spec.id, code: 'lower-priority', message: `fair share ${(100 * share).toFixed(1)}% of the time; this round went to jobs further below their share` };
  }

  return {
    name,
    cycle(s: SchedulerSnapshot): SchedulePlan {
      const cluster = placer.begin(s);
      if (placer.fitVersion !== reasonsFit) {
        reasons.clear();
        reasonsFit = placer.fitVersion;
      }
      if (models.length === 0 || cluster.models.length !== models.length) {
        models = [...cluster.models];
        workerTime = new Float64Array(models.length);
      }
      for (const f of s.finished ?? []) if (roundJobs.has(f.spec.id)) finishedAt.set(f.spec.id, f.finishTime);
      for (const f of s.finished ?? []) {
        reasons.delete(f.spec.id);
        if (!roundJobs.has(f.spec.id) && jobs.delete(f.spec.id)) needAllocation = true;
      }
      const roundRunning = s.running.some((r) => roundJobs.has(r.spec.id));
      if (s.now < roundEnd && roundRunning) return waitingPlan(s, roundEnd);

      // A new round.
      account(s.now);
      for (const p of s.pending) {
        if (!jobs.has(p.spec.id)) {
          jobs.set(p.spec.id, counters(p.spec));
          needAllocation = true;
        }
      }
      const capacity = models.map((m) => {
        let n = 0;
        for (let g = 0; g < cluster.gpuModel.length; g++) if (cluster.models[cluster.gpuModel[g] as number] === m) n++;
        return n;
      });
      if (needAllocation && (!everAllocated || lastReset === 0 || s.now - lastReset >= minGap)) reallocate(s.now, capacity);

      const order = models.map((_, k) => k);
      if (!aware) ctx.rng.shuffle(order);
      const left = capacity.slice();
      const chosen = new Map<string, number>();
      // Runs that may not be stopped now keep their model and GPUs.
      for (const r of s.running) {
        if (mayPreempt(r.spec, r.progress, r, s.now, limits)) continue;
        const k = models.indexOf(r.model);
        if (k < 0) continue;
        chosen.set(r.spec.id, k);
        left[k] = (left[k] as number) - r.gpus;
      }
      const active = [...jobs.values()];
      for (const k of order) {
        const wt = workerTime[k] as number;
        // Jobs that could take this model, in packing order, taken lazily from a heap: the
        // packing stops when the model is full, usually long before the queue's end.
        const heap = new PackingHeap();
        for (const c of active) {
          const x = allocation.get(c.spec.id);
          if (!x || (c.throughput[k] as number) <= 0 || chosen.has(c.spec.id)) continue;
          const xk = x[k] as number;
          let priority = 0;
          if (xk > 0) {
            const fraction = wt === 0 ? 0 : (c.time[k] as number) / wt;
            priority = fraction > 0 ? xk / fraction : xk * 1e9;
          }
          heap.add({ c, priority, deficit: c.deficit[k] as number, xk });
        }
        heap.build();
        for (let e = heap.pop(); e !== undefined && (left[k] as number) > 0; e = heap.pop()) {
          const id = e.c.spec.id;
          // No round's GPUs for a job no schedulable node could run.
          if (placer.unschedulable(e.c.spec) !== null) continue;
          const gpus = jobGpus(e.c.spec);
          if (gpus > (left[k] as number)) continue;
          left[k] = (left[k] as number) - gpus;
          chosen.set(id, k);
        }
      }

      // Turn the round's choice into a plan: keep who stays on its model, move or stop the rest.
      const preemptions: Preemption[] = [];
      for (const r of s.running) {
        const k = chosen.get(r.spec.id);
        if (k === undefined || models[k] !== r.model) {
          preemptions.push({ job: r.spec.id, reason: k === undefined ? 'round: fair share goes to others' : `round: moves to ${models[k]}` });
          placer.releaseRunning(r);
        }
      }
      const staying = new Set(s.running.filter((r) => models[chosen.get(r.spec.id) ?? -1] === r.model).map((r) => r.spec.id as string));
      const binds: JobBind[] = [];
      const pending: PendingReason[] = [];
      const bound = new Set<string>();
      const toStart = [...chosen.entries()].filter(([id]) => !staying.has(id)).sort((a, b) => jobGpus((jobs.get(b[0]) as Counters).spec) - jobGpus((jobs.get(a[0]) as Counters).spec) || (a[0] < b[0] ? -1 : 1));
      for (const [id, k] of toStart) {
        const spec = (jobs.get(id) as Counters).spec;
        const r = placer.place(spec, models[k] as string);
        if (r.ok) {
          binds.push({ job: spec.id, model: models[k] as string, bindings: r.bindings });
          bound.add(id);
        } else {
          chosen.delete(id);
          pending.push({ job: spec.id, code: r.code, message: r.message });
        }
      }
      const explained = new Set(pending.map((p) => p.job as string));
      for (const p of s.pending) if (!bound.has(p.spec.id) && !explained.has(p.spec.id)) pending.push(reasonFor(p.spec));
      for (const pr of preemptions) if (!bound.has(pr.job) && !explained.has(pr.job)) pending.push(reasonFor((jobs.get(pr.job) as Counters).spec));

      roundJobs = chosen;
      roundStart = s.now;
      roundEnd = s.now + round;
      return { binds, preemptions, pending, wakeAt: roundEnd };
    },
  };
}

interface PackingEntry {
  readonly c: Counters;
  readonly priority: number;
  readonly deficit: number;
  readonly xk: number;
}

/** Gavel's packing order on a model: priority, then deficit, then share, highest first; then id. */
function packsBefore(a: PackingEntry, b: PackingEntry): boolean {
  if (a.priority !== b.priority) return a.priority > b.priority;
  if (a.deficit !== b.deficit) return a.deficit > b.deficit;
  if (a.xk !== b.xk) return a.xk > b.xk;
  return a.c.spec.id < b.c.spec.id;
}

/** A binary heap of packing entries, built once (O(n)) and popped in packing order. */
class PackingHeap {
  private readonly items: PackingEntry[] = [];
  add(e: PackingEntry): void {
    this.items.push(e);
  }
  build(): void {
    for (let i = (this.items.length >> 1) - 1; i >= 0; i--) this.down(i);
  }
  pop(): PackingEntry | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) {
      items[0] = last;
      this.down(0);
    }
    return top;
  }
  private down(i: number): void {
    const items = this.items;
    const n = items.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) return;
      const r = l + 1;
      const m = r < n && packsBefore(items[r] as PackingEntry, items[l] as PackingEntry) ? r : l;
      if (!packsBefore(items[m] as PackingEntry, items[i] as PackingEntry)) return;
      [items[i], items[m]] = [items[m] as PackingEntry, items[i] as PackingEntry];
      i = m;
    }
  }
}
