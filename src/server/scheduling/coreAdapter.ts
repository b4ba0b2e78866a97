/**
 * Runs the jobs core (src/core/scheduling: the same schedulers the simulator runs) on the store's
 * state: translates a StoreSnapshot into the core's SchedulerSnapshot (seconds, node indices,
 * per-group replica bindings) and the core's SchedulePlan back into store terms. Objects for
 * unchanged nodes, running jobs and pending jobs are reused between cycles, which the core's
 * incremental paths (ClusterView, tide's waiting table) rely on to make a cycle cost O(changes).
 *
 * The core gets what the simulator gives it, from the store: declared time limits and job types,
 * speeds per GPU model (gpuSpeeds.ts), progress and checkpoints, tenants with weights and
 * decayed usage, finished jobs and recent submissions' task shapes (liveInputs.ts).
 *
 * Work live is counted in seconds on a GPU of speed 1 (an H100): a job's throughput on a model
 * is its speed there, so steps done = seconds run × speed. A job's own step count (its progress
 * reports) only says what share of that work is saved. `totalSteps` is the job's own reported
 * total when it gave one, else Infinity: unknown (no policy but `oracle` reads it).
 */
import { nodeId, type GpuModel, type NodeSpec, type Placement } from '../../core/model.ts';
import { Rng } from '../../core/rng.ts';
import { boundGpus, byJobId, CPU_MODEL, indexById, jobGpus, jobId, type JobSpec as CoreJob, type QueueConfig as CoreQueue, type TaskBinding } from '../../core/scheduling/model.ts';
import { getJobScheduler, jobSchedulerNames } from '../../core/scheduling/policies/index.ts';
import type { FinishedJob, JobScheduler, NodeState, PendingJob, PendingReason, RunningJob, SchedulerSnapshot } from '../../core/scheduling/scheduler.ts';
import type { JobProgress } from '../../core/scheduling/model.ts';
import { anonymousMessage } from '../../core/scheduling/reasons.ts';
import type { Job } from '../../api/types.ts';
import { openJobsById, startedJobs } from '../../store/openJobIndex.ts';
import type { ActiveTask, AppliedPlan, FinishedRun, QueueConfig, StoreSnapshot } from '../../store/store.ts';
import { gpuSpeed } from './gpuSpeeds.ts';
import { LiveInputs, type LiveInputsConfig, type LiveSource } from './liveInputs.ts';
import { UserError } from '../../util/errors.ts';
import { reasonChanged } from './changedReasons.ts';
import type { LpSolver } from '../../core/lp.ts';
import { highsSolver } from '../../lp/highsSolver.ts';
import { borrowedRuns, withLending } from '../../core/scheduling/lending.ts';
import { preemptionSettings } from '../../core/scheduling/preemptionCost.ts';
import { gpuPower } from '../../core/energy/powerModel.ts';
import { CONSOLIDATE_DEFAULTS } from '../../core/scheduling/stages/consolidate.ts';
import { withEnergyStages, type EnergyStageSettings } from '../../core/scheduling/stages/energyStages.ts';
import type { EnergyPlan, PowerCappedBind } from '../../core/scheduling/stages/stage.ts';
import { ArrivalQueue } from './arrivalQueue.ts';
import { PendingFolds, PendingUnits, type FoldablePending } from './pendingFolds.ts';

/** The open jobs new or changed since the list of the adapter's last cycle, and the ids of those gone. */
export interface OpenJobChanges {
  readonly upserts: readonly Job[];
  readonly removed: readonly string[];
}

/** Policy-specific options passed to the core scheduler (e.g. tide's quantumSeconds). */
export type SchedulerOptions = Readonly<Record<string, number | string | boolean>>;

/** Parses repeated `key=value` flags; numbers and booleans become numbers and booleans. */
export function parseSchedulerOptions(pairs: readonly string[]): SchedulerOptions {
  const out: Record<string, number | string | boolean> = {};
  for (const p of pairs) {
    const m = /^([A-Za-z][A-Za-z0-9_]*)=(.*)$/.exec(p);
    if (!m) throw new UserError(`--scheduler-option: "${p}" is not key=value`);
    const v = m[2] as string;
    out[m[1] as string] = v === 'true' ? true : v === 'false' ? false : v !== '' && Number.isFinite(Number(v)) ? Number(v) : v;
  }
  return out;
}

/** Quota given to a queue configured without one: effectively unlimited, and not lent out. */
const UNLIMITED = 1_000_000;

/** What the live core knows about the cluster beyond the store's snapshot (from the cluster config). */
export interface LiveAdapterConfig extends LiveInputsConfig {
  /** Relative speed per GPU model, over the built-in table. */
  readonly gpuSpeeds?: Readonly<Record<string, number>>;
  /** The energy stages around the scheduler (scheduling/energyStages.ts); absent: none. */
  readonly energy?: EnergyStageSettings;
  /** New pending jobs taken into the core per cycle (arrivalQueue.ts); default 4,000. */
  readonly arrivalsPerCycle?: number;
}

