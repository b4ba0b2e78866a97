/**
 * `tide`: Tide's own job scheduler. Preemptive shortest-expected-remaining-work-first over
 * heterogeneous GPUs, using only what a real scheduler knows (steps done, measured throughputs,
 * declared limits, the history of finished jobs).
 *
 * - Order: jobs that have waited (not run) longer than `starvationSeconds` first, oldest first,
 *   as long as they hold no more than `boostShare` of the GPUs (the oldest always goes first).
 *   Then the least expected remaining work, in GPU-seconds on the job's fastest model: the
 *   declared limit scaled by how much finished jobs over-declared (RuntimeHistory), less the
 *   work done (gpus × steps done ÷ best throughput, so a job is not favoured for running
 *   slowly). A job past its estimate counts a quarter of what it has done as still to go: the
 *   longer a job has run, the longer it is likely to run. Jobs without a limit or history fall
 *   back to least attained service. A running job's unsaved work since its last checkpoint is
 *   credited, so the job that would lose the fewest GPU-hours is the one preempted.
 * - Each job in that order gets the fastest model with enough free GPUs (backfill: a job that
 *   does not fit does not stop smaller ones behind it) — except on a model reserved for a
 *   starving gang, where only jobs whose declared limit ends before the reservation may start
 *   (EASY backfill).
 * - Quotas (Kueue): a first pass admits only what stays within each queue's nominal quota, a
 *   second lets queues borrow, ordered by the tenant's dominant share of decayed GPU, CPU and
 *   memory usage ÷ weight (DRF, fairShare.ts). So lent quota is reclaimed as soon as its owner
 *   has work.
 * - Elastic jobs start at their minimum size when that is all that fits, take as much more as
 *   fits, and grow (a restart from the checkpoint) when GPUs free up and the gain over a
 *   quantum outweighs the restart; they shrink rather than stop when others need GPUs.
 * - Then same-size jobs on different models swap when that raises the sum of their speeds
 *   relative to their best model.
 * - Preemption only every `quantumSeconds`, and never of a job younger than `minRunSeconds` or
 *   not preemptible; between quanta arrivals and completions only fill free GPUs.
 */
import type { GpuModel } from '../../model.ts';
import { jobGpus, jobSizes, type JobProgress, type JobSpec } from '../model.ts';
import { byPriorityThenFifo, declaredRunSeconds, Placer, profileFor } from '../placer.ts';
import { dominantShares } from '../fairShare.ts';
import { QuotaLedger } from '../quota.ts';
import { RuntimeHistory } from '../runtimeHistory.ts';
import type { JobBind, JobScheduler, JobSchedulerContext, PendingReason, PendingReasonCode, Preemption, RunningJob, SchedulePlan, SchedulerSnapshot } from '../scheduler.ts';
import { withEstimates } from './fifo.ts';

export const TIDE_DEFAULTS = {
  quantumSeconds: 360,
  starvationSeconds: 24 * 3600,
  minRunSeconds: 0,
  /** Fraction of the GPUs that starving jobs may claim ahead of the least-attained order. */
  boostShare: 1 / 3,
  /**
   * 1: order by expected remaining GPU-seconds (declared limits, corrected by how much finished
   * jobs over-declared) instead of attained service; a job past its estimate counts a quarter
   * of what it has done as still to go (the longer it ran, the longer it is likely to run).
   */
  estimate: 1,
};

interface Candidate {
  readonly spec: JobSpec;
  readonly running: RunningJob | undefined;
  readonly progress: JobProgress;
  /** GPUs at full size. */
  readonly gpus: number;
  /** Sizes it can run at, smallest first (one entry unless a group is elastic). */
  readonly sizes: readonly number[];
  /** Waited (not run) longer than the starvation limit, and within the share boosted jobs may take. */
  boosted: boolean;
  /**
   * Order key, smaller first: expected remaining GPU-seconds on the best model (attained
   * GPU-seconds when nothing is known), less unsaved work for running jobs.
   */
  readonly rank: number;
  /** Models it can run on, fastest first. */
  readonly models: readonly GpuModel[];
  readonly best: number;
  /** Seconds of work a move would cost it now: unsaved work plus its restart cost. */
  readonly moveCost: number;
}

