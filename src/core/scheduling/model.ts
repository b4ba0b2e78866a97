/**
 * Tide's job-level domain model: jobs made of task groups (gangs), queues with quotas, and the
 * progress a job has made. Pure data, no I/O. Times are seconds on the caller's clock (virtual
 * in the simulator, wall clock in the server). Task resources reuse core/model.ts shapes.
 */
import type { Branded, GpuModel, NodeId, Placement, TaskRequest } from '../model.ts';

export type JobId = Branded<string, 'JobId'>;
export const jobId = (s: string): JobId => s as JobId;

/** What one task of a group asks for (a TaskRequest without its id; ids are `job/group/index`). */
export type TaskResources = Omit<TaskRequest, 'id'>;

/**
 * A gang: `replicas` identical tasks that start together or not at all. An elastic group may
 * start with as few as `minReplicas` (default: `replicas`, i.e. not elastic).
 */
export interface TaskGroupSpec {
  readonly name: string;
  readonly replicas: number;
  readonly minReplicas?: number;
  readonly task: TaskResources;
}

/** Well-known priority classes (Kubernetes PriorityClass-like); any integer priority is allowed. */
export const PRIORITY_CLASSES: Readonly<Record<string, number>> = { low: 0, normal: 100, high: 1000, critical: 10000 };

export interface JobSpec {
  readonly id: JobId;
  readonly tenant: string;
  /** The ClusterQueue the job is submitted to (its quota). */
  readonly queue: string;
  readonly priorityClass: string;
  /** Higher runs first; normally PRIORITY_CLASSES[priorityClass]. */
  readonly priority: number;
  /** When the job was submitted (seconds). */
  readonly submitTime: number;
  readonly groups: readonly TaskGroupSpec[];
  /**
   * Total work in steps (iterations). With `throughput` it gives the true run time, which a
   * real scheduler does not know: only the simulator and policies named `oracle` read it.
   */
  readonly totalSteps: number;
  /**
   * Steps per second of the whole job with all its tasks on GPUs of a model; a model that is
   * missing (or 0) cannot run the job. For CPU-only jobs use the key `cpu`.
   */
  readonly throughput: Readonly<Record<GpuModel, number>>;
  /** Progress is saved every this many seconds of running; absent: saved continuously (nothing lost on preemption). */
  readonly checkpointIntervalSeconds?: number;
  /** Seconds lost at every (re)start before progress resumes (loading the checkpoint). */
  readonly restartCostSeconds?: number;
  readonly preemptible: boolean;
  /** Times the job may be preempted (its budget; absent: the scheduler's `maxPreemptions`). At its budget it keeps its GPUs until it ends. */
  readonly maxPreemptions?: number;
  /** The user's declared run-time limit (usually an over-estimate); the only run-time figure a policy may use. */
  readonly timeLimitSeconds?: number;
  /** A label for "similar jobs" (e.g. the model being trained); policies may learn from its history. */
  readonly jobType?: string;
  /** Fair-share weight of the job (default 1). */
  readonly weight?: number;
  /**
   * Energy: the slowdown its owner accepts (a fraction, e.g. 0.05) for a power cap that saves
   * energy (the `powercap` stage; absent: the stage's default; 0: never capped).
   */
  readonly maxSlowdown?: number;
  /** Energy: may wait for cheaper or lower-carbon hours (the `timeshift` stage), never past `deadline`. */
  readonly deferrable?: boolean;
  /** When it must be done by (seconds, the caller's clock); with `deferrable`, bounds how long it may wait. */
  readonly deadline?: number;
}

/** Key used in `throughput` for jobs that need no GPU. */
export const CPU_MODEL = 'cpu';

/** GPUs the job holds when every group runs at full size. */
export function jobGpus(job: Pick<JobSpec, 'groups'>): number {
  let gpus = 0;
  for (const g of job.groups) gpus += g.replicas * g.task.gpuCount;
  return gpus;
}

/** Milli-GPU the job holds at full size (fractional tasks count their share). */
export function jobGpuMilli(job: Pick<JobSpec, 'groups'>): number {
  let milli = 0;
  for (const g of job.groups) milli += g.replicas * g.task.gpuCount * g.task.gpuMilli;
  return milli;
}

/** The run time a real scheduler may assume for a job: its declared limit (Infinity when none). */
export function declaredRunSeconds(job: Pick<JobSpec, 'timeLimitSeconds'>): number {
  return job.timeLimitSeconds ?? Infinity;
}

export function minReplicas(g: TaskGroupSpec): number {
  return g.minReplicas ?? g.replicas;
}

/** GPUs the job holds at its minimum size (every elastic group at `minReplicas`). */
export function minJobGpus(job: Pick<JobSpec, 'groups'>): number {
  let gpus = 0;
  for (const g of job.groups) gpus += minReplicas(g) * g.task.gpuCount;
  return gpus;
}

