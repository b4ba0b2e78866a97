/**
 * One pass of tide's choosing what runs where: candidates are tried in the caller's order and
 * each gets a model and a size, or a reason. A pass lives for one scheduler cycle (a replan or a
 * fill, tide.ts); it works on GPU counts per model, and the caller places what it chose.
 *
 * - A running job keeps its model and GPUs unless a faster model has room no running job holds
 *   and moving gains more over a quantum than it costs; with `held`, a job takes GPUs no running
 *   job holds before it displaces one.
 * - EASY backfill: a starving job that does not fit reserves a model from its shadow time on;
 *   there only jobs whose declared limit ends first, or that leave it its GPUs, may start.
 * - Quotas (Kueue): `withinNominal` admits only what stays within a queue's nominal quota.
 * - Refusals that depend only on free GPUs and reservations are remembered, so a long queue
 *   of jobs that cannot start costs little.
 */
import type { GpuModel } from '../../model.ts';
import type { ClusterState } from '../../cluster.ts';
import type { AvailabilityProfile } from '../estimates.ts';
import type { JobId, JobProgress, JobSpec } from '../model.ts';
import { declaredRunSeconds, type Placer, profileFor } from '../placer.ts';
import type { QuotaLedger } from '../quota.ts';
import type { PendingReason, PendingReasonCode, RunningJob, SchedulerSnapshot } from '../scheduler.ts';

/**
 * A job as a pass sees it. What rankAt reads is copied in when it is made (a running job's
 * candidate lives as long as its run, a waiting job's as long as its PendingJob), so a replan
 * over thousands of jobs reads one object per job.
 */
export interface Candidate {
  readonly spec: JobSpec;
  readonly running: RunningJob | undefined;
  readonly progress: JobProgress;
  /** GPUs at full size. */
  readonly gpus: number;
  /** GPUs at its smallest size. */
  readonly need: number;
  /** Sizes it can run at, smallest first (one entry unless a group is elastic). */
  readonly sizes: readonly number[];
  /** Models it can run on, fastest first (shared between jobs with the same order). */
  readonly models: readonly GpuModel[];
  readonly best: number;
  readonly priority: number;
  readonly preemptible: boolean;
  readonly submitTime: number;
  /** Its progress when it was made: steps done, seconds run. */
  readonly stepsDone: number;
  readonly runSeconds: number;
  /** Its declared time limit (0: none). */
  readonly limit: number;
  /** Seconds of work lost to a restart. */
  readonly restart: number;
  /** Checkpoint interval in seconds (0: none). */
  readonly interval: number;
  /** A running job's run: its model, when it started, its steps per second, the GPUs it holds, the seconds before steps accrue. */
  readonly runModel: GpuModel | undefined;
  readonly startTime: number;
  readonly runRate: number;
  readonly runGpus: number;
  readonly workDelay: number;
  /** Waited (not run) longer than the starvation limit, and within the share boosted jobs may take. */
  boosted: boolean;
  /**
   * Order key, smaller first: expected remaining GPU-seconds on the best model (attained
   * GPU-seconds when nothing is known), less unsaved work for running jobs.
   */
  rank: number;
  /** Seconds of work a move would cost it now (unsaved work plus its restart cost), times its hysteresis margin. */
  moveCost: number;
  /** A waiting job's reason, kept from the pass that last looked at it. */
  reason: PendingReason | undefined;
  /** The pass that last tried it (so a fill pass knows which reasons to renew). */
  triedIn: number;
  /** Waiting, and has waited longer than the starvation limit (in the starving list). */
  starving: boolean;
  /** Why the pass that last tried it did not choose it. */
  why: Why | undefined;
  /** Where the pass `pickedIn` chose to run it (undefined: not chosen). */
  pick: Pick | undefined;
  pickedIn: number;
  /** The replan that last listed it. */
  listedIn: number;
  /** Its speed on each of `relModels` ÷ its best (swapForSpeed's table, made when first needed). */
  rel: Float64Array | undefined;
  relModels: readonly GpuModel[] | undefined;
  /** A running job's index in tide's list of running candidates. */
  slot: number;
  /** Why no schedulable node could ever run it (null: some could), as of the placer's `fitIn`. */
  unfit: Why | null;
  fitIn: number;
  /** The identical jobs it stands for (PendingJob.count; 1 for a running job). */
  readonly count: number;
  /** Of a folded entry: how many of its jobs the pass `membersIn` chose (its own pick and its members'). */
  members: number;
  membersIn: number;
  /** The pass whose walk passed over the rest of its jobs (a later try in that pass, the borrowing, leaves them as one by one it would not have tried them). */
  passedOverIn: number;
  /** A member of a folded entry (a copy of it, one per job after the first that a pass chooses): the entry. */
  readonly entry: Candidate | undefined;
  /** Which of its entry's jobs it is, from 0 in the order chosen (the entry itself: 0). */
  readonly member: number;
}

