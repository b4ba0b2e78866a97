/**
 * The contract between Tide's job scheduling core and whoever runs it (the simulator on a
 * virtual clock, the server on the wall clock): a snapshot of the cluster and its jobs goes in,
 * a plan comes out. Nothing in a scheduler knows which of the two is calling it.
 *
 * A scheduler object may keep state between cycles (e.g. Gavel's allocation and round
 * counters); it is created once per cluster by its factory and must be deterministic given
 * the same snapshots and seed.
 */
import type { GpuModel, NodeSpec } from '../model.ts';
import type { Rng } from '../rng.ts';
import type { LpSolver } from '../lp.ts';
import type { PendingReasonCode } from './reasons.ts';
import type { JobId, JobProgress, JobSpec, QueueConfig, TaskBinding, TaskResources, TenantConfig } from './model.ts';

export interface NodeState {
  readonly spec: NodeSpec;
  /** False when cordoned, draining, down or failed: nothing new is bound there. */
  readonly schedulable: boolean;
  /**
   * The node's power as the cluster reports it (the live server: suspended and resuming nodes);
   * absent where the caller keeps no such record (the simulator), and the consolidate stage
   * keeps its own. `waking` nodes run work from `readyAt` (an estimate, seconds).
   */
  readonly power?: 'on' | 'off' | 'waking';
  readonly readyAt?: number;
}

export interface RunningJob {
  readonly spec: JobSpec;
  /**
   * Progress when the current run started (so the object can stay the same between cycles):
   * it has run `progress.runSeconds + (now − startTime)` seconds in all.
   */
  readonly progress: JobProgress;
  readonly bindings: readonly TaskBinding[];
  /** The GPU model it runs on (CPU_MODEL for CPU-only jobs). */
  readonly model: GpuModel;
  /** When the current run started. */
  readonly startTime: number;
  /** When its progress was last saved (startTime if never since the start). */
  readonly lastCheckpointTime: number;
  /** GPUs it holds in this run: jobGpus(spec), or fewer for an elastic job below full size. */
  readonly gpus: number;
  /** It has been asked to stop (preempted, its tasks exiting): its GPUs are on their way back. */
  readonly stopping?: boolean;
}

export interface PendingJob {
  readonly spec: JobSpec;
  readonly progress: JobProgress;
  /**
   * Identical jobs that wait together as this one entry (the live server's array elements):
   * `spec` is the shape of each. Only a scheduler that `folds` is given a count above 1; it may
   * bind the entry up to `count` times, one JobBind each, every one naming `spec.id` and its
   * `member`, and gives it one PendingReason for the members it does not bind.
   * Absent: 1.
   */
  readonly count?: number;
}

/** A job that finished since the previous cycle (for history of similar jobs and accounting). */
export interface FinishedJob {
  readonly spec: JobSpec;
  readonly finishTime: number;
  readonly progress: JobProgress;
  readonly model: GpuModel;
  /** Stopped at its time limit rather than done. */
  readonly timedOut?: true;
}

/** Decayed usage of a tenant (the caller decays it with a half-life; see fairShare.ts). */
export interface UsageRecord {
  readonly name: string;
  readonly gpuSeconds: number;
  /** CPU core-seconds, when tracked (for dominant resource fairness). */
  readonly cpuSeconds?: number;
  /** MiB-seconds of memory, when tracked. */
  readonly memoryMibSeconds?: number;
}

export interface SchedulerSnapshot {
  /** Seconds on the caller's clock. */
  readonly now: number;
  /** Every node, schedulable or not; TaskBinding placements index into this array. */
  readonly nodes: readonly NodeState[];
  /**
   * Sorted by job id (model.ts compareJobIds: decimal ids by value, then the others as JavaScript
   * orders strings). A job whose run has not changed may be passed
   * as the same object cycle after cycle; schedulers use that to skip work.
   */
  readonly running: readonly RunningJob[];
  /** Sorted by job id. */
  readonly pending: readonly PendingJob[];
  /** Empty: no quotas are enforced. */
  readonly queues: readonly QueueConfig[];
  readonly tenants?: readonly TenantConfig[];
  readonly tenantUsage?: readonly UsageRecord[];
  readonly finished?: readonly FinishedJob[];
  /**
   * Optional: the tasks the cluster expects (e.g. recent submissions', one entry per task), from
   * which fragmentation-aware placement (`fgd`, `tide`) builds its target workload. Pass the same
   * array while it is unchanged: a new one rebuilds the placement session. Absent: none.
   */
  readonly targetTasks?: readonly TaskResources[];
  /** The caller's number for this snapshot (increasing), for `runningDelta`. */
  readonly seq?: number;
  /**
   * Optional: the runs that ended and began since the snapshot numbered `runningDelta.since`.
   * A scheduler that saw that snapshot may apply these instead of comparing the running lists
   * (for callers that keep one running list and change it in place); `running` stays the truth.
   */
  readonly runningDelta?: RunningDelta;
  /**
   * Optional: GPUs that services keep from lending (lending.ts). A queue's quota beyond what its
   * services keep is lent to the cohort; when the kept GPUs rise, borrowers are reclaimed.
   */
  readonly reservations?: readonly Reservation[];
}

