/**
 * The discrete-event cluster simulator. A virtual clock moves from event to event (arrival,
 * completion, checkpoint-aware preemption, node failure and repair, scheduler wake-ups); after
 * the events of one instant it hands the core's scheduler a snapshot and applies the plan.
 * It never tells the scheduler it is a simulation. It keeps its own ClusterState and quota
 * ledger and checks every plan against them (no over-allocation, whole gangs, quotas kept, a
 * reason for every pending job), so a policy that breaks an invariant fails the run.
 *
 * A restart costs what the job says: every start after a preemption spends `restartCostSeconds`
 * before steps accrue, and a stop loses the steps since the last checkpoint (every
 * `checkpointIntervalSeconds` of work, counted from when work began). A job whose running time
 * over all attempts reaches its `timeLimitSeconds` ends timed out, unless `timeLimits` is
 * 'estimate' (workloads whose limits are only the users' declared over-estimates).
 */
import { ClusterState } from '../core/cluster.ts';
import { taskOf } from '../core/scheduling/clusterView.ts';
import { boundGpus, compareJobIds, CPU_MODEL, indexById, jobGpus, minReplicas, type JobId, type JobProgress, type JobSpec, type QueueConfig, type TaskBinding, type TenantConfig } from '../core/scheduling/model.ts';
import { QuotaLedger } from '../core/scheduling/quota.ts';
import type { FinishedJob, JobBind, JobScheduler, NodeState, PendingJob, PendingReason, RunningJob, SchedulePlan, SchedulerSnapshot, UsageRecord } from '../core/scheduling/scheduler.ts';
import type { NodeId, NodeSpec } from '../core/model.ts';
import { EventQueue } from './eventQueue.ts';

/** Jobs in submission order, pulled one at a time (generators can be endless). */
export interface JobSource {
  next(): JobSpec | undefined;
}