/** A job chosen to run: on which model, at how many GPUs. */
export interface Pick {
  readonly c: Candidate;
  model: GpuModel;
  readonly gpus: number;
}

/** `blockedBy`: the job the message names (shown only to its own tenant, scheduler.ts). */
export type Why = { readonly code: PendingReasonCode; readonly message: string; readonly blockedBy?: JobId };
export const LOWER_RANK: Why = { code: 'lower-priority', message: 'jobs with less expected remaining work go first' };
export const NOT_ENOUGH_FREE: Why = { code: 'waiting-for-resources', message: 'no model has enough GPUs free for it' };


export interface PassSetup {
  readonly s: SchedulerSnapshot;
  /** This pass's number (candidates are stamped with it). */
  readonly pass: number;
  /** Free GPUs per model (a replan adds what movable running jobs hold); taken as the pass chooses. */
  readonly capacity: Map<GpuModel, number>;
  readonly ledger: QuotaLedger;
  /** GPUs per model held by running jobs whose turn has not come (sticky placement), if any. */
  readonly held: Map<GpuModel, number> | undefined;
  readonly placer: Placer;
  readonly quantum: number;
}

type Refusal = { readonly gpus: number; readonly message: string };

export class Pass {
  readonly pass: number;
  /** What this pass chose (a pick whose placement failed is taken off its candidate, not out of here). */
  readonly picks: Pick[] = [];
  private readonly s: SchedulerSnapshot;
  private readonly capacity: Map<GpuModel, number>;
  private readonly ledger: QuotaLedger;
  private readonly held: Map<GpuModel, number> | undefined;
  private readonly placer: Placer;
  private readonly quantum: number;
  private readonly enforced: boolean;
  private readonly cluster: ClusterState;
  private readonly reserved = new Map<GpuModel, { job: JobId; shadow: number }>();
  private readonly reservedNeed = new Map<GpuModel, number>();
  private readonly noRoom = new Map<number, Why>();
  private readonly refusedNominal = new Map<string, Refusal>();
  private readonly refusedBorrow = new Map<string, Refusal>();
  private readonly heldFor = new Map<string, Why>();
  /**
   * Refusals of jobs that may run on any model, without quotas: they depend only on the free
   * GPUs and the reservations, so a job needing at least as many GPUs for at least as long is
   * refused too. Forgotten when a job is placed or a model reserved.
   */
  private readonly refused: { need: number; run: number; why: Why }[] = [];
  /** The most GPUs free on one model (only falls: GPUs are only taken in a pass). */
  private most: number;
  /** The most free on one model outside reserved GPUs, and the latest shadow time of a reservation. */
  private mostOutside: number;
  private lastShadow = -Infinity;
  /** Whether a placement or a reservation came since `most`, `mostOutside` and `lastShadow` were computed. */
  private stale = false;
  private profile: AvailabilityProfile | undefined;
  /** What the model walk of the job being tried ran into. */
  private quotaError: string | null = null;
  private blockedBy: JobId | undefined;