export class CoreSchedulerAdapter {
  readonly scheduler: JobScheduler;
  readonly inputs: LiveInputs;
  private nodesKey = '';
  private nodesList: StoreSnapshot['nodes'] | null = null;
  private nodes: NodeState[] = [];
  /**
   * Running jobs as last translated, with the job and task objects they came from: while those
   * are the same objects (the store and the scheduler thread keep unchanged ones), the
   * translation is reused without a look.
   */
  private readonly running = new Map<string, { key: string; attempt: number; startMs: number; job: RunningJob; from: Job; tasks: readonly ActiveTask[] }>();
  private readonly specs = new Map<string, { key: string; spec: CoreJob }>();
  private readonly pendingJobs = new Map<string, { key: string; job: PendingJob }>();
  /**
   * Per store Job object (the store's snapshot keeps an unchanged job's object): its core spec
   * and pending job, reused while the GPU models are the same, so that a cycle over 100,000
   * pending jobs costs what changed rather than two keys built per job.
   */
  private byJob = new WeakMap<Job, { models: string; spec: CoreJob; pending?: PendingJob }>();
  private modelsKey = '';
  /** Per reason the core gave (tide keeps a job's reason object while it is not tried again): its text, with the tenants it was judged for. */
  private reasonTexts = new WeakMap<PendingReason, { job?: string; blocker?: string; text: string }>();
  private seq = 0;
  /** Per store job object: the core's reason object that was found to say what the job shows already, or was written. */
  private shown = new WeakMap<Job, PendingReason>();
  /** Per store job object: the reason last written for it (the object keeps its identity, and on the scheduler thread its old reason). */
  private emitted = new WeakMap<Job, Pick<Job, 'reason' | 'estimatedStart'>>();
  /**
   * Reasons found to say what their job shows already, while that job's object stays the same
   * (an open job that changes or leaves takes its reason out): the plan's 100,000 reasons are
   * then passed over with one look each, not a lookup of their job and of what it shows.
   */
  private settled = new WeakSet<PendingReason>();
  private readonly settledOf = new Map<string, PendingReason>();
  /** The open jobs `settled` holds for. */
  private settledFor: readonly Job[] | null = null;
  /** The last cycle's open jobs (by identity) and the pending jobs made of them, sorted: reused while the list is the same. */
  private lastOpenJobs: readonly Job[] | null = null;
  private lastPending: PendingJob[] = [];
  /** New pending jobs not taken into the core yet (at most `arrivalsPerCycle` a cycle). */
  private readonly arrivals: ArrivalQueue;
  /** For a scheduler that folds: an array's waiting elements go to the core as one entry. */
  private readonly folds: PendingFolds | undefined;
  /** For a scheduler that does not fold: an array's waiting rest goes to the core as one job per element. */
  private readonly units = new PendingUnits();

  constructor(
    schedulerName: string,
    placement: string,
    options: SchedulerOptions = {},
    lp?: LpSolver,
    seed = 42,
    private readonly live: LiveAdapterConfig = {},
  ) {
    const factory = getJobScheduler(schedulerName);
    if (!factory) throw new UserError(`unknown scheduler '${schedulerName}' (known: ${jobSchedulerNames().join(', ')})`);
    // Services' lending and reclaim (core/scheduling/lending.ts) run in front of every scheduler,
    // and the energy stages (timeshift before, consolidate and powercap after) around both.
    const lending = withLending(factory({ rng: Rng.fromSeed(seed), placement, options, ...(lp ? { lp } : {}) }), preemptionSettings(options));
    this.scheduler = live.energy ? withEnergyStages(lending, live.energy) : lending;
    this.inputs = new LiveInputs(live);
    this.arrivals = new ArrivalQueue(live.arrivalsPerCycle);
    this.folds = this.scheduler.folds ? new PendingFolds() : undefined;
  }

  /** Builds the adapter, loading the HiGHS LP solver only for schedulers that need one (gavel, las). */
  static async create(schedulerName: string, placement: string, options: SchedulerOptions = {}, live: LiveAdapterConfig = {}): Promise<CoreSchedulerAdapter> {
    try {
      return new CoreSchedulerAdapter(schedulerName, placement, options, undefined, 42, live);
    } catch (e) {
      if (!/LP solver/.test((e as Error).message)) throw e;
      return new CoreSchedulerAdapter(schedulerName, placement, options, await highsSolver(), 42, live);
    }
  }

  /** Reads from the store what a cycle needs beyond its snapshot (finished jobs, usage, recent shapes); call before plan(). */
  refresh(store: LiveSource, nowMs: number, force = false): Promise<void> {
    return this.inputs.refresh(store, nowMs, force);
  }

