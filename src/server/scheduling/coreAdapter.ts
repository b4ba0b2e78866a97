/**
 * Runs the jobs core (src/core/scheduling: the same schedulers the simulator runs) on the store's
 * state: translates a StoreSnapshot into the core's SchedulerSnapshot (seconds, node indices,
 * per-group replica bindings) and the core's SchedulePlan back into store terms. Objects for
 * unchanged nodes and running jobs are reused between cycles, which the core's incremental
 * ClusterView relies on to make a cycle cost O(changes).
 */
import { nodeId, type GpuModel, type NodeSpec, type Placement } from '../../core/model.ts';
import { Rng } from '../../core/rng.ts';
import { boundGpus, CPU_MODEL, jobId, type JobSpec as CoreJob, type QueueConfig as CoreQueue, type TaskBinding } from '../../core/scheduling/model.ts';
import { getJobScheduler, jobSchedulerNames } from '../../core/scheduling/policies/index.ts';
import type { JobScheduler, NodeState, PendingJob, PendingReason, RunningJob, SchedulePlan, SchedulerSnapshot } from '../../core/scheduling/scheduler.ts';
import { anonymousMessage } from '../../core/scheduling/reasons.ts';
import type { Job } from '../../api/types.ts';
import type { ActiveTask, AppliedPlan, QueueConfig, StoreSnapshot } from '../../store/store.ts';
import { UserError } from '../../util/errors.ts';
import type { LpSolver } from '../../core/lp.ts';
import { highsSolver } from '../../lp/highsSolver.ts';

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

export class CoreSchedulerAdapter {
  readonly scheduler: JobScheduler;
  private nodesKey = '';
  private nodes: NodeState[] = [];
  private readonly running = new Map<string, { key: string; job: RunningJob }>();
  private readonly specs = new Map<string, { key: string; spec: CoreJob }>();

  constructor(schedulerName: string, placement: string, options: SchedulerOptions = {}, lp?: LpSolver, seed = 42) {
    const factory = getJobScheduler(schedulerName);
    if (!factory) throw new UserError(`unknown scheduler '${schedulerName}' (known: ${jobSchedulerNames().join(', ')})`);
    this.scheduler = factory({ rng: Rng.fromSeed(seed), placement, options, ...(lp ? { lp } : {}) });
  }

  /** Builds the adapter, loading the HiGHS LP solver only for schedulers that need one (gavel, las). */
  static async create(schedulerName: string, placement: string, options: SchedulerOptions = {}): Promise<CoreSchedulerAdapter> {
    try {
      return new CoreSchedulerAdapter(schedulerName, placement, options);
    } catch (e) {
      if (!/LP solver/.test((e as Error).message)) throw e;
      return new CoreSchedulerAdapter(schedulerName, placement, options, await highsSolver());
    }
  }

  /** One cycle: store snapshot in, store plan out. `nowMs` is the wall clock. */
  plan(s: StoreSnapshot, nowMs: number): AppliedPlan {
    const snapshot = this.translate(s, nowMs);
    const plan = this.scheduler.cycle(snapshot);
    return this.back(plan, s, snapshot);
  }

