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
 * - Preemption has a price (preemptionCost.ts): the restart plus the work since the last
 *   checkpoint. A running job's rank is credited that price, and divided by `preemptMargin`,
 *   so a waiting job displaces it only when its expected remaining work is smaller by more than
 *   the price (with hysteresis); a move to a faster model must gain `preemptMargin` times its
 *   price over a quantum. The margin grows by `preemptGrowth` with each preemption the job
 *   has taken. A job is never preempted before it has run `minRunSeconds` in its
 *   attempt, nor once it has been preempted `maxPreemptions` times (its own budget first;
 *   `freeMaxPreemptions` when a preemption costs it nothing), nor
 *   when not preemptible.
 * - Preemption only every `quantumSeconds`. That replan also re-ranks every job and refreshes reasons and estimated
 *   starts. Between replans an arrival or a completion only fills free GPUs, walking the
 *   waiting jobs in the kept order (arrivals ranked in, starving jobs merged in front) and
 *   passing over jobs larger than any model's free GPUs; a job not looked at keeps its last
 *   reason and estimate, as Slurm's do between backfill cycles. So a cycle between replans
 *   costs what changed, not the length of the queue.
 */
import type { GpuModel } from '../../model.ts';
import { ascending, jobGpus, jobSizes, type JobProgress, type JobSpec } from '../model.ts';
import { PendingTable, SortedList } from '../pendingTable.ts';
import { byPriorityThenFifo, ledgerFor, Placer } from '../placer.ts';
import { dominantShares } from '../fairShare.ts';
import { QuotaLedger } from '../quota.ts';
import { RuntimeHistory } from '../runtimeHistory.ts';
import type { JobBind, JobScheduler, JobSchedulerContext, PendingJob, PendingReason, Preemption, RunningJob, SchedulePlan, SchedulerSnapshot } from '../scheduler.ts';
import { addEstimates, ESTIMATE_LIMIT } from './fifo.ts';
import { mayPreempt, preemptionSettings, restartSecondsOf, unsavedSeconds } from '../preemptionCost.ts';
import { NOT_ENOUGH_FREE, Pass, type Candidate, type Pick } from './tidePass.ts';

export const TIDE_DEFAULTS = {
  quantumSeconds: 360,
  starvationSeconds: 24 * 3600,
  /** A job runs this long in its attempt before it may be preempted. */
  minRunSeconds: 0,
  /**
   * Preemptions a job may take when it declares no budget (Infinity: unlimited). Moves to
   * another model and resizes count; past its budget a job keeps its GPUs until it ends.
   * On Philly (60 s restarts, 30-min checkpoints) a budget of 20 left the p99 job at 20: more
   * than a percent of jobs spent it all. 5 bounds every job at 5 (p99 ≤ 5, the aim);
   * Gavel multi-GPU 2.4 jobs/h, seed 0, with the same costs: 30.7 h against 29.1 h with 20
   * (docs/results.md, "Preemption with a price"). A cluster that wants more sets its own.
   */
  maxPreemptions: 5,
  /**
   * The default budget of a job whose preemptions cost it nothing (no restart cost and progress
   * saved continuously, as in Gavel's protocol): only the churn is bounded, at the issue's
   * maximum of 20. Budget 5 there left long jobs holding GPUs they could have yielded for free:
   * Gavel single-GPU 6.0 jobs/h 61.3 h (budget 5) against 32.2 h (budget 20), the gavel port 42.8 h
   * (docs/results.md). An explicit `maxPreemptions` option applies to every job.
   */
  freeMaxPreemptions: 20,
  /** Restart cost of a job that declares none (seconds). */
  restartSeconds: 0,
  /**
   * Hysteresis: a waiting job displaces a running one only when its rank is below the running
   * one's (less its preemption price) ÷ this; a model move must gain this many times its price.
   */
  preemptMargin: 1,
  /**
   * The margin grows by this factor with every preemption the job has taken: a job stopped k
   * times is displaced only by jobs with less than 1/(margin·growth^k) of its remaining work,
   * and moves only for margin·growth^k times the price. Spreads preemptions over jobs instead of
   * stopping the same long job again and again.
   */
  preemptGrowth: 2,
  /** Fraction of the GPUs that starving jobs may claim ahead of the least-attained order. */
  boostShare: 1 / 3,
  /**
   * 1: order by expected remaining GPU-seconds (declared limits, corrected by how much finished
   * jobs over-declared) instead of attained service; a job past its estimate counts a quarter
   * of what it has done as still to go (the longer it ran, the longer it is likely to run).
   */
  estimate: 1,
  /** 1: a job that is not running takes GPUs no running job holds before it displaces one. */
  sticky: 1,
  /**
   * The least expected remaining time (seconds) a job is ranked by: below it, estimates are
   * too rough to tell jobs apart and they go by size and submission order.
   */
  estimateFloorSeconds: 60,
};