  /**
   * One cycle: store snapshot in, store plan out. `nowMs` is the wall clock. With
   * `changes` (the scheduler thread's: the open jobs that changed since the list of the last call),
   * only those are looked at to bring the pending jobs up to date. With
   * `changedReasonsOnly`, the plan's pending reasons are only those the jobs do not show yet
   * (what the loop writes; loop.ts changedReasons): at 100,000 waiting jobs, making every
   * reason's entry each cycle to drop nearly all of them was most of a quiet cycle.
   */
  plan(s: StoreSnapshot, nowMs: number, changedReasonsOnly = false, changes?: OpenJobChanges): AppliedPlan {
    const snapshot = this.translate(s, nowMs, changes);
    this.unsettle(s.openJobs, changes);
    const plan = this.folds ? this.folds.unfold(this.scheduler.cycle(this.folds.fold(snapshot))) : this.units.collapse(this.scheduler.cycle(this.units.expand(snapshot)));
    return { ...this.back(plan, s, snapshot, changedReasonsOnly), ...borrowedChanges(snapshot, s), ...(this.arrivals.size ? { backlog: this.arrivals.size } : {}) };
  }

  translate(s: StoreSnapshot, nowMs: number, changes?: OpenJobChanges): SchedulerSnapshot {
    // The same list (the scheduler thread keeps it while no node changed) needs no key: at 1,250
    // nodes the key is a 100 KB string.
    const key = s.nodes === this.nodesList ? this.nodesKey : JSON.stringify(s.nodes.map((n) => [n.id, n.state, n.cpuMilli, n.memoryMib, n.gpus.map((g) => g.model), n.powerAt ?? null]));
    this.nodesList = s.nodes;
    if (key !== this.nodesKey) {
      this.nodesKey = key;
      // Placements hold node indices: a node joining (or leaving) shifts them, so cached runs are stale.
      this.running.clear();
      this.nodes = s.nodes.map((n) => ({
        spec: { id: nodeId(n.id), cpuMilli: n.cpuMilli, memoryMib: n.memoryMib, gpus: n.gpus.map((g) => g.model) } satisfies NodeSpec,
        ...this.powerOf(n),
      }));
    }
    const nodeIndex = new Map(this.nodes.map((n, i) => [n.spec.id as string, i]));
    const nodeById = new Map(s.nodes.map((n) => [n.id, n]));
    const models = [...new Set(s.nodes.flatMap((n) => n.gpus.map((g) => g.model)))].sort();
    const modelsKey = models.join(',');
    if (modelsKey !== this.modelsKey) {
      this.modelsKey = modelsKey;
      this.byJob = new WeakMap();
      this.lastOpenJobs = null;
    }
    const tasksByJob = new Map<string, ActiveTask[]>();
    for (const t of s.activeTasks) {
      const list = tasksByJob.get(t.jobId) ?? [];
      list.push(t);
      tasksByJob.set(t.jobId, list);
    }
    const running: RunningJob[] = [];
    // The pending jobs: the last cycle's for the same list of open jobs (the store and the
    // scheduler thread keep it while no job changed), the last cycle's brought up to date when the
    // thread says what changed; then only the jobs that run or ran need a look below. Otherwise
    // every open job is walked and the pending ones sorted (a cycle at 100,000 pending jobs did
    // that every time).
    const samePending = this.lastOpenJobs !== null && (s.openJobs === this.lastOpenJobs || changes !== undefined);
    let pending: PendingJob[] = !samePending ? [] : s.openJobs === this.lastOpenJobs || !changes ? this.lastPending : this.pendingAfter(changes, models, modelsKey);
    // Arrivals wait in their queue only between cycles that bring the pending jobs up to date; a
    // cycle that walks every open job takes them all in.
    if (samePending) pending = this.takeArrivals(pending, models, modelsKey);
    else this.arrivals.clear();
    const seen = new Set<string>();
    const waiting = new Set<string>();
    /** Tenants of the jobs that hold resources (their usage accrues). */
    const tenantOf = new Map<string, string>();
    for (const job of samePending ? startedJobs(s.openJobs) : s.openJobs) {
      if (samePending && job.state === 'pending') continue;
      const known = this.byJob.get(job);
      if (known && job.state === 'pending' && known.pending) {
        waiting.add(job.id);
        pending.push(known.pending);
        continue;
      }
      const spec = known?.spec ?? this.coreSpec(job, models, modelsKey);
      const tasks = tasksByJob.get(job.id);
      if (job.state === 'pending') {
        waiting.add(job.id);
        const made = this.pendingJob(job, spec);
        this.byJob.set(job, { models: modelsKey, spec, pending: made });
        pending.push(made);
        continue;
      }
      if (!known) this.byJob.set(job, { models: modelsKey, spec });
      if (!tasks || tasks.length === 0) continue;
      tenantOf.set(job.id, job.tenant);
      const cached = this.running.get(job.id);
      if (cached && cached.from === job && cached.job.spec === spec && sameObjects(cached.tasks, tasks)) {
        seen.add(job.id);
        running.push(cached.job);
        continue;
      }
      const bindings = this.bindings(job, tasks, nodeIndex);
      const firstGpu = tasks.find((t) => t.gpus.length > 0);
      const model: GpuModel = firstGpu ? (nodeById.get(firstGpu.node)?.gpus[firstGpu.gpus[0] as number]?.model ?? CPU_MODEL) : CPU_MODEL;
      const sameAttempt = cached !== undefined && cached.attempt === job.attempt;
      // The attempt's start: its first task's start (admitted, not started yet: when first seen so).
      const starts = tasks.map((t) => t.startedAt).filter((t): t is number => typeof t === 'number');
      const startMs = starts.length ? Math.min(...starts) : sameAttempt ? cached.startMs : nowMs;
      const checkpointMs = job.progress?.checkpointAt ?? null;
      const checkpoint = checkpointMs !== null && checkpointMs >= startMs ? checkpointMs : startMs;
      const stopping = job.state === 'preempted';
      const runKey = `${job.attempt}|${startMs}|${checkpoint}|${stopping}|${JSON.stringify(bindings.map((b) => [b.nodeId, b.placement.gpus]))}`;
      seen.add(job.id);
      if (cached && cached.key === runKey && cached.job.spec === spec) {
        this.running.set(job.id, { ...cached, from: job, tasks });
        running.push(cached.job);
        continue;
      }
      const r: RunningJob = {
        spec,
        // Progress as the run began: kept while the attempt lasts (a checkpoint moves lastCheckpointTime only).
        progress: this.progressOf(job, spec, sameAttempt ? cached.job.progress : undefined),
        bindings,
        model,
        startTime: startMs / 1000,
        lastCheckpointTime: checkpoint / 1000,
        gpus: boundGpus(spec, bindings),
        ...(stopping ? { stopping: true } : {}),
      };
      this.running.set(job.id, { key: runKey, attempt: job.attempt, startMs, job: r, from: job, tasks });
      running.push(r);
    }
    for (const id of this.running.keys()) if (!seen.has(id)) this.running.delete(id);
    running.sort(byJobId);
    if (!samePending) {
      for (const id of this.pendingJobs.keys()) if (!waiting.has(id)) this.pendingJobs.delete(id);
      pending.sort(byJobId);
    }
    this.lastOpenJobs = s.openJobs;
    this.lastPending = pending;
    const finished = this.inputs.takeFinished().map((f) => this.finishedJob(f, models));
    return {
      now: nowMs / 1000,
      seq: ++this.seq,
      nodes: this.nodes,
      running,
      pending,
      queues: coreQueues(s.queues),
      tenants: this.inputs.tenants,
      tenantUsage: this.inputs.usage(s.activeTasks, (id) => tenantOf.get(id), nowMs),
      finished,
      targetTasks: this.inputs.targetTasks,
      ...(s.reservations?.length ? { reservations: s.reservations.map((r) => ({ ...r, replicas: r.replicas.map(jobId) })) } : {}),
    };
  }