  translate(s: StoreSnapshot, nowMs: number): SchedulerSnapshot {
    const key = JSON.stringify(s.nodes.map((n) => [n.id, n.state, n.cpuMilli, n.memoryMib, n.gpus.map((g) => g.model)]));
    if (key !== this.nodesKey) {
      this.nodesKey = key;
      // Placements hold node indices: a node joining (or leaving) shifts them, so cached runs are stale.
      this.running.clear();
      this.nodes = s.nodes.map((n) => ({
        spec: { id: nodeId(n.id), cpuMilli: n.cpuMilli, memoryMib: n.memoryMib, gpus: n.gpus.map((g) => g.model) } satisfies NodeSpec,
        schedulable: n.state === 'ready',
      }));
    }
    const nodeIndex = new Map(this.nodes.map((n, i) => [n.spec.id as string, i]));
    const models = [...new Set(s.nodes.flatMap((n) => n.gpus.map((g) => g.model)))].sort();
    const tasksByJob = new Map<string, ActiveTask[]>();
    for (const t of s.activeTasks) {
      const list = tasksByJob.get(t.jobId) ?? [];
      list.push(t);
      tasksByJob.set(t.jobId, list);
    }
    const running: RunningJob[] = [];
    const pending: PendingJob[] = [];
    const seen = new Set<string>();
    for (const job of s.openJobs) {
      const spec = this.coreSpec(job, models);
      const tasks = tasksByJob.get(job.id);
      if (job.state === 'pending') {
        pending.push({ spec, progress: { stepsDone: 0, attainedGpuSeconds: 0, runSeconds: 0, preemptions: job.attempt } });
        continue;
      }
      if (!tasks || tasks.length === 0) continue;
      const bindings = this.bindings(job, tasks, nodeIndex);
      const runKey = `${job.attempt}|${JSON.stringify(bindings.map((b) => [b.nodeId, b.placement.gpus]))}`;
      seen.add(job.id);
      const cached = this.running.get(job.id);
      if (cached && cached.key === runKey) {
        running.push(cached.job);
        continue;
      }
      const firstGpu = tasks.find((t) => t.gpus.length > 0);
      const model: GpuModel = firstGpu ? (s.nodes.find((n) => n.id === firstGpu.node)?.gpus[firstGpu.gpus[0] as number]?.model ?? CPU_MODEL) : CPU_MODEL;
      const start = (job.startedAt ?? job.createdAt) / 1000;
      const r: RunningJob = {
        spec,
        progress: { stepsDone: 0, attainedGpuSeconds: 0, runSeconds: 0, preemptions: job.attempt },
        bindings,
        model,
        startTime: start,
        lastCheckpointTime: start,
        gpus: boundGpus(spec, bindings),
      };
      this.running.set(job.id, { key: runKey, job: r });
      running.push(r);
    }
    for (const id of this.running.keys()) if (!seen.has(id)) this.running.delete(id);
    const byId = (a: { spec: CoreJob }, b: { spec: CoreJob }): number => (a.spec.id < b.spec.id ? -1 : a.spec.id > b.spec.id ? 1 : 0);
    running.sort(byId);
    pending.sort(byId);
    return { now: nowMs / 1000, nodes: this.nodes, running, pending, queues: coreQueues(s.queues) };
  }

  private coreSpec(job: Job, models: readonly string[]): CoreJob {
    const key = `${job.attempt}|${models.join(',')}`;
    const cached = this.specs.get(job.id);
    if (cached && cached.key === key) return cached.spec;
    const gpuJob = job.spec.groups.some((g) => g.gpuCount > 0);
    let allowed = [...models];
    for (const g of job.spec.groups) if (g.gpuModels.length > 0) allowed = allowed.filter((m) => g.gpuModels.includes(m));
    const throughput: Record<string, number> = {};
    if (!gpuJob) throughput[CPU_MODEL] = 1;
    for (const m of allowed) throughput[m] = 1;
    const spec: CoreJob = {
      id: jobId(job.id),
      tenant: job.tenant,
      queue: job.queue,
      priorityClass: 'custom',
      priority: job.priority,
      submitTime: job.createdAt / 1000,
      groups: job.spec.groups.map((g) => ({
        name: g.name,
        replicas: g.replicas,
        task: { cpuMilli: g.cpuMilli, memoryMib: g.memoryMib, gpuCount: g.gpuCount, gpuMilli: g.gpuMilli, allowedModels: g.gpuModels },
      })),
      // The live server does not know a job's work or speed; only the simulator and oracle policies read these.
      totalSteps: 1,
      throughput,
      preemptible: job.spec.preemptible,
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

  private back(plan: SchedulePlan, s: StoreSnapshot, snapshot: SchedulerSnapshot): AppliedPlan {
    const jobs = new Map(s.openJobs.map((j) => [j.id, j]));
    const binds: { jobId: string; attempt: number; tasks: { index: number; node: string; gpus: readonly number[]; gpuMilli: number }[] }[] = [];
    for (const b of plan.binds) {
      const job = jobs.get(b.job);
      if (!job) continue;
      binds.push({
        jobId: b.job,
        attempt: job.attempt,
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
      preemptions: plan.preemptions.map((p) => ({ jobId: p.job, reason: p.reason })),
      pending: plan.pending.map((p) => ({
        jobId: p.job,
        reason: `${p.code}: ${readerMessage(p, jobs)}`,
        estimatedStart: p.estimatedStart === undefined || !Number.isFinite(p.estimatedStart) ? null : Math.round(p.estimatedStart * 1000),
      })),
    };
  }
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

/** Tide's queues as Kueue ClusterQueues in one cohort, so queues borrow each other's unused quota. */
export function coreQueues(queues: readonly QueueConfig[]): CoreQueue[] {
  if (!queues.some((q) => q.gpuQuota !== null)) return [];
  return queues.map((q) => ({
    name: q.name,
    cohort: 'cluster',
    nominalQuota: { '*': q.gpuQuota ?? UNLIMITED },
    ...(q.borrowingLimit !== null ? { borrowingLimit: { '*': q.borrowingLimit } } : {}),
    ...(q.gpuQuota === null ? { lendingLimit: { '*': 0 } } : {}),
  }));
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