export function tide(ctx: JobSchedulerContext): JobScheduler {
  const opt = (k: keyof typeof TIDE_DEFAULTS): number => Number(ctx.options?.[k] ?? TIDE_DEFAULTS[k]);
  const quantum = opt('quantumSeconds');
  const starvation = opt('starvationSeconds');
  const limits = preemptionSettings(ctx.options, { restartSeconds: TIDE_DEFAULTS.restartSeconds, minRunSeconds: TIDE_DEFAULTS.minRunSeconds, maxPreemptions: TIDE_DEFAULTS.maxPreemptions });
  const freeLimits = ctx.options?.['maxPreemptions'] !== undefined ? limits : { ...limits, maxPreemptions: opt('freeMaxPreemptions') };
  /** The limits a running job's preemption is judged by: a preemption that costs it nothing has the larger budget. */
  const limitsOf = (c: Candidate) => (c.restart > 0 || c.interval > 0 ? limits : freeLimits);
  const margin = opt('preemptMargin');
  if (!(margin >= 1)) throw new Error(`scheduler option preemptMargin: must be a number ≥ 1, got ${String(ctx.options?.['preemptMargin'])}`);
  const growth = opt('preemptGrowth');
  if (!(growth >= 1)) throw new Error(`scheduler option preemptGrowth: must be a number ≥ 1, got ${String(ctx.options?.['preemptGrowth'])}`);
  const boostShare = opt('boostShare');
  const useEstimates = opt('estimate') > 0;
  const sticky = opt('sticky') > 0;
  const estimateFloor = opt('estimateFloorSeconds');
  const history = new RuntimeHistory();
  const bestOf = (spec: JobSpec): number => statics.get(spec)?.best ?? Math.max(1e-12, ...Object.values(spec.throughput));
  const placer = new Placer(ctx.rng, ctx.placement);
  let nextReplan = -Infinity;
  let passes = 0;
  /** Waiting jobs that need no GPU at their smallest size. */
  let cpuOnlyWaiting = 0;
  let replans = 0;
  /** The last replan's candidates in pass order. */
  let lastOrder: Candidate[] = [];
  /** Running jobs' candidates, made when the run begins and re-ranked at each replan while it lasts. */
  const runningCands = new WeakMap<RunningJob, Candidate>();
  /** The same candidates in a list (in no order: a replan sorts); a candidate's `slot` is its index. */
  const runningList: Candidate[] = [];
  /** Brings the running candidates to the runs the placer found ended and begun. */
  function trackRunning(s: SchedulerSnapshot): void {
    const { started, stopped, rebuilt } = placer.runChanges;
    if (rebuilt) runningList.length = 0;
    for (const r of stopped) {
      const c = runningCands.get(r);
      if (!c) continue;
      // The last candidate takes its place.
      const last = runningList.pop() as Candidate;
      if (last !== c) {
        last.slot = c.slot;
        runningList[c.slot] = last;
      }
      runningCands.delete(r);
    }
    for (const r of started) {
      const c = candidate(r.spec, r.progress, r, s, 1);
      c.slot = runningList.length;
      runningCands.set(r, c);
      runningList.push(c);
    }
  }
  /** What never changes about a job: its size and its models, fastest first. */
  const statics = new WeakMap<JobSpec, { gpus: number; sizes: readonly number[]; models: readonly GpuModel[]; best: number }>();
  /** One array per distinct model order and per distinct list of sizes. */
  const shared = new Map<string, readonly (GpuModel | number)[]>();
  const intern = <T extends GpuModel | number>(list: readonly T[]): readonly T[] => {
    const key = list.join('\u0000');
    const known = shared.get(key) as readonly T[] | undefined;
    if (known) return known;
    shared.set(key, list);
    return list;
  };
  /** The snapshot being planned (read by the waiting table when a job arrives). */
  let current: SchedulerSnapshot | undefined;

  /** (Re)computes a job's order keys at `s.now`. */
  function rankAt(c: Candidate, s: SchedulerSnapshot): void {
    const { running, gpus, best } = c;
    let steps = c.stepsDone;
    let ranNow = 0;
    // What stopping it now would cost, in seconds of its running: restart plus unsaved work.
    let price = 0;
    if (running) {
      ranNow = s.now - c.startTime;
      steps += c.runRate * Math.max(0, ranNow - c.workDelay);
      price = c.restart + (c.interval > 0 ? unsavedSeconds(c.spec, c.progress, running, s.now, limits) : 0);
    }
    const waited = s.now - c.submitTime - (c.runSeconds + ranNow);
    // Hysteresis for this job: the more often it was stopped, the more a stop must gain.
    const hold = margin * growth ** c.progress.preemptions;
    c.moveCost = price * hold;
    const done = steps / best;
    let base = gpus * done;
    if (useEstimates) {
      const expected = c.limit > 0 ? history.fromLimit(c.limit) : history.expectedSeconds(c.spec);
      if (expected !== undefined) base = gpus * Math.max(expected - done, 0.25 * done, estimateFloor);
    }
    c.rank = running ? base / hold - price * c.runGpus : base;
    c.boosted = waited > starvation;
  }

  function candidate(spec: JobSpec, progress: JobProgress, running: RunningJob | undefined, s: SchedulerSnapshot, count: number): Candidate {
    let st = statics.get(spec);
    if (!st) {
      const models = placer.modelsFor(spec).sort((a, b) => (spec.throughput[b] ?? 0) - (spec.throughput[a] ?? 0));
      st = { gpus: jobGpus(spec), sizes: intern(jobSizes(spec)), models: intern(models), best: Math.max(1e-12, ...models.map((m) => spec.throughput[m] ?? 0)) };
      statics.set(spec, st);
    }
    const { gpus, sizes, models, best } = st;
    const restart = restartSecondsOf(spec, limits);
    const limit = spec.timeLimitSeconds;
    const c: Candidate = {
      spec,
      running,
      progress,
      gpus,
      need: sizes[0] as number,
      sizes,
      models,
      best,
      priority: spec.priority,
      preemptible: spec.preemptible,
      submitTime: spec.submitTime,
      stepsDone: progress.stepsDone,
      runSeconds: progress.runSeconds,
      limit: limit !== undefined && limit > 0 ? limit : 0,
      restart,
      interval: spec.checkpointIntervalSeconds ?? 0,
      runModel: running?.model,
      startTime: running?.startTime ?? 0,
      runRate: running ? ((spec.throughput[running.model] ?? 0) * running.gpus) / Math.max(1, gpus) : 0,
      runGpus: running?.gpus ?? 0,
      workDelay: running && progress.preemptions > 0 ? restart : 0,
      boosted: false,
      rank: 0,
      moveCost: 0,
      reason: undefined,
      triedIn: -1,
      starving: false,
      why: undefined,
      pick: undefined,
      pickedIn: -1,
      listedIn: -1,
      rel: undefined,
      relModels: undefined,
      slot: -1,
      unfit: null,
      fitIn: -1,
      count,
      members: 0,
      membersIn: -1,
      passedOverIn: -1,
      entry: undefined,
      member: 0,
    };
    rankAt(c, s);
    return c;
  }

  /**
   * Waiting jobs live as long as their PendingJob object; one that comes between replans (an
   * arrival, a preempted job) is ranked when it comes; one already starving joins the starving
   * list at once.
   */
  const waiting = new PendingTable<Candidate>((p) => candidate(p.spec, p.progress, undefined, current as SchedulerSnapshot, p.count ?? 1));
  /** A running job keeps its place against a waiting one of equal rank: a stop that gains nothing still costs a restart. */
  const passOrder = (a: Candidate, b: Candidate): number =>
    b.priority - a.priority ||
    Number(b.boosted) - Number(a.boosted) ||
    (a.boosted ? ascending(a.submitTime, b.submitTime) : ascending(a.rank, b.rank) || Number(b.running !== undefined) - Number(a.running !== undefined)) ||
    byPriorityThenFifo(a.spec, b.spec);
  /** Waiting jobs by priority, then rank (the pass order without starvation), kept between replans. */
  const byRank = new SortedList<Candidate>((a, b) => b.priority - a.priority || ascending(a.rank, b.rank) || byPriorityThenFifo(a.spec, b.spec));
  /** When a waiting job starts starving: it has then waited (not run) `starvation` seconds. */
  const starvesAt = (c: Candidate): number => c.submitTime + c.runSeconds + starvation;
  /** Waiting jobs not starving yet, by when they will. */
  const notYetStarving = new SortedList<Candidate>((a, b) => ascending(starvesAt(a), starvesAt(b)) || byPriorityThenFifo(a.spec, b.spec));
  /** Starving waiting jobs, oldest first (the order their boost is granted in). */
  const starving = new SortedList<Candidate>((a, b) => byPriorityThenFifo(a.spec, b.spec));
  /** Brings the two lists to the waiting jobs at `now`. */
  function trackStarving(now: number, added: readonly Candidate[], removed: readonly Candidate[]): void {
    notYetStarving.apply(added.filter((c) => now <= starvesAt(c)), removed.filter((c) => !c.starving));
    starving.apply([], removed.filter((c) => c.starving));
    const began: Candidate[] = added.filter((c) => now > starvesAt(c));
    began.push(...notYetStarving.takeWhile((c) => now > starvesAt(c)));
    for (const c of began) c.starving = true;
    starving.apply(began, []);
  }

  /**
   * Marks the starving jobs `oldestFirst` boosted, in that order, while they hold no more than
   * `boostShare` of the GPUs (the oldest always), and the rest not; returns the boosted ones.
   * A job no schedulable node could run is not boosted.
   */
  function capBoosts(oldestFirst: readonly Candidate[]): Candidate[] {
    let room = boostShare * placer.cluster.gpuModel.length;
    const boosted: Candidate[] = [];
    for (const c of oldestFirst) {
      // A job no schedulable node could run takes no share from those that could start.
      c.boosted = (c.gpus <= room || boosted.length === 0) && placer.unschedulable(c.spec) === null;
      if (c.boosted) {
        // A folded entry's jobs are boosted together (its first within the share, or the oldest).
        room -= c.gpus * c.count;
        boosted.push(c);
      }
    }
    return boosted;
  }

  /** The binds for what a pass chose that is not already running so (largest first); failures get a reason. */
  function startChosen(p: Pass): JobBind[] {
    const binds: JobBind[] = [];
    const starts = p.picks.filter(({ c, model, gpus }) => !c.running || c.running.model !== model || c.running.gpus !== gpus).sort((a, b) => b.gpus - a.gpus || byPriorityThenFifo(a.c.spec, b.c.spec));
    for (const { c, model, gpus } of starts) {
      const r = placer.place(c.spec, model, gpus);
      if (r.ok) binds.push(c.entry || c.count > 1 ? { job: c.spec.id, model, bindings: r.bindings, member: c.member } : { job: c.spec.id, model, bindings: r.bindings });
      else p.unchoose(c, { code: r.code, message: r.message });
    }
    return binds;
  }

  /** The borrowing pass (Kueue cohorts): jobs the nominal pass left, smallest dominant share first. */
  function borrow(s: SchedulerSnapshot, p: Pass, left: readonly Candidate[]): void {
    const shares = dominantShares(s);
    const tenantShare = (c: Candidate): number => shares.get(c.spec.tenant) ?? 0;
    const second = left.filter((c) => p.left(c) > 0).sort((a, b) => b.priority - a.priority || Number(b.boosted) - Number(a.boosted) || ascending(tenantShare(a), tenantShare(b)) || passOrder(a, b));
    for (const c of second) p.tryPlaceAll(c, false);
  }

  /** Free GPUs per model now (a replan adds what movable running jobs hold). */
  function capacityNow(): Map<GpuModel, number> {
    const capacity = new Map<GpuModel, number>();
    for (const m of placer.cluster.models) capacity.set(m, placer.freeGpus(m));
    return capacity;
  }

  /**
   * A replan: every waiting job and every movable running job is ranked afresh and the
   * cluster is laid out again; preemptions, model moves and resizes happen only here.
   */
  function replan(s: SchedulerSnapshot): SchedulePlan {
    const cluster = placer.cluster;
    const capacity = capacityNow();
    const ledger = new QuotaLedger(s.queues);
    const held = new Map<GpuModel, number>();
    const listing = ++replans;
    const fresh: Candidate[] = [];
    const list = (c: Candidate): void => {
      if (c.listedIn !== listing - 1) fresh.push(c);
      c.listedIn = listing;
    };
    for (const c of runningList) {
      const model = c.runModel as GpuModel;
      if (mayPreempt(c.spec, c.progress, c.running as RunningJob, s.now, limitsOf(c))) {
        rankAt(c, s);
        list(c);
        capacity.set(model, (capacity.get(model) ?? 0) + c.runGpus);
        held.set(model, (held.get(model) ?? 0) + c.runGpus);
      } else ledger.add(c.spec.queue, model, c.runGpus);
    }
    for (const c of waiting.records) {
      rankAt(c, s);
      list(c);
    }
    // The last replan's order, less what left, then the newcomers: ranks move little between
    // replans, so the sort (a merge sort of runs) has little left to do.
    const cands = lastOrder.filter((c) => c.listedIn === listing);
    cands.push(...fresh);
    // Starving jobs go first, oldest first, up to their share of the cluster (the oldest always).
    capBoosts(cands.filter((x) => x.boosted).sort((a, b) => byPriorityThenFifo(a.spec, b.spec)));
    const first = cands.sort(passOrder);
    lastOrder = first;
    const p = new Pass({ s, pass: ++passes, capacity, ledger, held: sticky ? held : undefined, placer, quantum });
    for (const c of first) if (!p.tryPlaceAll(c, true) && c.boosted) p.reserve(c);
    if (ledger.enforced) borrow(s, p, first);
    swapForSpeed(p.picks, cluster.models, quantum);

    // The plan: stop what loses its place or model, start the rest.
    const preemptions: Preemption[] = [];
    const moved: Candidate[] = [];
    for (const c of first) {
      if (!c.running) continue;
      const pick = p.chosen(c);
      if (pick && pick.model === c.running.model && pick.gpus === c.running.gpus) continue;
      const reason = !pick ? 'jobs with less remaining work need its GPUs' : pick.model !== c.running.model ? `moves to ${pick.model}, where it runs faster for the cluster` : `${pick.gpus > c.running.gpus ? 'grows' : 'shrinks'} to ${pick.gpus} GPUs`;
      preemptions.push({ job: c.spec.id, reason });
      placer.releaseRunning(c.running);
      moved.push(c);
    }
    const binds = startChosen(p);
    // Stopped, and not started again elsewhere (a move whose placement failed included).
    const stopped = moved.filter((c) => !p.chosen(c));
    // Reasons in job id order (as the pending list), then the stopped jobs'; estimates for the first waiting in pass order.
    const listed: Candidate[] = [];
    for (const c of waiting.records) if (p.left(c) > 0) listed.push(c);
    listed.push(...stopped);
    const pending = listed.map((c) => p.reasonOf(c, false));
    const ahead: PendingJob[] = [];
    for (const c of first) {
      if (ahead.length >= ESTIMATE_LIMIT) break;
      if (p.left(c) > 0 && c.why?.code !== 'unschedulable') ahead.push({ spec: c.spec, progress: c.progress });
    }
    addEstimates(s, placer, ahead, pending);
    for (let i = 0; i < listed.length; i++) (listed[i] as Candidate).reason = pending[i];
    byRank.reset(first.filter((c) => !c.running).sort(byRank.compare));
    return { binds, preemptions, pending, wakeAt: nextReplan };
  }

  /**
   * Between replans an arrival or a completion only fills free GPUs: waiting jobs are tried in
   * the order of the last replan (arrivals ranked in, starving jobs first), passing over those
   * that would surely be refused. A job not tried keeps its last reason and estimate (like
   * Slurm's reasons between backfill cycles).
   */
  function fill(s: SchedulerSnapshot): SchedulePlan {
    const ledger = ledgerFor(s);
    const p = new Pass({ s, pass: ++passes, capacity: capacityNow(), ledger, held: undefined, placer, quantum });
    const tried: Candidate[] = [];
    // The starving jobs within their share first (as the replan orders them), merged into the rank order.
    const boosted = capBoosts(starving.items);
    const ranked = byRank.items;
    let i = 0;
    let j = 0;
    // Jobs that would surely be refused are passed over (they keep their reasons); with no GPU
    // free at all, that is every job that needs one.
    for (;;) {
      if (p.mostFree() === 0 && cpuOnlyWaiting === 0) j = ranked.length;
      while (j < ranked.length && ((ranked[j] as Candidate).boosted || p.surelyRefused(ranked[j] as Candidate))) j++;
      // Likewise starving jobs too large for any model, once every model is held for one.
      while (i < boosted.length && (boosted[i] as Candidate).need > p.mostFree() && p.allReserved()) i++;
      const b = boosted[i];
      const r = ranked[j];
      const c = b !== undefined && (r === undefined || passOrder(b, r) < 0) ? b : r;
      if (c === undefined) break;
      if (c === b) i++;
      else j++;
      tried.push(c);
      if (!p.tryPlaceAll(c, true, true) && c.boosted) p.reserve(c);
    }
    if (ledger.enforced) borrow(s, p, tried);
    const binds = startChosen(p);
    const pending: PendingReason[] = [];
    for (const c of waiting.records) {
      if (p.left(c) === 0) continue;
      if (c.triedIn === p.pass || c.reason === undefined) {
        // An arrival the walk passed over: no model had enough GPUs free for it.
        if (c.triedIn !== p.pass) {
          c.triedIn = p.pass;
          c.why = p.unfitOf(c) ?? NOT_ENOUGH_FREE;
        }
        c.reason = p.reasonOf(c, true);
      }
      pending.push(c.reason);
    }
    return { binds, preemptions: [], pending, wakeAt: nextReplan };
  }

  return {
    name: 'tide',
    folds: true,
    cycle(s: SchedulerSnapshot): SchedulePlan {
      placer.begin(s);
      trackRunning(s);
      if (useEstimates && s.finished) history.learn(s.finished, bestOf);
      current = s;
      const { added, removed } = waiting.update(s.pending);
      current = undefined;
      trackStarving(s.now, added, removed);
      for (const c of added) if (c.need === 0) cpuOnlyWaiting++;
      for (const c of removed) if (c.need === 0) cpuOnlyWaiting--;
      if (s.now >= nextReplan) {
        nextReplan = s.now + quantum;
        return replan(s);
      }
      byRank.apply(added, removed);
      return fill(s);
    },
  };
}