  /**
   * The last pending jobs brought up to date with the open jobs that changed since (sorted by id,
   * as the core wants them): those that changed or left are taken out, those pending now merged in.
   */
  private pendingAfter(changes: OpenJobChanges, models: readonly string[], modelsKey: string): PendingJob[] {
    const touched = new Set<string>(changes.removed);
    const added: PendingJob[] = [];
    for (const id of changes.removed) this.arrivals.drop(id);
    for (const job of changes.upserts) {
      touched.add(job.id);
      this.arrivals.drop(job.id);
      if (job.state !== 'pending') continue;
      // New to the core's pending jobs: taken in by takeArrivals, this cycle or a later one.
      if (!this.pendingJobs.has(job.id)) {
        this.arrivals.hold(job);
        continue;
      }
      added.push(this.pendingOf(job, models, modelsKey));
    }
    const stillPending = new Set<string>(added.map((p) => p.spec.id));
    for (const id of touched) if (!stillPending.has(id)) this.pendingJobs.delete(id);
    if (touched.size === 0) return this.lastPending;
    added.sort(byJobId);
    return spliceSorted(this.lastPending, touched, added);
  }

  /** `pending` (sorted by id) with this cycle's share of the arrivals merged in. */
  private takeArrivals(pending: PendingJob[], models: readonly string[], modelsKey: string): PendingJob[] {
    const taken = this.arrivals.take();
    if (taken.length === 0) return pending;
    const added = taken.map((job) => this.pendingOf(job, models, modelsKey)).sort(byJobId);
    return spliceSorted(pending, new Set(), added);
  }