  constructor(setup: PassSetup) {
    this.s = setup.s;
    this.pass = setup.pass;
    this.capacity = setup.capacity;
    this.ledger = setup.ledger;
    this.held = setup.held;
    this.placer = setup.placer;
    this.quantum = setup.quantum;
    this.enforced = setup.ledger.enforced;
    this.cluster = setup.placer.cluster;
    this.most = this.mostFreeNow();
    this.mostOutside = this.most;
  }

  chosen(c: Candidate): Pick | undefined {
    return c.pickedIn === this.pass ? c.pick : undefined;
  }

  /** How many of the jobs `c` stands for this pass has not chosen. */
  left(c: Candidate): number {
    if (c.count === 1) return this.chosen(c) ? 0 : 1;
    return c.count - (c.membersIn === this.pass ? c.members : 0);
  }

  /**
   * tryPlace for every job `c` stands for: a folded entry's jobs are tried one after another
   * (each a member, a copy of the entry with a pick of its own) until one must wait, as its
   * identical jobs would be in a walk of one job each. True when all of them were chosen; the
   * entry's `why` says why the rest wait.
   */
  tryPlaceAll(c: Candidate, withinNominal: boolean, passOver = false): boolean {
    if (c.count === 1) return this.tryPlace(c, withinNominal);
    if (c.passedOverIn === this.pass) return false;
    let chosen = c.membersIn === this.pass ? c.members : 0;
    if (chosen === 0) {
      if (!this.tryPlace(c, withinNominal)) return false;
      chosen = 1;
    }
    c.membersIn = this.pass;
    for (; chosen < c.count; chosen++) {
      // `passOver` (a fill's walk): a job that would surely be refused is not tried.
      if (passOver && this.surelyRefused(c)) {
        c.members = chosen;
        c.why = NOT_ENOUGH_FREE;
        c.passedOverIn = this.pass;
        return false;
      }
      const m = memberOf(c, chosen);
      if (!this.tryPlace(m, withinNominal)) {
        c.members = chosen;
        c.why = m.why;
        return false;
      }
    }
    c.members = chosen;
    return true;
  }

  /** A pick of `c` could not be placed after all: the job it was waits again, for `why`. */
  unchoose(c: Candidate, why: Why): void {
    c.pick = undefined;
    c.why = why;
    const e = c.entry ?? c;
    if (e.count > 1 && e.membersIn === this.pass) {
      e.members--;
      e.why = why;
    }
  }

  private free(m: GpuModel): number {
    return this.capacity.get(m) ?? 0;
  }

  /** Free GPUs that no running job still to be placed holds. */
  private unheld(m: GpuModel): number {
    return this.held ? this.free(m) - (this.held.get(m) ?? 0) : this.free(m);
  }

  /**
   * Fastest model first; a running job stays on its model unless a faster one with room
   * gains more over a quantum than the move costs (no ping-pong between equals).
   */
  private modelOrder(c: Candidate): readonly GpuModel[] {
    const cur = c.running?.model;
    const need = c.need;
    if (cur === undefined || this.free(cur) < need) return c.models;
    const faster = c.models.find((m) => this.unheld(m) >= need);
    if (faster === undefined || faster === cur) return c.models;
    return this.movePays(c, cur, faster) ? c.models : [cur, ...c.models.filter((m) => m !== cur)];
  }

  /** Whether moving from `from` to `to` gains more over a quantum than the move costs. */
  private movePays(c: Candidate, from: GpuModel, to: GpuModel): boolean {
    const gain = ((c.spec.throughput[to] ?? 0) - (c.spec.throughput[from] ?? 0)) / c.best;
    return gain * this.quantum > c.moveCost + 1e-9 && gain > 0;
  }

  /** Records that the pass runs `c` on `m` at `gpus`, and takes those GPUs. */
  private choose(c: Candidate, m: GpuModel, gpus: number): void {
    const pick = { c, model: m, gpus };
    this.picks.push(pick);
    this.refused.length = 0;
    c.pick = pick;
    c.pickedIn = this.pass;
    this.capacity.set(m, this.free(m) - gpus);
    this.stale = true;
    if (this.enforced) this.ledger.add(c.spec.queue, m, gpus);
    c.why = undefined;
  }