/**
 * Exchanges same-size jobs between models while that raises Σ speed ÷ best speed. For each
 * pair of models, the jobs on one that gain most by moving meet, in order, those on the other
 * that gain most by moving back; a pair swaps while its gain over a quantum outweighs what the
 * moves cost (unsaved work, restarts). O(n log n).
 */
export function swapForSpeed(chosen: readonly Pick[], models: readonly GpuModel[], quantum: number): void {
  /** Speeds ÷ best speed, by index in `models`. */
  const relOf = (c: Candidate): Float64Array => {
    if (c.rel && c.relModels === models) return c.rel;
    c.relModels = models;
    return (c.rel = Float64Array.from(models, (m) => (c.spec.throughput[m] ?? 0) / c.best));
  };
  /** Seconds of work a running job loses if it ends up on `m` (none if it stays where it runs). */
  const cost = (v: Pick, m: GpuModel): number => (v.c.running && (v.c.running.model !== m || v.c.running.gpus !== v.gpus) ? v.c.moveCost : 0);
  /** What `v` gains over a quantum by moving from models[from] to models[to] (seconds of work on its best model). */
  const gainOf = (v: Pick, from: number, to: number): number => {
    const rel = relOf(v.c);
    const speedTo = rel[to] as number;
    return speedTo > 0 ? (speedTo - (rel[from] as number)) * quantum - cost(v, models[to] as GpuModel) + cost(v, models[from] as GpuModel) : -Infinity;
  };
  /**
   * The picks on `from` whose gain by moving to `to` could still make a pair pay with the best
   * gain the other way (`otherBest`), most first: a longer list would only be walked past where
   * the pairing stops, so the swaps are the same as over all picks.
   */
  const movers = (on: readonly Pick[], gains: Float64Array, otherBest: number): { v: Pick; gain: number }[] => {
    const out: { v: Pick; gain: number }[] = [];
    for (let k = 0; k < on.length; k++) if ((gains[k] as number) + otherBest > 1e-9) out.push({ v: on[k] as Pick, gain: gains[k] as number });
    return out.sort((a, b) => ascending(b.gain, a.gain) || (a.v.c.spec.id < b.v.c.spec.id ? -1 : 1));
  };
  const gainsOf = (on: readonly Pick[], from: number, to: number): { gains: Float64Array; best: number } => {
    const gains = new Float64Array(on.length);
    let best = -Infinity;
    for (let k = 0; k < on.length; k++) best = Math.max(best, (gains[k] = gainOf(on[k] as Pick, from, to)));
    return { gains, best };
  };
  // Picks by size, then by model.
  const groups = new Map<number, Map<GpuModel, Pick[]>>();
  for (const v of chosen) {
    if (v.c.pick !== v) continue;
    let bySize = groups.get(v.gpus);
    if (!bySize) groups.set(v.gpus, (bySize = new Map()));
    const on = bySize.get(v.model);
    if (on) on.push(v);
    else bySize.set(v.model, [v]);
  }
  for (const bySize of groups.values()) {
    for (let i = 0; i < models.length; i++) {
      for (let j = i + 1; j < models.length; j++) {
        const m1 = models[i] as GpuModel;
        const m2 = models[j] as GpuModel;
        const before1 = bySize.get(m1) ?? [];
        const before2 = bySize.get(m2) ?? [];
        if (before1.length === 0 || before2.length === 0) continue;
        const g1 = gainsOf(before1, i, j);
        const g2 = gainsOf(before2, j, i);
        if (g1.best + g2.best <= 1e-9) continue;
        const on1 = movers(before1, g1.gains, g2.best);
        const on2 = movers(before2, g2.gains, g1.best);
        let swaps = 0;
        for (let k = 0; k < Math.min(on1.length, on2.length); k++) {
          const a = on1[k] as { v: Pick; gain: number };
          const b = on2[k] as { v: Pick; gain: number };
          if (a.gain + b.gain <= 1e-9) break;
          a.v.model = m2;
          b.v.model = m1;
          swaps++;
        }
        if (swaps > 0) {
          const both = [...before1, ...before2];
          bySize.set(m1, both.filter((v) => v.model === m1));
          bySize.set(m2, both.filter((v) => v.model === m2));
        }
      }
    }
  }
}