  /** The pending job a store job makes (its object's, while it is the same object), remembered with its spec. */
  private pendingOf(job: Job, models: readonly string[], modelsKey: string): PendingJob {
    const known = this.byJob.get(job);
    const spec = known?.spec ?? this.coreSpec(job, models, modelsKey);
    const made = known?.pending ?? this.pendingJob(job, spec);
    this.byJob.set(job, { models: modelsKey, spec, pending: made });
    return made;
  }

  /**
   * Whether work may be bound on a node, and with consolidate its power as the store has it: a
   * suspended or resuming node stays schedulable then (the stage wakes it, or keeps binds off it
   * while it wakes), ready from its resume plus the expected wake-up. Without consolidate such a
   * node takes nothing (server/power/nodePower.ts hands it back).
   */
  private powerOf(n: StoreSnapshot['nodes'][number]): Omit<NodeState, 'spec'> {
    const c = this.live.energy?.consolidate;
    if (!c) return { schedulable: n.state === 'ready' };
    const resume = (typeof c === 'object' ? c.resumeSeconds : undefined) ?? CONSOLIDATE_DEFAULTS.resumeSeconds;
    if (n.state === 'suspended') return { schedulable: true, power: 'off' };
    if (n.state === 'resuming') return { schedulable: true, power: 'waking', readyAt: (n.powerAt ?? 0) / 1000 + resume };
    return { schedulable: n.state === 'ready', power: n.state === 'lost' ? 'off' : 'on' };
  }

  /** The power limit (W per GPU) a bind runs at: the job's own, else the powercap stage's choice; null: none. */
  private capWatts(b: PowerCappedBind, job: Job): number | null {
    if (job.spec.powerCapWatts !== undefined) return job.spec.powerCapWatts;
    const power = this.live.energy?.power;
    if (!power || b.powerCap === undefined || !(b.powerCap < 1) || b.model === CPU_MODEL) return null;
    const p = gpuPower(power, b.model);
    return Math.max(Math.ceil(p.minCapWatts), Math.round(b.powerCap * p.tdpWatts));
  }

  /** The same PendingJob object while nothing the core reads of it changed. */
  private pendingJob(job: Job, spec: CoreJob): PendingJob {
    const p = job.progress;
    const count = job.arrayCount ?? 1;
    const key = `${job.attempt}|${job.runSeconds}|${p?.step ?? ''}|${p?.checkpointStep ?? ''}|${p?.totalSteps ?? ''}|${count}`;
    const cached = this.pendingJobs.get(job.id);
    if (cached && cached.key === key && cached.job.spec === spec) return cached.job;
    // An array's waiting rest is one entry of its element count (migration 019).
    const made: FoldablePending = { spec, progress: this.progressOf(job, spec), ...(count > 1 ? { count } : {}), foldPrev: null, foldSame: false, lastReason: undefined };
    this.pendingJobs.set(job.id, { key, job: made });
    return made;
  }

  /**
   * The job's progress before its current attempt (running) or now (pending), in seconds on a
   * speed-1 GPU: its earlier attempts' running time at its best speed, of which only the saved
   * share counts when it reports progress (checkpointStep ÷ step; no checkpoint: none saved).
   * A running job keeps the figure its run began with (`kept`).
   */
  private progressOf(job: Job, spec: CoreJob, kept?: JobProgress): JobProgress {
    if (kept) return kept;
    const best = Math.max(0, ...Object.values(spec.throughput));
    const p = job.progress;
    const saved = p === null || p.step <= 0 ? 1 : Math.min(1, Math.max(0, (p.checkpointStep ?? 0) / p.step));
    const gpus = Math.max(1, jobGpus(spec));
    return {
      stepsDone: job.runSeconds * best * saved,
      attainedGpuSeconds: job.runSeconds * gpus,
      runSeconds: job.runSeconds,
      preemptions: job.attempt,
      ...(job.startedAt !== null ? { firstStartTime: job.startedAt / 1000 } : {}),
    };
  }

  /**
   * A finished job as the core's history reads it: its work (`totalSteps`) is what it did, its
   * running time × its speed where it ran, so that work ÷ best speed is its run on the fastest model.
   */
  private finishedJob(f: FinishedRun, models: readonly string[]): FinishedJob {
    const job = { ...f.spec };
    const throughput = this.throughputOf(f.spec, models);
    const best = Math.max(0, ...Object.values(throughput));
    const ran = f.model === null ? best : (throughput[f.model] ?? gpuSpeed(f.model, this.live.gpuSpeeds, f.spec.gpuSpeeds));
    const spec: CoreJob = {
      ...this.specOf(f.id, 'history', 'history', job, 0),
      throughput,
      totalSteps: f.runSeconds * ran,
    };
    const progress: JobProgress = { stepsDone: spec.totalSteps, attainedGpuSeconds: f.runSeconds * jobGpus(spec), runSeconds: f.runSeconds, preemptions: 0 };
    return { spec, finishTime: f.finishedAt / 1000, progress, model: f.model ?? CPU_MODEL };
  }

