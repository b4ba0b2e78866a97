/**
 * The port between the live server and a job scheduler: a pure `cycle(snapshot) → plan`. The
 * server builds the snapshot from its store and applies the plan; the scheduler does no I/O and
 * reads the time only from the snapshot, so the simulator can run the same code.
 */
import type { JobSpec } from '../../api/spec.ts';

export interface SnapshotNode {
  readonly id: string;
  readonly cpuMilli: number;
  readonly memoryMib: number;
  /** GPU model per device index. */
  readonly gpus: readonly string[];
}

/** A task that holds resources now. */
export interface SnapshotAllocation {
  readonly jobId: string;
  readonly index: number;
  readonly node: string;
  readonly gpus: readonly number[];
  readonly gpuMilli: number;
  readonly cpuMilli: number;
  readonly memoryMib: number;
}

export interface SnapshotJob {
  readonly id: string;
  readonly tenant: string;
  readonly queue: string;
  readonly priority: number;
  readonly state: 'pending' | 'admitted' | 'running' | 'preempted';
  readonly attempt: number;
  readonly createdAt: number;
  readonly startedAt: number | null;
  readonly preemptible: boolean;
  readonly spec: JobSpec;
}

export interface SnapshotQueue {
  readonly name: string;
  readonly gpuQuota: number | null;
  readonly borrowingLimit: number | null;
}

export interface SchedulingSnapshot {
  readonly now: number;
  readonly nodes: readonly SnapshotNode[];
  readonly allocations: readonly SnapshotAllocation[];
  /** Unfinished jobs, oldest first. */
  readonly jobs: readonly SnapshotJob[];
  readonly queues: readonly SnapshotQueue[];
}

export interface PlannedTask {
  readonly index: number;
  readonly node: string;
  readonly gpus: readonly number[];
  readonly gpuMilli: number;
}

export interface SchedulePlan {
  /** Pending jobs to start, each with a placement for every task (a gang is all or nothing). */
  readonly binds: readonly { readonly jobId: string; readonly attempt: number; readonly tasks: readonly PlannedTask[] }[];
  /** Running jobs to stop and requeue, with the reason shown to their owner. */
  readonly preemptions: readonly { readonly jobId: string; readonly reason: string }[];
  /** Why each job left pending stays pending (Slurm-style reason first), and when it may start. */
  readonly pending: readonly { readonly jobId: string; readonly reason: string; readonly estimatedStart: number | null }[];
}

export interface JobScheduler {
  readonly name: string;
  cycle(snapshot: SchedulingSnapshot): SchedulePlan;
}