  /**
   * The size to run at on `m`, at most `cap` GPUs: as large as quota allows (elastic groups
   * grow). A running job on its own model changes size only when growing gains more over a
   * quantum than the restart costs, or when it must shrink to fit.
   */
  private sizeOn(c: Candidate, m: GpuModel, cap: number, withinNominal: boolean): number {
    let size = c.need;
    for (const next of c.sizes) {
      if (next > cap || this.ledger.check(c.spec.queue, m, next, withinNominal) !== null) break;
      size = next;
    }
    const held = c.running?.model === m ? c.running.gpus : undefined;
    if (held !== undefined && size > held && ((size - held) / c.gpus) * this.quantum <= c.moveCost + 1e-9) return held;
    return size;
  }

  private mostFreeNow(): number {
    let most = 0;
    for (const n of this.capacity.values()) most = Math.max(most, n);
    return most;
  }

  /** The most GPUs free on one model. */
  mostFree(): number {
    this.limits();
    return this.most;
  }

  private noRoomFor(need: number): Why {
    let w = this.noRoom.get(need);
    if (!w) this.noRoom.set(need, (w = { code: 'waiting-for-resources', message: `needs ${need} GPUs of one model; no model has that many free` }));
    return w;
  }

  /** Brings `most`, `mostOutside` and `lastShadow` up to date (read them only after this). */
  private limits(): void {
    if (!this.stale) return;
    this.stale = false;
    this.most = this.mostFreeNow();
    this.mostOutside = 0;
    this.lastShadow = -Infinity;
    for (const [m, n] of this.capacity) {
      const r = this.reserved.get(m);
      this.mostOutside = Math.max(this.mostOutside, r ? n - (this.reservedNeed.get(m) ?? 0) : n);
      if (r) this.lastShadow = Math.max(this.lastShadow, r.shadow);
    }
  }

  /**
   * Whether a job would surely be refused, without quotas: it needs more GPUs than any model
   * has free, or more than any has outside the reservations and runs past every shadow time.
   */
  surelyRefused(c: Candidate): boolean {
    this.limits();
    const need = c.need;
    return need > this.most || (need > this.mostOutside && this.s.now + declaredRunSeconds(c.spec) > this.lastShadow);
  }

  /**
   * The common case at a replan, without the general walk: a running job (one size, no quotas,
   * no reservations yet) keeps its model and GPUs unless a faster model has room no running job
   * holds and moving there gains more over a quantum than it costs. False: take the walk.
   */
  private staysPut(c: Candidate, r: RunningJob): boolean {
    const cur = r.model;
    for (const m of c.models) {
      if (m === cur) break;
      if (this.unheld(m) < r.gpus) continue;
      if (this.movePays(c, cur, m)) return false;
      break;
    }
    if (this.unheld(cur) < r.gpus) return false;
    this.choose(c, cur, r.gpus);
    return true;
  }

  /** Why no schedulable node could ever run `c` (feasibility.ts), or null. */
  unfitOf(c: Candidate): Why | null {
    const version = this.placer.fitVersion;
    if (c.fitIn !== version) {
      c.unfit = this.placer.unschedulable(c.spec);
      c.fitIn = version;
    }
    return c.unfit;
  }