  /** Steps per second per model: the job's speed there (0: it cannot run there); CPU-only jobs: `cpu`. */
  private throughputOf(spec: Job['spec'], models: readonly string[]): Record<string, number> {
    const gpuJob = spec.groups.some((g) => g.gpuCount > 0);
    let allowed = [...models];
    for (const g of spec.groups) if (g.gpuModels.length > 0) allowed = allowed.filter((m) => g.gpuModels.includes(m));
    const throughput: Record<string, number> = {};
    if (!gpuJob) throughput[CPU_MODEL] = 1;
    else for (const m of allowed) throughput[m] = gpuSpeed(m, this.live.gpuSpeeds, spec.gpuSpeeds);
    return throughput;
  }

  /** The core's JobSpec of a store job, with its throughput and work to be set. */
  private specOf(id: string, tenant: string, queue: string, spec: Job['spec'], submitMs: number): Omit<CoreJob, 'throughput' | 'totalSteps'> {
    return {
      id: jobId(id),
      tenant,
      queue,
      priorityClass: 'custom',
      priority: spec.priority,
      submitTime: submitMs / 1000,
      groups: spec.groups.map((g) => ({
        name: g.name,
        replicas: g.replicas,
        ...(g.minReplicas !== undefined ? { minReplicas: g.minReplicas } : {}),
        task: { cpuMilli: g.cpuMilli, memoryMib: g.memoryMib, gpuCount: g.gpuCount, gpuMilli: g.gpuMilli, allowedModels: g.gpuModels },
      })),
      preemptible: spec.preemptible,
      ...(spec.timeLimitSeconds !== undefined ? { timeLimitSeconds: spec.timeLimitSeconds } : {}),
      jobType: spec.jobType ?? spec.name,
      // The per-job preemption budget, for a core that reads it (the cluster default is the scheduler option maxPreemptions).
      ...(spec.maxPreemptions !== undefined ? { maxPreemptions: spec.maxPreemptions } : {}),
      // What the energy stages read: the slowdown a power cap may cost, and whether and until when it may wait.
      // A service's replica is never capped: its latency is its service's SLO (and its spec carries no maxSlowdown).
      ...(spec.maxSlowdown !== undefined ? { maxSlowdown: spec.maxSlowdown } : spec.replicaOf !== undefined ? { maxSlowdown: 0 } : {}),
      ...(spec.deferrable !== undefined ? { deferrable: spec.deferrable } : {}),
      ...(spec.deadlineSeconds !== undefined ? { deadline: submitMs / 1000 + spec.deadlineSeconds } : {}),
    };
  }

  private coreSpec(job: Job, models: readonly string[], modelsKey: string): CoreJob {
    const total = job.progress?.totalSteps ?? null;
    const key = `${modelsKey}|${total ?? ''}`;
    const cached = this.specs.get(job.id);
    if (cached && cached.key === key) return cached.spec;
    const spec: CoreJob = {
      ...this.specOf(job.id, job.tenant, job.queue, job.spec, job.createdAt),
      // Unknown unless the job reported it (only the simulator and `oracle` policies read it).
      totalSteps: total ?? Infinity,
      throughput: this.throughputOf(job.spec, models),
    };
    this.specs.set(job.id, { key, spec });
    if (this.specs.size > 200_000) this.specs.clear();
    return spec;
  }

  /** Active tasks as the core's bindings: replica index within its group, node index in the snapshot. */
  private bindings(job: Job, tasks: readonly ActiveTask[], nodeIndex: ReadonlyMap<string, number>): TaskBinding[] {
    const out: TaskBinding[] = [];
    for (const t of tasks) {
      const where = groupAt(job, t.index);
      const node = nodeIndex.get(t.node);
      if (!where || node === undefined) continue;
      const placement: Placement = {
        node,
        gpus: t.gpus,
        gpuMilli: t.gpus.length ? t.gpuMilli / t.gpus.length : 0,
        cpuMilli: t.cpuMilli,
        memoryMib: t.memoryMib,
      };
      out.push({ group: where.group, index: where.replica, nodeId: nodeId(t.node), placement });
    }
    return out;
  }

  /** Takes out of `settled` the reasons of the open jobs that changed or left (all of them when what changed is not known). */
  private unsettle(openJobs: readonly Job[], changes?: OpenJobChanges): void {
    if (openJobs === this.settledFor) return;
    if (changes && this.settledFor !== null) {
      for (const id of changes.removed) this.unsettleJob(id);
      for (const job of changes.upserts) this.unsettleJob(job.id);
    } else {
      this.settled = new WeakSet();
      this.settledOf.clear();
    }
    this.settledFor = openJobs;
  }