export function arraySource(jobs: readonly JobSpec[]): JobSource {
  const sorted = [...jobs].sort((a, b) => a.submitTime - b.submitTime || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  let i = 0;
  return { next: () => sorted[i++] };
}

export interface NodeOutage {
  readonly node: NodeId;
  readonly at: number;
  readonly repairedAt: number;
}

/** Lifecycle events, for metrics, logs and tests. */
export type SimEvent =
  | { readonly type: 'job:submitted'; readonly time: number; readonly job: JobSpec }
  | { readonly type: 'job:started'; readonly time: number; readonly job: JobSpec; readonly model: string; readonly gpus: number }
  | { readonly type: 'job:preempted'; readonly time: number; readonly job: JobSpec; readonly reason: string; readonly lostSteps: number; readonly lostGpuSeconds: number }
  | { readonly type: 'job:finished'; readonly time: number; readonly job: JobSpec; readonly progress: JobProgress }
  | { readonly type: 'job:timedout'; readonly time: number; readonly job: JobSpec; readonly progress: JobProgress }
  | { readonly type: 'node:lost'; readonly time: number; readonly node: NodeId }
  | { readonly type: 'node:repaired'; readonly time: number; readonly node: NodeId }
  | { readonly type: 'cycle'; readonly time: number; readonly plan: SchedulePlan; readonly pending: number; readonly running: number; readonly allocatedGpus: number };

export interface SimOptions {
  readonly nodes: readonly NodeSpec[];
  readonly queues?: readonly QueueConfig[];
  readonly tenants?: readonly TenantConfig[];
  readonly scheduler: JobScheduler;
  readonly jobs: JobSource;
  readonly outages?: readonly NodeOutage[];
  /** Half-life of the decayed tenant usage handed to fair-share policies (default 7 days). */
  readonly usageHalfLifeSeconds?: number;
  /** Check every plan (default true). */
  readonly checkInvariants?: boolean;
  /** Stop when this returns true (checked after each instant). */
  readonly stop?: (sim: Simulation) => boolean;
  /** Stop at this virtual time at the latest. */
  readonly maxTime?: number;
  readonly onEvent?: (e: SimEvent) => void;
  /**
   * 'enforce' (default): a job whose running time over all attempts reaches its
   * `timeLimitSeconds` is stopped and ends timed out, as the live server does. 'estimate': the
   * limits are declared estimates only (policies may read them; nothing is stopped).
   */
  readonly timeLimits?: 'enforce' | 'estimate';
  /**
   * The share of a bind's throughput the job runs at (default 1), e.g. under the power cap a
   * stage put on the bind (src/sim/energy: `capSpeed`). Must be above 0.
   */
  readonly speedOf?: (bind: JobBind, job: JobSpec) => number;
}

export class InvariantError extends Error {
  override readonly name = 'InvariantError';
}

interface JobState {
  readonly spec: JobSpec;
  progress: JobProgress;
  running: MutableRun | undefined;
  /** Bumped at every start and stop so stale finish events are ignored. */
  version: number;
  /** The plan check that last found a reason for it. */
  explained: number;
}

interface MutableRun extends RunningJob {
  /** Steps per second in this run. */
  readonly rate: number;
  /** When steps start to accrue (start + restart cost). */
  readonly workStart: number;
  /** Listed in a snapshot yet (until then, stopping it takes it off `startedSince` instead). */
  listed: boolean;
}

type Ev =
  | { readonly kind: 'arrival'; readonly job: JobSpec }
  | { readonly kind: 'finish'; readonly id: JobId; readonly version: number }
  | { readonly kind: 'timeout'; readonly id: JobId; readonly version: number }
  | { readonly kind: 'wake' }
  | { readonly kind: 'outage'; readonly node: number; readonly up: boolean };

const DAY = 86_400;
/** Cycles in a row with nothing running or started after which wake-ups are no longer scheduled. */
const MAX_IDLE_CYCLES = 100;

/** Where `id` is, or goes, in a list of job ids sorted as the core wants them (compareJobIds). */
function sortedIdIndex(ids: readonly string[], id: string): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (compareJobIds(ids[mid] as string, id) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class Simulation {
  now = 0;
  readonly jobs = new Map<string, JobState>();
  readonly finishedJobs: FinishedJob[] = [];
  /** Jobs stopped at their time limit (also in `finishedJobs`, marked `timedOut`). */
  timedOut = 0;
  /** Jobs submitted so far. */
  submitted = 0;
  /** Scheduler cycles run. */
  cycles = 0;
  /** Events processed. */
  events = 0;
  private readonly queue = new EventQueue<Ev>();
  private readonly nodeStates: NodeState[];
  private readonly nodeIndex = new Map<string, number>();
  private readonly cluster: ClusterState;
  private readonly ledger: QuotaLedger;
  private readonly running: RunningJob[] = [];
  private readonly pending: PendingJob[] = [];
  /** The pending jobs' ids, in the same order (what the plan check walks). */
  private readonly pendingIds: string[] = [];
  private recentlyFinished: FinishedJob[] = [];
  /** Snapshots handed out, and the runs that began and ended since the last one (its runningDelta). */
  private seq = 0;
  private startedSince: MutableRun[] = [];
  private stoppedSince: MutableRun[] = [];
  private allocatedGpus = 0;
  private wakeAt = Infinity;
  /** Per tenant: decayed usage [GPU, CPU core, memory MiB]-seconds at `at`, and what it holds now. */
  private readonly usage = new Map<string, { value: number[]; at: number; held: number[] }>();
  private readonly halfLife: number;
  private readonly check: boolean;
  private stopped = false;
  private idleCycles = 0;
  private checks = 0;

  constructor(private readonly opts: SimOptions) {
    this.nodeStates = opts.nodes.map((spec) => ({ spec, schedulable: true }));
    opts.nodes.forEach((n, i) => this.nodeIndex.set(n.id, i));
    this.cluster = new ClusterState(opts.nodes);
    this.ledger = new QuotaLedger(opts.queues ?? []);
    this.halfLife = opts.usageHalfLifeSeconds ?? 7 * DAY;
    this.check = opts.checkInvariants ?? true;
    for (const o of opts.outages ?? []) {
      const n = this.nodeIndex.get(o.node);
      if (n === undefined) throw new Error(`outage names unknown node '${o.node}'`);
      this.queue.push(o.at, { kind: 'outage', node: n, up: false });
      this.queue.push(o.repairedAt, { kind: 'outage', node: n, up: true });
    }
    this.pullArrival();
  }

  get totalGpus(): number {
    return this.cluster.totalGpuMilli / 1000;
  }

  get allocated(): number {
    return this.allocatedGpus;
  }

  get pendingCount(): number {
    return this.pending.length;
  }

  get runningCount(): number {
    return this.running.length;
  }

  /** Runs until the stop condition, the time limit, or no more events. */
  run(): this {
    const maxTime = this.opts.maxTime ?? Infinity;
    while (!this.stopped) {
      const t = this.queue.peekTime();
      if (t === Infinity || t > maxTime) break;
      this.now = t;
      let changed = false;
      while (this.queue.peekTime() === t) {
        const e = this.queue.pop();
        if (!e) break;
        this.events++;
        changed = this.handle(e.item) || changed;
      }
      if (changed) this.cycle();
      if (this.opts.stop?.(this)) this.stopped = true;
    }
    return this;
  }

  private pullArrival(): void {
    const job = this.opts.jobs.next();
    if (job) this.queue.push(job.submitTime, { kind: 'arrival', job });
  }

  private handle(e: Ev): boolean {
    switch (e.kind) {
      case 'arrival': {
        const state: JobState = { spec: e.job, progress: { stepsDone: 0, attainedGpuSeconds: 0, runSeconds: 0, preemptions: 0 }, running: undefined, version: 0, explained: 0 };
        if (this.jobs.has(e.job.id)) throw new Error(`job id '${e.job.id}' submitted twice`);
        this.jobs.set(e.job.id, state);
        this.addPending(state);
        this.submitted++;
        this.opts.onEvent?.({ type: 'job:submitted', time: this.now, job: e.job });
        this.pullArrival();
        return true;
      }
      case 'finish': {
        const s = this.jobs.get(e.id);
        if (!s || !s.running || s.version !== e.version) return false;
        this.finish(s);
        return true;
      }
      case 'timeout': {
        const s = this.jobs.get(e.id);
        if (!s || !s.running || s.version !== e.version) return false;
        this.finish(s, true);
        return true;
      }
      case 'wake':
        if (this.now < this.wakeAt) return false;
        this.wakeAt = Infinity;
        return true;
      case 'outage': {
        const node = this.nodeStates[e.node] as NodeState;
        this.nodeStates[e.node] = { spec: node.spec, schedulable: e.up };
        if (!e.up) {
          for (const r of [...this.running]) {
            if (r.bindings.some((b) => b.placement.node === e.node)) this.stop(this.jobs.get(r.spec.id) as JobState, `node ${node.spec.id} failed`);
          }
        }
        this.opts.onEvent?.({ type: e.up ? 'node:repaired' : 'node:lost', time: this.now, node: node.spec.id });
        return true;
      }
    }
  }

  private addPending(s: JobState): void {
    const p: PendingJob = { spec: s.spec, progress: s.progress };
    const i = sortedIdIndex(this.pendingIds, s.spec.id);
    this.pending.splice(i, 0, p);
    this.pendingIds.splice(i, 0, s.spec.id);
  }

  private removePending(id: string): void {
    const i = sortedIdIndex(this.pendingIds, id);
    if (this.pendingIds[i] === id) {
      this.pending.splice(i, 1);
      this.pendingIds.splice(i, 1);
    }
  }

  private snapshot(): SchedulerSnapshot {
    const finished = this.recentlyFinished;
    this.recentlyFinished = [];
    const tenantUsage: UsageRecord[] = [];
    for (const [name, u] of this.usage) {
      const [gpuSeconds, cpuSeconds, memoryMibSeconds] = this.decayed(u, this.now) as [number, number, number];
      tenantUsage.push({ name, gpuSeconds, cpuSeconds, memoryMibSeconds });
    }
    const started = this.startedSince;
    const stopped = this.stoppedSince;
    for (const r of started) r.listed = true;
    this.startedSince = [];
    this.stoppedSince = [];
    this.seq++;
    return {
      now: this.now,
      seq: this.seq,
      runningDelta: { since: this.seq - 1, started, stopped },
      nodes: this.nodeStates,
      running: this.running,
      pending: this.pending,
      queues: this.opts.queues ?? [],
      ...(this.opts.tenants ? { tenants: this.opts.tenants } : {}),
      tenantUsage,
      finished,
    };
  }

  private cycle(): void {
    this.cycles++;
    const plan = this.opts.scheduler.cycle(this.snapshot());
    const preempted = new Set<string>();
    for (const p of plan.preemptions) {
      const s = this.jobs.get(p.job);
      if (!s?.running) throw new InvariantError(`${this.opts.scheduler.name}: preempts job ${p.job}, which is not running`);
      if (!s.spec.preemptible && this.check) throw new InvariantError(`${this.opts.scheduler.name}: preempts job ${p.job}, which is not preemptible`);
      this.stop(s, p.reason);
      preempted.add(p.job);
    }
    for (const b of plan.binds) this.start(b);
    if (this.check) this.checkExplained(plan);
    // Nothing running and nothing started, again and again: only an arrival or a repair can
    // change anything, so stop honouring wake-ups that would spin forever on jobs that cannot run.
    this.idleCycles = this.running.length === 0 && plan.binds.length === 0 ? this.idleCycles + 1 : 0;
    const stalled = this.idleCycles > MAX_IDLE_CYCLES;
    if (!stalled && plan.wakeAt !== undefined && plan.wakeAt > this.now && plan.wakeAt < this.wakeAt) {
      this.wakeAt = plan.wakeAt;
      this.queue.push(plan.wakeAt, { kind: 'wake' });
    }
    this.opts.onEvent?.({ type: 'cycle', time: this.now, plan, pending: this.pending.length, running: this.running.length, allocatedGpus: this.allocatedGpus });
  }

  /** Every pending job has a reason in the plan. */
  private checkExplained(plan: SchedulePlan): void {
    // Reasons usually come in job id order, as the pending list is kept: one walk matches them.
    const ids = this.pendingIds;
    const reasons = plan.pending;
    let k = 0;
    const rest: string[] = [];
    for (let i = 0; i < reasons.length; i++) {
      const job = (reasons[i] as PendingReason).job;
      if (job === ids[k]) k++;
      else rest.push(job);
    }
    const pending = this.pending;
    if (k === pending.length) return;
    // The rest by lookup: each unmatched reason marks its job, then the unmatched jobs are checked.
    const mark = ++this.checks;
    for (const id of rest) {
      const s = this.jobs.get(id);
      if (s) s.explained = mark;
    }
    for (let i = k; i < pending.length; i++) {
      const p = pending[i] as PendingJob;
      if (this.jobs.get(p.spec.id)?.explained !== mark) throw new InvariantError(`${this.opts.scheduler.name}: pending job ${p.spec.id} has no reason at t=${this.now}`);
    }
  }

  private start(b: JobBind): void {
    const s = this.jobs.get(b.job);
    const who = this.opts.scheduler.name;
    if (!s) throw new InvariantError(`${who}: binds unknown job ${b.job}`);
    if (s.running) throw new InvariantError(`${who}: binds job ${b.job}, which is already running`);
    const speed = this.opts.speedOf?.(b, s.spec) ?? 1;
    if (!(speed > 0 && Number.isFinite(speed))) throw new InvariantError(`${who}: job ${b.job} would run at speed ${speed}`);
    const rate = this.rateOf(s.spec, b) * speed;
    const gpus = boundGpus(s.spec, b.bindings);
    if (this.check) {
      const quota = this.ledger.check(s.spec.queue, b.model, gpus);
      if (quota !== null) throw new InvariantError(`${who}: binds job ${b.job} over quota: ${quota}`);
    }
    const taken: TaskBinding[] = [];
    for (const t of b.bindings) {
      const group = s.spec.groups.find((g) => g.name === t.group);
      if (!group) throw new InvariantError(`${who}: job ${b.job} has no task group '${t.group}'`);
      const allowed = b.model === CPU_MODEL ? [] : [b.model];
      const task = this.cluster.prepare(taskOf(s.spec, t.group, t.index, { ...group.task, allowedModels: allowed }));
      const error = this.cluster.allocate(t.placement, task);
      if (error !== null) {
        for (const done of taken) this.cluster.release(done.placement);
        throw new InvariantError(`${who}: job ${b.job} task ${t.group}/${t.index}: ${error}`);
      }
      if (!this.nodeStates[t.placement.node]?.schedulable) throw new InvariantError(`${who}: job ${b.job} bound to unschedulable node ${t.nodeId}`);
      taken.push(t);
    }
    this.removePending(s.spec.id);
    const restart = s.progress.preemptions > 0 ? (s.spec.restartCostSeconds ?? 0) : 0;
    const run: MutableRun = {
      spec: s.spec,
      progress: s.progress,
      bindings: b.bindings,
      model: b.model,
      startTime: this.now,
      lastCheckpointTime: this.now,
      gpus,
      rate,
      workStart: this.now + restart,
      listed: false,
    };
    this.startedSince.push(run);
    s.running = run;
    s.version++;
    if (s.progress.firstStartTime === undefined) s.progress = { ...s.progress, firstStartTime: this.now };
    this.running.splice(indexById(this.running, s.spec.id), 0, run);
    this.ledger.add(s.spec.queue, b.model, gpus);
    this.changeUsage(s.spec, gpus, 1);
    this.allocatedGpus += gpus;
    const remaining = Math.max(0, s.spec.totalSteps - s.progress.stepsDone);
    const finishAt = run.workStart + remaining / rate;
    const limit = s.spec.timeLimitSeconds;
    const timeoutAt = limit !== undefined && limit > 0 && this.opts.timeLimits !== 'estimate' ? this.now + Math.max(0, limit - s.progress.runSeconds) : Infinity;
    if (timeoutAt < finishAt) this.queue.push(timeoutAt, { kind: 'timeout', id: s.spec.id, version: s.version });
    else this.queue.push(finishAt, { kind: 'finish', id: s.spec.id, version: s.version });
    this.opts.onEvent?.({ type: 'job:started', time: this.now, job: s.spec, model: b.model, gpus });
  }

  /** Steps per second for a bind: the model's throughput, scaled down when an elastic group runs short. */
  private rateOf(spec: JobSpec, b: JobBind): number {
    const full = spec.throughput[b.model] ?? 0;
    if (!(full > 0)) throw new InvariantError(`${this.opts.scheduler.name}: binds job ${spec.id} to ${b.model}, where it cannot run`);
    let have = 0;
    let want = 0;
    for (const g of spec.groups) {
      const n = b.bindings.filter((t) => t.group === g.name).length;
      if (n < minReplicas(g) || n > g.replicas) throw new InvariantError(`${this.opts.scheduler.name}: job ${spec.id} group '${g.name}' bound with ${n} of ${g.replicas} tasks (minimum ${minReplicas(g)})`);
      const indexes = new Set(b.bindings.filter((t) => t.group === g.name).map((t) => t.index));
      if (indexes.size !== n) throw new InvariantError(`${this.opts.scheduler.name}: job ${spec.id} group '${g.name}' binds a task twice`);
      have += n;
      want += g.replicas;
    }
    return (full * have) / want;
  }

  /** Progress of a running job at `now`: saved steps honour the checkpoint interval. */
  private progressAt(s: JobState, run: MutableRun, finishing: boolean): { progress: JobProgress; lostSteps: number } {
    const ran = this.now - run.startTime;
    const working = Math.max(0, this.now - run.workStart);
    const doneNow = Math.min(s.spec.totalSteps, s.progress.stepsDone + run.rate * working);
    let saved = doneNow;
    const interval = s.spec.checkpointIntervalSeconds;
    // An infinite interval: the job never saves on its own, so a stop loses the whole attempt.
    if (!finishing && interval !== undefined && interval > 0) saved = Number.isFinite(interval) ? s.progress.stepsDone + run.rate * Math.floor(working / interval) * interval : s.progress.stepsDone;
    const progress: JobProgress = {
      ...s.progress,
      stepsDone: saved,
      runSeconds: s.progress.runSeconds + ran,
      attainedGpuSeconds: s.progress.attainedGpuSeconds + ran * run.gpus,
    };
    return { progress, lostSteps: doneNow - saved };
  }

  private release(s: JobState, run: MutableRun): void {
    for (const t of run.bindings) this.cluster.release(t.placement);
    const i = indexById(this.running, s.spec.id);
    if (this.running[i]?.spec.id === s.spec.id) this.running.splice(i, 1);
    if (run.listed) this.stoppedSince.push(run);
    else {
      // Begun and ended between two snapshots: the next one need not hear of it.
      const k = this.startedSince.indexOf(run);
      if (k >= 0) this.startedSince.splice(k, 1);
    }
    this.ledger.remove(s.spec.queue, run.model, run.gpus);
    this.changeUsage(s.spec, run.gpus, -1);
    this.allocatedGpus -= run.gpus;
    s.running = undefined;
    s.version++;
  }

  private stop(s: JobState, reason: string): void {
    const run = s.running as MutableRun;
    const { progress, lostSteps } = this.progressAt(s, run, false);
    this.release(s, run);
    s.progress = { ...progress, preemptions: progress.preemptions + 1 };
    this.addPending(s);
    const lostGpuSeconds = run.rate > 0 ? (lostSteps / run.rate) * run.gpus : 0;
    this.opts.onEvent?.({ type: 'job:preempted', time: this.now, job: s.spec, reason, lostSteps, lostGpuSeconds });
  }

  /** The job ends: done, or (`timedOut`) stopped at its time limit with the steps it had. */
  private finish(s: JobState, timedOut = false): void {
    const run = s.running as MutableRun;
    const { progress } = this.progressAt(s, run, true);
    this.release(s, run);
    s.progress = timedOut ? progress : { ...progress, stepsDone: s.spec.totalSteps };
    const done: FinishedJob = { spec: s.spec, finishTime: this.now, progress: s.progress, model: run.model, ...(timedOut ? { timedOut: true as const } : {}) };
    this.finishedJobs.push(done);
    this.recentlyFinished.push(done);
    this.jobs.delete(s.spec.id);
    if (timedOut) this.timedOut++;
    this.opts.onEvent?.({ type: timedOut ? 'job:timedout' : 'job:finished', time: this.now, job: s.spec, progress: s.progress });
  }

  private decayed(u: { value: number[]; at: number; held: number[] }, t: number): number[] {
    // usage(t) = usage(at)·d + held·∫ decay, with d = 2^(−Δ/halfLife)
    const dt = t - u.at;
    if (dt <= 0) return u.value;
    const k = Math.LN2 / this.halfLife;
    const d = Math.exp(-k * dt);
    return u.value.map((v, i) => v * d + ((u.held[i] as number) * (1 - d)) / k);
  }

  /** A run of the tenant's job starts (sign 1) or stops (−1) holding `gpus` GPUs and their share of its CPU and memory. */
  private changeUsage(spec: JobSpec, gpus: number, sign: 1 | -1): void {
    let cpu = 0;
    let mem = 0;
    for (const g of spec.groups) {
      cpu += (g.replicas * g.task.cpuMilli) / 1000;
      mem += g.replicas * g.task.memoryMib;
    }
    const full = jobGpus(spec);
    const part = full > 0 ? gpus / full : 1;
    const delta = [sign * gpus, sign * cpu * part, sign * mem * part];
    const u = this.usage.get(spec.tenant) ?? { value: [0, 0, 0], at: this.now, held: [0, 0, 0] };
    this.usage.set(spec.tenant, { value: this.decayed(u, this.now), at: this.now, held: u.held.map((h, i) => h + (delta[i] as number)) });
  }
}

/** Runs a simulation to its end and returns it. */
export function simulate(opts: SimOptions): Simulation {
  return new Simulation(opts).run();
}