  /** Tries to choose a model and size for `c`; false, with its reason set, when it must wait. */
  tryPlace(c: Candidate, withinNominal: boolean): boolean {
    const { held, enforced, reserved, refused, ledger } = this;
    // A running job's GPUs are its own to keep only until its turn.
    if (c.runModel !== undefined && held && c.triedIn !== this.pass) held.set(c.runModel, (held.get(c.runModel) ?? 0) - c.runGpus);
    c.triedIn = this.pass;
    // A job no schedulable node could run takes no GPUs of the pass and reserves nothing.
    if (!c.running) {
      const never = this.unfitOf(c);
      if (never !== null) {
        c.why = never;
        return false;
      }
    }
    const need = c.need;
    if (c.running && held && !enforced && reserved.size === 0 && c.sizes.length === 1 && this.staysPut(c, c.running)) return true;
    // More GPUs than any model has free (the common case far down a long queue).
    this.limits();
    if (need > this.most && !enforced) {
      c.why = this.noRoomFor(need);
      return false;
    }
    // Held for starving jobs on every model with room for it (what the loop below would find).
    if (!enforced && !c.running && this.surelyRefused(c)) {
      const first = c.models.find((m) => this.unheld(m) >= need) ?? c.models.find((m) => this.free(m) >= need);
      const job = first === undefined ? undefined : reserved.get(first)?.job;
      if (job === undefined) c.why = this.noRoomFor(need);
      else {
        let w = this.heldFor.get(job);
        if (!w) this.heldFor.set(job, (w = { code: 'reserved-for-another-job', message: `GPUs are held for starving job ${job}`, blockedBy: job }));
        c.why = w;
      }
      return false;
    }
    const anyModel = !enforced && c.models.length === this.cluster.models.length;
    if (anyModel && refused.length > 0) {
      const run = declaredRunSeconds(c.spec);
      for (const f of refused) {
        if (need >= f.need && run >= f.run) {
          c.why = f.why.code === 'reserved-for-another-job' ? f.why : this.noRoomFor(need);
          return false;
        }
      }
    }
    let room = false;
    for (const m of c.models) if (this.free(m) >= need) room = true;
    if (!room) {
      const model = c.models[0];
      const quota = enforced && model !== undefined ? ledger.check(c.spec.queue, model, need, withinNominal) : null;
      if (quota !== null) {
        c.why = { code: 'over-quota', message: quota };
        return false;
      }
      // The common case in a long queue: answer without building a message per job.
      c.why = this.noRoomFor(need);
      if (anyModel && refused.length < 16) refused.push({ need, run: -Infinity, why: c.why as Why });
      return false;
    }
    this.quotaError = null;
    this.blockedBy = undefined;
    // Usage only grows within a pass: a queue refused g GPUs is refused any g' ≥ g.
    const refusedAt = enforced ? (withinNominal ? this.refusedNominal : this.refusedBorrow).get(c.spec.queue) : undefined;
    if (refusedAt && need >= refusedAt.gpus) {
      c.why = { code: 'over-quota', message: refusedAt.message };
      return false;
    }
    const order = this.modelOrder(c);
    // A job takes GPUs no running job holds when it can, on any of its models, before it
    // displaces one (which would then move to a slower model or stop).
    if (held && this.attempt(c, order, withinNominal, true)) return true;
    if (this.attempt(c, order, withinNominal, false)) return true;
    const quotaError = this.quotaError as string | null;
    if (quotaError !== null) {
      c.why = { code: 'over-quota', message: quotaError };
      const refusedHere = withinNominal ? this.refusedNominal : this.refusedBorrow;
      if (c.models.every((m) => this.free(m) >= need)) refusedHere.set(c.spec.queue, { gpus: Math.min(need, refusedHere.get(c.spec.queue)?.gpus ?? Infinity), message: quotaError });
    } else if (this.blockedBy !== undefined) c.why = { code: 'reserved-for-another-job', message: `GPUs are held for starving job ${this.blockedBy}`, blockedBy: this.blockedBy };
    else c.why = { code: 'waiting-for-resources', message: `needs ${need} GPUs of ${c.models.join('/')}; free: ${c.models.map((m) => `${m} ${this.free(m)}`).join(', ')}` };
    if (anyModel && quotaError === null && refused.length < 16) refused.push({ need, run: declaredRunSeconds(c.spec), why: c.why as Why });
    return false;
  }