  private unsettleJob(id: string): void {
    const r = this.settledOf.get(id);
    if (r === undefined) return;
    this.settled.delete(r);
    this.settledOf.delete(id);
  }

  private settle(p: PendingReason): void {
    const before = this.settledOf.get(p.job);
    if (before !== undefined) this.settled.delete(before);
    this.settled.add(p);
    this.settledOf.set(p.job, p);
  }

  /** `code: message` as the job's tenant may read it, made once per reason object (and tenants of the job and the job it names). */
  private reasonText(p: PendingReason, jobs: ReadonlyMap<string, Job>): string {
    const job = p.blockedBy === undefined ? undefined : jobs.get(p.job)?.tenant;
    const blocker = p.blockedBy === undefined ? undefined : jobs.get(p.blockedBy)?.tenant;
    const known = this.reasonTexts.get(p);
    if (known && known.job === job && known.blocker === blocker) return known.text;
    const text = `${p.code}: ${readerMessage(p, jobs)}`;
    this.reasonTexts.set(p, { ...(job !== undefined ? { job } : {}), ...(blocker !== undefined ? { blocker } : {}), text });
    return text;
  }

  /**
   * The plan's pending reasons in store terms; with `changedOnly`, only those the job does not
   * show yet. A reason object the core kept (tide keeps a job's reason while it is not tried
   * again) that matched the job object's last time is passed over without a look.
   */
  private pendingReasons(reasons: readonly PendingReason[], jobs: ReadonlyMap<string, Job>, changedOnly: boolean): AppliedPlan['pending'] {
    const out: AppliedPlan['pending'][number][] = [];
    for (const p of reasons) {
      if (changedOnly && this.settled.has(p)) continue;
      const job = changedOnly ? jobs.get(p.job) : undefined;
      if (changedOnly && !job) continue;
      if (job && this.shown.get(job) === p) {
        this.settle(p);
        continue;
      }
      const entry = {
        jobId: p.job,
        reason: this.reasonText(p, jobs),
        estimatedStart: p.estimatedStart === undefined || !Number.isFinite(p.estimatedStart) ? null : Math.round(p.estimatedStart * 1000),
      };
      const changed = !job || reasonChanged(this.emitted.get(job) ?? job, entry);
      if (changed) out.push(entry);
      if (!job) continue;
      // Written (or already shown): the store keeps the job object when it writes a reason
      // (store/openJobs.ts tookReasons), so on this thread the job's object shows the one before.
      if (changed) this.emitted.set(job, entry);
      this.shown.set(job, p);
      this.settle(p);
    }
    return out;
  }

  private back(plan: EnergyPlan, s: StoreSnapshot, snapshot: SchedulerSnapshot, changedReasonsOnly: boolean): AppliedPlan {
    const jobs = openJobsById(s.openJobs);
    const binds: AppliedPlan['binds'][number][] = [];
    /** An array rest's CPU-only binds by node: one bind of as many units. */
    const together = new Map<string, { units: number }>();
    for (const b of plan.binds) {
      const job = jobs.get(b.job);
      if (!job) continue;
      const one = b.bindings.length === 1 ? b.bindings[0] : undefined;
      if ((job.arrayCount ?? 1) > 1 && one && one.placement.gpus.length === 0) {
        const node = snapshot.nodes[one.placement.node]?.spec.id ?? one.nodeId;
        const key = `${b.job}\n${node}`;
        const had = together.get(key);
        if (had) {
          had.units++;
          continue;
        }
        const bind = { jobId: b.job, attempt: job.attempt, units: 1, tasks: [{ index: globalIndex(job, one.group, one.index), node, gpus: [], gpuMilli: 0 }] };
        together.set(key, bind);
        binds.push(bind);
        continue;
      }
      binds.push({
        jobId: b.job,
        attempt: job.attempt,
        powerCapWatts: this.capWatts(b, job),
        tasks: b.bindings.map((t) => ({
          index: globalIndex(job, t.group, t.index),
          node: snapshot.nodes[t.placement.node]?.spec.id ?? t.nodeId,
          gpus: t.placement.gpus,
          gpuMilli: t.placement.gpus.length * t.placement.gpuMilli,
        })),
      });
    }
    return {
      binds,
      preemptions: plan.preemptions.map((p) => ({ jobId: p.job, reason: p.reason, ...(p.reclaim ? { reclaim: p.reclaim } : {}), ...(p.lender !== undefined ? { lender: p.lender } : {}) })),
      pending: this.pendingReasons(plan.pending, jobs, changedReasonsOnly),
      ...(plan.nodePower?.length ? { nodePower: plan.nodePower.map((c) => ({ node: snapshot.nodes[c.node]?.spec.id ?? String(c.node), state: c.state })) } : {}),
      ...(plan.wakeAt !== undefined && Number.isFinite(plan.wakeAt) ? { wakeAt: Math.ceil(plan.wakeAt * 1000) } : {}),
    };
  }
}