/** A job chosen to run: on which model, at how many GPUs. */
interface Pick {
  readonly c: Candidate;
  model: GpuModel;
  readonly gpus: number;
}

export function tide(ctx: JobSchedulerContext): JobScheduler {
  const opt = (k: keyof typeof TIDE_DEFAULTS): number => Number(ctx.options?.[k] ?? TIDE_DEFAULTS[k]);
  const quantum = opt('quantumSeconds');
  const starvation = opt('starvationSeconds');
  const minRun = opt('minRunSeconds');
  const boostShare = opt('boostShare');
  const useEstimates = opt('estimate') > 0;
  const history = new RuntimeHistory();
  const bestOf = (spec: JobSpec): number => statics.get(spec)?.best ?? Math.max(1e-12, ...Object.values(spec.throughput));
  const placer = new Placer(ctx.rng, ctx.placement);
  let nextReplan = -Infinity;
  /** What never changes about a job: its size and its models, fastest first. */
  const statics = new WeakMap<JobSpec, { gpus: number; sizes: number[]; models: GpuModel[]; best: number }>();

  function candidate(spec: JobSpec, p: JobProgress, running: RunningJob | undefined, s: SchedulerSnapshot): Candidate {
    let st = statics.get(spec);
    if (!st) {
      const models = placer.modelsFor(spec).sort((a, b) => (spec.throughput[b] ?? 0) - (spec.throughput[a] ?? 0));
      st = { gpus: jobGpus(spec), sizes: jobSizes(spec), models, best: Math.max(1e-12, ...models.map((m) => spec.throughput[m] ?? 0)) };
      statics.set(spec, st);
    }
    const { gpus, sizes, models, best } = st;
    let steps = p.stepsDone;
    let ranNow = 0;
    let unsavedSeconds = 0;
    if (running) {
      ranNow = s.now - running.startTime;
      const rate = ((spec.throughput[running.model] ?? 0) * running.gpus) / Math.max(1, gpus);
      steps += rate * Math.max(0, ranNow - (p.preemptions > 0 ? (spec.restartCostSeconds ?? 0) : 0));
      const interval = spec.checkpointIntervalSeconds;
      if (interval !== undefined && interval > 0) unsavedSeconds = ranNow % interval;
    }
    const unsaved = unsavedSeconds * (running?.gpus ?? 0);
    const waited = s.now - spec.submitTime - (p.runSeconds + ranNow);
    const moveCost = running ? unsavedSeconds + (spec.restartCostSeconds ?? 0) : 0;
    const done = steps / best;
    let rank = gpus * done - unsaved;
    if (useEstimates) {
      const expected = history.expectedSeconds(spec);
      if (expected !== undefined) rank = gpus * Math.max(expected - done, 0.25 * done, 60) - unsaved;
    }
    return { spec, running, progress: p, gpus, sizes, boosted: waited > starvation, rank, models, best, moveCost };
  }

  return {
    name: 'tide',
    cycle(s: SchedulerSnapshot): SchedulePlan {
      const cluster = placer.begin(s);
      if (useEstimates && s.finished) history.learn(s.finished, bestOf);
      const replan = s.now >= nextReplan;
      if (replan) nextReplan = s.now + quantum;
      const movable = (r: RunningJob): boolean => replan && r.spec.preemptible && s.now - r.startTime >= minRun;
      const capacity = new Map<GpuModel, number>();
      for (const m of cluster.models) capacity.set(m, placer.freeGpus(m));
      const ledger = new QuotaLedger(s.queues);
      const pinned: RunningJob[] = [];
      const cands: Candidate[] = [];
      for (const r of s.running) {
        if (movable(r)) {
          cands.push(candidate(r.spec, r.progress, r, s));
          capacity.set(r.model, (capacity.get(r.model) ?? 0) + r.gpus);
        } else {
          pinned.push(r);
          ledger.add(r.spec.queue, r.model, r.gpus);
        }
      }
      for (const p of s.pending) cands.push(candidate(p.spec, p.progress, undefined, s));
      // Starving jobs go first, oldest first, up to their share of the cluster (the oldest always).
      let boostRoom = boostShare * cluster.gpuModel.length;
      let oldest = true;
      for (const c of cands.filter((x) => x.boosted).sort((a, b) => a.spec.submitTime - b.spec.submitTime || byPriorityThenFifo(a.spec, b.spec))) {
        if (c.gpus <= boostRoom || oldest) boostRoom -= c.gpus;
        else c.boosted = false;
        oldest = false;
      }
      const byService = (a: Candidate, b: Candidate): number =>
        Number(b.boosted) - Number(a.boosted) || (a.boosted ? a.spec.submitTime - b.spec.submitTime : a.rank - b.rank) || byPriorityThenFifo(a.spec, b.spec);
      const shares = dominantShares(s);
      const tenantShare = (c: Candidate): number => shares.get(c.spec.tenant) ?? 0;
      const priorityFirst = (a: Candidate, b: Candidate): number => b.spec.priority - a.spec.priority;

      const chosen = new Map<string, Pick>();
      const why = new Map<string, { code: PendingReasonCode; message: string }>();
      const reserved = new Map<GpuModel, { job: string; shadow: number }>();
      const free = (m: GpuModel): number => capacity.get(m) ?? 0;

      /**
       * Fastest model first; a running job stays on its model unless a faster one with room
       * gains more over a quantum than the move costs (no ping-pong between equals).
       */
      const modelOrder = (c: Candidate): readonly GpuModel[] => {
        const cur = c.running?.model;
        const need = c.sizes[0] as number;
        if (cur === undefined || free(cur) < need) return c.models;
        const faster = c.models.find((m) => free(m) >= need);
        if (faster === undefined || faster === cur) return c.models;
        const gain = ((c.spec.throughput[faster] ?? 0) - (c.spec.throughput[cur] ?? 0)) / c.best;
        return gain * quantum > c.moveCost + 1e-9 && gain > 0 ? c.models : [cur, ...c.models.filter((m) => m !== cur)];
      };
      const noRoom = new Map<number, { code: PendingReasonCode; message: string }>();
      const refusedNominal = new Map<string, { gpus: number; message: string }>();
      const refusedBorrow = new Map<string, { gpus: number; message: string }>();
      /**
       * The size to run at on `m`, at most `cap` GPUs: as large as quota allows (elastic groups
       * grow). A running job on its own model changes size only when growing gains more over a
       * quantum than the restart costs, or when it must shrink to fit.
       */
      const sizeOn = (c: Candidate, m: GpuModel, cap: number, withinNominal: boolean): number => {
        let size = c.sizes[0] as number;
        for (const next of c.sizes) {
          if (next > cap || ledger.check(c.spec.queue, m, next, withinNominal) !== null) break;
          size = next;
        }
        const held = c.running?.model === m ? c.running.gpus : undefined;
        if (held !== undefined && size > held && ((size - held) / c.gpus) * quantum <= c.moveCost + 1e-9) return held;
        return size;
      };
      const tryPlace = (c: Candidate, withinNominal: boolean): boolean => {
        const need = c.sizes[0] as number;
        let room = false;
        for (const m of c.models) if (free(m) >= need) room = true;
        if (!room) {
          const model = c.models[0];
          const quota = ledger.enforced && model !== undefined ? ledger.check(c.spec.queue, model, need, withinNominal) : null;
          if (quota !== null) {
            why.set(c.spec.id, { code: 'over-quota', message: quota });
            return false;
          }
          // The common case in a long queue: answer without building a message per job.
          let w = noRoom.get(need);
          if (!w) noRoom.set(need, (w = { code: 'waiting-for-resources', message: `needs ${need} GPUs of one model; no model has that many free` }));
          why.set(c.spec.id, w);
          return false;
        }
        let quotaError: string | null = null;
        let blockedBy: string | undefined;
        // Usage only grows within a pass: a queue refused g GPUs is refused any g' ≥ g.
        const refusedAt = (withinNominal ? refusedNominal : refusedBorrow).get(c.spec.queue);
        if (refusedAt && need >= refusedAt.gpus) {
          why.set(c.spec.id, { code: 'over-quota', message: refusedAt.message });
          return false;
        }
        for (const m of modelOrder(c)) {
          if (free(m) < need) continue;
          const q = ledger.check(c.spec.queue, m, need, withinNominal);
          if (q !== null) {
            quotaError ??= q;
            continue;
          }
          // On a model reserved for a starving gang, only what leaves it its GPUs, unless the job ends first.
          const r = reserved.get(m);
          const cap = r && s.now + declaredRunSeconds(c.spec) > r.shadow ? free(m) - (reservedNeed.get(m) ?? 0) : free(m);
          if (cap < need) {
            blockedBy ??= r?.job;
            continue;
          }
          const gpus = sizeOn(c, m, cap, withinNominal);
          chosen.set(c.spec.id, { c, model: m, gpus });
          capacity.set(m, free(m) - gpus);
          ledger.add(c.spec.queue, m, gpus);
          why.delete(c.spec.id);
          return true;
        }
        if (quotaError !== null) {
          why.set(c.spec.id, { code: 'over-quota', message: quotaError });
          const refused = withinNominal ? refusedNominal : refusedBorrow;
          if (c.models.every((m) => free(m) >= need)) refused.set(c.spec.queue, { gpus: Math.min(need, refused.get(c.spec.queue)?.gpus ?? Infinity), message: quotaError });
        }
        else if (blockedBy !== undefined) why.set(c.spec.id, { code: 'reserved-for-another-job', message: `GPUs are held for starving job ${blockedBy}` });
        else why.set(c.spec.id, { code: 'waiting-for-resources', message: `needs ${need} GPUs of ${c.models.join('/')}; free: ${c.models.map((m) => `${m} ${free(m)}`).join(', ')}` });
        return false;
      };
      const reservedNeed = new Map<GpuModel, number>();
      const totals = new Map<GpuModel, number>();
      for (let g = 0; g < cluster.gpuModel.length; g++) {
        const m = cluster.models[cluster.gpuModel[g] as number] as GpuModel;
        totals.set(m, (totals.get(m) ?? 0) + 1);
      }
      const reserve = (c: Candidate): void => {
        if (!c.boosted || c.models.length === 0) return;
        const need = c.sizes[0] as number;
        const m = c.models.find((x) => (totals.get(x) ?? 0) >= need && !reserved.has(x));
        if (m === undefined) return;
        const profile = profileFor(s, placer);
        const shadow = profile.earliest(m, need, declaredRunSeconds(c.spec));
        reserved.set(m, { job: c.spec.id, shadow });
        reservedNeed.set(m, need);
      };

      const first = [...cands].sort((a, b) => priorityFirst(a, b) || byService(a, b));
      for (const c of first) if (!tryPlace(c, true) && c.boosted) reserve(c);
      if (ledger.enforced) {
        const second = first.filter((c) => !chosen.has(c.spec.id)).sort((a, b) => priorityFirst(a, b) || Number(b.boosted) - Number(a.boosted) || tenantShare(a) - tenantShare(b) || byService(a, b));
        for (const c of second) tryPlace(c, false);
      }
      if (replan) swapForSpeed(chosen, cluster.models, quantum);

      // The plan: stop what loses its place or model, start the rest.
      const preemptions: Preemption[] = [];
      for (const c of cands) {
        if (!c.running) continue;
        const pick = chosen.get(c.spec.id);
        if (pick && pick.model === c.running.model && pick.gpus === c.running.gpus) continue;
        const reason = !pick ? 'jobs with less remaining work need its GPUs' : pick.model !== c.running.model ? `moves to ${pick.model}, where it runs faster for the cluster` : `${pick.gpus > c.running.gpus ? 'grows' : 'shrinks'} to ${pick.gpus} GPUs`;
        preemptions.push({ job: c.spec.id, reason });
        placer.releaseRunning(c.running);
      }
      const binds: JobBind[] = [];
      const starts = [...chosen.values()].filter(({ c, model, gpus }) => !c.running || c.running.model !== model || c.running.gpus !== gpus).sort((a, b) => b.gpus - a.gpus || byPriorityThenFifo(a.c.spec, b.c.spec));
      for (const { c, model, gpus } of starts) {
        const r = placer.place(c.spec, model, gpus);
        if (r.ok) binds.push({ job: c.spec.id, model, bindings: r.bindings });
        else {
          chosen.delete(c.spec.id);
          why.set(c.spec.id, { code: r.code, message: r.message });
        }
      }
      const pending: PendingReason[] = [];
      const waiting = [];
      for (const c of cands) {
        if (chosen.has(c.spec.id)) continue;
        const w = why.get(c.spec.id) ?? { code: 'lower-priority' as const, message: 'jobs with less expected remaining work go first' };
        // Out of GPUs because jobs ranked before it took them: that is its priority, not the cluster.
        const code = w.code === 'waiting-for-resources' && !c.boosted && chosen.size > 0 ? 'lower-priority' : w.code;
        pending.push({ job: c.spec.id, code, message: w.message });
        waiting.push({ spec: c.spec, progress: c.progress });
      }
      return { binds, preemptions, pending: withEstimates(s, placer, waiting, pending), wakeAt: nextReplan };
    },
  };
}