  /**
   * Chooses the first model in `order` where the job's GPUs are free (`unheldOnly`: free and held
   * by no running job still to come), within quota and reservations; notes what stood in the way.
   */
  private attempt(c: Candidate, order: readonly GpuModel[], withinNominal: boolean, unheldOnly: boolean): boolean {
    const need = c.need;
    for (const m of order) {
      const avail = unheldOnly ? this.unheld(m) : this.free(m);
      if (avail < need) continue;
      const q = this.ledger.check(c.spec.queue, m, need, withinNominal);
      if (q !== null) {
        this.quotaError ??= q;
        continue;
      }
      // On a model reserved for a starving gang, only what leaves it its GPUs, unless the job ends first.
      const r = this.reserved.get(m);
      const cap = r && this.s.now + declaredRunSeconds(c.spec) > r.shadow ? avail - (this.reservedNeed.get(m) ?? 0) : avail;
      if (cap < need) {
        this.blockedBy ??= r?.job;
        continue;
      }
      this.choose(c, m, this.sizeOn(c, m, cap, withinNominal));
      return true;
    }
    return false;
  }

  /** EASY backfill: a starving job that does not fit holds a model from its shadow time on. */
  reserve(c: Candidate): void {
    // Not for a job its queue's quota holds back: GPUs would sit idle for a job that may not use them.
    if (!c.boosted || c.models.length === 0 || c.why?.code === 'over-quota' || c.why?.code === 'unschedulable') return;
    const need = c.need;
    const totals = gpusPerModel(this.cluster);
    const m = c.models.find((x) => (totals.get(x) ?? 0) >= need && !this.reserved.has(x));
    if (m === undefined) return;
    const shadow = (this.profile ??= profileFor(this.s, this.placer)).earliest(m, need, declaredRunSeconds(c.spec));
    this.reserved.set(m, { job: c.spec.id, shadow });
    this.reservedNeed.set(m, need);
    this.refused.length = 0;
    this.stale = true;
  }

  allReserved(): boolean {
    return this.reserved.size >= this.cluster.models.length;
  }

  /** The reason a job that was tried and not chosen waits (a folded entry: its jobs not chosen), as a PendingReason (the kept one when unchanged). */
  reasonOf(c: Candidate, keepEstimate: boolean): PendingReason {
    const w = (c.triedIn === this.pass ? c.why : undefined) ?? LOWER_RANK;
    // Out of GPUs because jobs ranked before it took them: that is its priority, not the cluster.
    const code = w.code === 'waiting-for-resources' && !c.boosted && this.picks.length > 0 ? 'lower-priority' : w.code;
    const kept = c.reason;
    if (kept && kept.code === code && kept.message === w.message && (keepEstimate || kept.estimatedStart === undefined)) return kept;
    const r: PendingReason = w.blockedBy === undefined ? { job: c.spec.id, code, message: w.message } : { job: c.spec.id, code, message: w.message, blockedBy: w.blockedBy };
    return keepEstimate && kept?.estimatedStart !== undefined ? { ...r, estimatedStart: kept.estimatedStart } : r;
  }
}

/** Job `member` of the folded entry `c`: a copy that a pass may choose on its own. */
function memberOf(c: Candidate, member: number): Candidate {
  return { ...c, entry: c, member, count: 1, why: undefined, reason: undefined, triedIn: -1, pick: undefined, pickedIn: -1, rel: undefined, relModels: undefined, members: 0, membersIn: -1, passedOverIn: -1 };
}

const modelTotals = new WeakMap<ClusterState, Map<GpuModel, number>>();
/** GPUs per model in the cluster (nodes may be down: these are what a reservation can wait for). */
function gpusPerModel(cluster: ClusterState): ReadonlyMap<GpuModel, number> {
  let totals = modelTotals.get(cluster);
  if (!totals) {
    totals = new Map();
    for (let g = 0; g < cluster.gpuModel.length; g++) {
      const m = cluster.models[cluster.gpuModel[g] as number] as GpuModel;
      totals.set(m, (totals.get(m) ?? 0) + 1);
    }
    modelTotals.set(cluster, totals);
  }
  return totals;
}