/**
 * `list` (sorted by id) without the jobs whose ids are in `drop`, with `added` (sorted by id)
 * merged in. The few changes are found by binary search and the runs between them copied
 * whole: a cycle at 100,000 pending jobs with a few hundred changes looked up every job's id
 * in a set before.
 */
export function spliceSorted(list: readonly PendingJob[], drop: ReadonlySet<string>, added: readonly PendingJob[]): PendingJob[] {
  const drops: number[] = [];
  for (const id of drop) {
    const i = indexById(list, id);
    if (i < list.length && (list[i] as PendingJob).spec.id === id) drops.push(i);
  }
  drops.sort((a, b) => a - b);
  // Filled in place, at its final size: a slice per arrival and their concatenation cost more than the walk.
  const out = new Array<PendingJob>(list.length - drops.length + added.length);
  let k = 0;
  let from = 0;
  let d = 0;
  const copyUpTo = (end: number): void => {
    for (; from < end; from++) {
      if (d < drops.length && drops[d] === from) d++;
      else out[k++] = list[from] as PendingJob;
    }
  };
  for (const p of added) {
    copyUpTo(indexById(list, p.spec.id));
    out[k++] = p;
  }
  copyUpTo(list.length);
  return out;
}

/**
 * The jobs whose `borrowed` flag changes: those that now run on GPUs their queue borrows from
 * its cohort (core/scheduling/lending.ts borrowedRuns) and those that no longer do.
 */
export function borrowedChanges(snapshot: SchedulerSnapshot, s: StoreSnapshot): Pick<AppliedPlan, 'borrowed'> {
  const now = borrowedRuns(snapshot.queues, snapshot.running);
  const on: string[] = [];
  const off: string[] = [];
  for (const j of startedJobs(s.openJobs)) {
    // A pending job holds no GPUs and is never marked borrowed (store/rows.ts jobFromRow): most open jobs are.
    if (j.state === 'pending') continue;
    const is = now.has(jobId(j.id));
    if (is && !j.borrowed) on.push(j.id);
    else if (!is && j.borrowed) off.push(j.id);
  }
  return on.length || off.length ? { borrowed: { on, off } } : {};
}

/**
 * A reason's message as the job's own tenant may read it: a job it waits behind or for is
 * named only when that job is the tenant's too (job ids of other tenants never leak).
 */
export function readerMessage(p: PendingReason, jobs: ReadonlyMap<string, Job>): string {
  if (p.blockedBy === undefined) return p.message;
  const job = jobs.get(p.job);
  const blocker = jobs.get(p.blockedBy);
  if (job && blocker && blocker.tenant === job.tenant) return p.message;
  return anonymousMessage(p.code, job?.queue ?? '?');
}

/**
 * Tide's queues as Kueue ClusterQueues: in their cohort (default `cluster`, so queues borrow each
 * other's unused quota), with nominal quotas, borrowing and lending limits per GPU model (`*`:
 * any model). A queue without a quota is unlimited and lends nothing. No queue with a quota:
 * none are enforced.
 */
export function coreQueues(queues: readonly QueueConfig[]): CoreQueue[] {
  if (!queues.some((q) => q.gpuQuota !== null || q.nominalQuota !== undefined)) return [];
  return queues.map((q) => {
    const unlimited = q.gpuQuota === null && q.nominalQuota === undefined;
    const borrowing = q.borrowingLimits ?? (q.borrowingLimit !== null ? { '*': q.borrowingLimit } : undefined);
    const lending = q.lendingLimits ?? (unlimited ? { '*': 0 } : undefined);
    return {
      name: q.name,
      cohort: q.cohort ?? 'cluster',
      nominalQuota: q.nominalQuota ?? { '*': q.gpuQuota ?? UNLIMITED },
      ...(borrowing ? { borrowingLimit: borrowing } : {}),
      ...(lending ? { lendingLimit: lending } : {}),
    };
  });
}

function groupAt(job: Job, index: number): { group: string; replica: number } | null {
  let i = index;
  for (const g of job.spec.groups) {
    if (i < g.replicas) return { group: g.name, replica: i };
    i -= g.replicas;
  }
  return null;
}

function globalIndex(job: Job, group: string, replica: number): number {
  let offset = 0;
  for (const g of job.spec.groups) {
    if (g.name === group) return offset + replica;
    offset += g.replicas;
  }
  return -1;
}

/** Whether two lists hold the same objects in the same order. */
function sameObjects<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