/** GPUs of a queue's nominal quota a service keeps from lending (its autoscaler's keepGpus). */
export interface Reservation {
  /** The service (its job id), named in reasons and events. */
  readonly service: string;
  readonly queue: string;
  /** GPUs the service must not lend (its replicas and the ones it expects to start). */
  readonly keepGpus: number;
  /** The running jobs that are its replicas (their GPUs count towards keepGpus). */
  readonly replicas: readonly JobId[];
  /** The rise is needed now: borrowers are stopped at once (no checkpoint), not after a planned one. */
  readonly urgent: boolean;
  /** Why (the autoscaler's reason), for the eviction's reason. */
  readonly reason: string;
}

export interface RunningDelta {
  readonly since: number;
  /** Runs that ended (the objects of the earlier snapshot), then runs that began; a moved job is in both. */
  readonly stopped: readonly RunningJob[];
  readonly started: readonly RunningJob[];
}

/** Start a job: one binding per task (every task of every group, or `minReplicas` of an elastic group). */
export interface JobBind {
  readonly job: JobId;
  readonly model: GpuModel;
  readonly bindings: readonly TaskBinding[];
  /** Of a folded entry (PendingJob.count): which of its jobs, from 0 in the order the scheduler chose them (absent: the next). */
  readonly member?: number;
}

export interface Preemption {
  readonly job: JobId;
  readonly reason: string;
  /**
   * Set when lent GPUs are taken back for a service (lending.ts): `planned` stops the job with
   * its grace period (it checkpoints), `immediate` stops it at once (work since its last
   * checkpoint is lost).
   */
  readonly reclaim?: 'planned' | 'immediate';
  /** With `reclaim`: the service the GPUs are taken back for. */
  readonly lender?: string;
}

/** Why a job is not running: one of the documented codes (reasons.ts). */
export type { PendingReasonCode } from './reasons.ts';

export interface PendingReason {
  readonly job: JobId;
  readonly code: PendingReasonCode;
  /** One line for people, e.g. "needs 8 GPUs, 3 free on V100". */
  readonly message: string;
  /** Estimated start time (seconds), when one can be given. */
  readonly estimatedStart?: number;
  /**
   * The job the message names as the one it waits behind or for, if any: the server shows that
   * id only to the job's own tenant (reasons.ts anonymousMessage for others).
   */
  readonly blockedBy?: JobId;
}

/**
 * What to change now. Preemptions apply first, then binds; a job may appear in both (it moves).
 * Running jobs not preempted keep running where they are. Every pending job that is not bound
 * gets exactly one PendingReason, and so does every preempted job that is not re-bound; a
 * folded entry (PendingJob.count) gets one when fewer than its count are bound.
 */
export interface SchedulePlan {
  readonly binds: readonly JobBind[];
  readonly preemptions: readonly Preemption[];
  readonly pending: readonly PendingReason[];
  /** Call the scheduler again at this time even if nothing happens (e.g. the next round). */
  readonly wakeAt?: number;
}

export interface JobScheduler {
  readonly name: string;
  /**
   * It takes pending entries that stand for several identical jobs (PendingJob.count), so a
   * cycle costs what the entries cost, not each job of an array: Slurm keeps a pending array as
   * one record for the same reason. A caller folds only for a scheduler that says so.
   */
  readonly folds?: boolean;
  cycle(snapshot: SchedulerSnapshot): SchedulePlan;
}

/** What a scheduler is built with. */
export interface JobSchedulerContext {
  /** Seeded; the scheduler's only source of randomness. */
  readonly rng: Rng;
  /** For policies that solve linear programmes (Gavel's max-min fair share). */
  readonly lp?: LpSolver;
  /** Name of the placement policy for tasks (core/placement registry); default 'bestfit'. */
  readonly placement?: string;
  /** Policy-specific options (e.g. round length). */
  readonly options?: Readonly<Record<string, number | string | boolean>>;
}

export type JobSchedulerFactory = (ctx: JobSchedulerContext) => JobScheduler;