/**
 * The sizes (in GPUs) the job can run at, smallest first: its minimum, then one more replica
 * of an elastic group at a time, in group order, up to full size.
 */
export function jobSizes(job: Pick<JobSpec, 'groups'>): number[] {
  let gpus = minJobGpus(job);
  const sizes = [gpus];
  for (const g of job.groups) {
    for (let r = minReplicas(g); r < g.replicas; r++) {
      gpus += g.task.gpuCount;
      if (g.task.gpuCount > 0) sizes.push(gpus);
    }
  }
  return sizes;
}

/** GPUs held by these bindings of the job (fewer than jobGpus when an elastic group runs short). */
export function boundGpus(job: Pick<JobSpec, 'groups'>, bindings: readonly Pick<TaskBinding, 'group'>[]): number {
  let gpus = 0;
  for (const b of bindings) gpus += job.groups.find((g) => g.name === b.group)?.task.gpuCount ?? 0;
  return gpus;
}

/** Models the job can run on (throughput > 0), sorted by name for determinism. */
export function runnableModels(job: Pick<JobSpec, 'throughput'>): GpuModel[] {
  return Object.keys(job.throughput)
    .filter((m) => (job.throughput[m] ?? 0) > 0)
    .sort();
}

/** One task of a job bound to a node: the unit the agent launches. */
export interface TaskBinding {
  readonly group: string;
  /** Replica index within the group. */
  readonly index: number;
  readonly nodeId: NodeId;
  /** Node index and devices in the snapshot's `nodes`. */
  readonly placement: Placement;
}

/** Progress a job has made so far, as the store or simulator tracks it. */
export interface JobProgress {
  /** Steps that are safe (checkpointed, or all of them when checkpointing is continuous). */
  readonly stepsDone: number;
  /** GPU-seconds the job has held so far (all runs). */
  readonly attainedGpuSeconds: number;
  /** Seconds it has spent running (all runs, up to the snapshot, except as RunningJob notes). */
  readonly runSeconds: number;
  /** Times it was preempted. */
  readonly preemptions: number;
  /** When it first started, if ever. */
  readonly firstStartTime?: number;
}

/** A quota amount per GPU model, in GPUs. The key `*` counts GPUs of any model. */
export type GpuQuota = Readonly<Record<GpuModel | '*', number>>;

/**
 * A ClusterQueue (Kueue semantics): the GPUs its jobs may hold. Inside a cohort a queue may
 * borrow unused quota of the others, up to its `borrowingLimit`; it lends at most its
 * `lendingLimit`; lent quota is reclaimed (borrowers preempted) when the owner needs it.
 */
export interface QueueConfig {
  readonly name: string;
  readonly cohort?: string;
  /** Fair-share weight of the queue (default 1). */
  readonly weight?: number;
  readonly nominalQuota: GpuQuota;
  /** Per model: the most it may borrow above nominal (absent: unlimited within the cohort). */
  readonly borrowingLimit?: GpuQuota;
  /** Per model: the most of its nominal quota others may borrow (absent: all of it). */
  readonly lendingLimit?: GpuQuota;
}

export interface TenantConfig {
  readonly name: string;
  /** Fair-share weight (default 1). */
  readonly weight?: number;
}

/**
 * −1, 0 or 1 as x is below, equal to or above y. Comparators return this rather than x − y:
 * a fractional difference handed back to Array.prototype.sort is a heap number allocated per
 * comparison.
 */
export function ascending(x: number, y: number): number {
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Whether `s` is a decimal number without sign or point (the live store's job ids). */
function isDigits(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/**
 * The order of job ids in a snapshot's lists: ids that are decimal numbers (the live store's)
 * first, by their value (shorter first, then as text), then every other id as JavaScript orders
 * strings (the simulator's ids, which are padded). As text alone, the store's ids 99,999 and
 * 100,000 sort apart and a cycle's new ids fell all over a list of 100,000 pending jobs when the
 * open jobs' ids straddled a power of ten: every waiting table was rebuilt each cycle.
 */
export function compareJobIds(a: string, b: string): number {
  if (a === b) return 0;
  const an = isDigits(a);
  if (an !== isDigits(b)) return an ? -1 : 1;
  if (an && a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a < b ? -1 : 1;
}

/** The order of a snapshot's job lists: by their jobs' ids (compareJobIds). */
export function byJobId(a: { readonly spec: { readonly id: string } }, b: { readonly spec: { readonly id: string } }): number {
  return compareJobIds(a.spec.id, b.spec.id);
}

/** Where the job `id` is, or goes, in a list sorted by job id (compareJobIds). */
export function indexById<T extends { readonly spec: JobSpec }>(list: readonly T[], id: string): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (compareJobIds((list[mid] as T).spec.id, id) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