/**
 * Exchanges same-size jobs between models while that raises Σ speed ÷ best speed. For each
 * pair of models, the jobs on one that gain most by moving meet, in order, those on the other
 * that gain most by moving back; a pair swaps while its gain over a quantum outweighs what the
 * moves cost (unsaved work, restarts). O(n log n).
 */
export function swapForSpeed(chosen: Map<string, Pick>, models: readonly GpuModel[], quantum: number): void {
  const speed = (c: Candidate, m: GpuModel): number => (c.spec.throughput[m] ?? 0) / c.best;
  const bySize = new Map<number, Pick[]>();
  for (const v of chosen.values()) {
    const list = bySize.get(v.gpus) ?? [];
    list.push(v);
    bySize.set(v.gpus, list);
  }
  for (const list of bySize.values()) {
    for (let i = 0; i < models.length; i++) {
      for (let j = i + 1; j < models.length; j++) {
        const m1 = models[i] as GpuModel;
        const m2 = models[j] as GpuModel;
        const gain = (v: { c: Candidate }, from: GpuModel, to: GpuModel): number => (speed(v.c, to) > 0 ? speed(v.c, to) - speed(v.c, from) : -Infinity);
        const tie = (a: { c: Candidate }, b: { c: Candidate }): number => (a.c.spec.id < b.c.spec.id ? -1 : 1);
        const on1 = list.filter((v) => v.model === m1).sort((a, b) => gain(b, m1, m2) - gain(a, m1, m2) || tie(a, b));
        const on2 = list.filter((v) => v.model === m2).sort((a, b) => gain(b, m2, m1) - gain(a, m2, m1) || tie(a, b));
        for (let k = 0; k < Math.min(on1.length, on2.length); k++) {
          const a = on1[k] as Pick;
          const b = on2[k] as Pick;
          if ((gain(a, m1, m2) + gain(b, m2, m1)) * quantum <= a.c.moveCost + b.c.moveCost + 1e-9) break;
          a.model = m2;
          b.model = m1;
        }
      }
    }
  }
}
