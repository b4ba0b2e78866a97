/** The shapes the HTTP API returns; the CLI and any dashboard import only these. */
import type { JobSpec } from './spec.ts';

/**
 * Job lifecycle: pending → admitted (placed, tasks handed to agents) → running (every task
 * started) → succeeded | failed | cancelled | timeout. A preempted job (or one whose node was
 * lost) is stopped and then requeued: it goes back to pending with its attempt number raised. A
 * job whose running time over all attempts reaches its `timeLimit` is stopped (SIGTERM, grace
 * period, SIGKILL) and ends `timeout`, never requeued (server/timeLimits.ts).
 */
export const JOB_STATES = ['pending', 'admitted', 'running', 'preempted', 'succeeded', 'failed', 'cancelled', 'timeout'] as const;
export type JobState = (typeof JOB_STATES)[number];
export const TERMINAL_JOB_STATES: readonly JobState[] = ['succeeded', 'failed', 'cancelled', 'timeout'];

/**
 * Task lifecycle: pending → assigned (bound to a node and GPUs) → running → succeeded | failed,
 * or → stopping (asked to stop) → stopped. A task holds its node's resources from assigned
 * until it has exited.
 */
export const TASK_STATES = ['pending', 'assigned', 'running', 'stopping', 'succeeded', 'failed', 'stopped'] as const;
export type TaskState = (typeof TASK_STATES)[number];
export const ACTIVE_TASK_STATES: readonly TaskState[] = ['assigned', 'running', 'stopping'];

export interface Job {
  readonly id: string;
  readonly tenant: string;
  readonly name: string;
  readonly queue: string;
  readonly priority: number;
  readonly kind: JobSpec['kind'];
  readonly state: JobState;
  /** Why the job is pending (or why it ended), in words. */
  readonly reason: string | null;
  readonly attempt: number;
  readonly gpus: number;
  readonly tasks: number;
  readonly createdAt: number;
  /** When the current (or, for a finished job, the last) attempt started running; null while pending. */
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
  /** Estimated start (ms since epoch) for pending jobs, when the scheduler gives one. */
  readonly estimatedStart: number | null;
  readonly clientKey: string | null;
  /** Seconds the job ran in its earlier attempts (the current run is `now - startedAt` on top). */
  readonly runSeconds: number;
  /** What the job last reported of its progress (TIDE_PROGRESS_FILE), if it ever did. */
  readonly progress: JobProgressReport | null;
  /** It runs on GPUs its queue borrows from its cohort (lent by another queue, e.g. a service's): reclaimed first. */
  readonly borrowed?: boolean;
  /** A service's replica: the service's job id (null otherwise). */
  readonly serviceId?: string | null;
  /** An array's element: the array's id (GET /v1/arrays/:id; null otherwise). */
  readonly arrayId?: string | null;
  /**
   * An array's job: its first element's index, and how many elements from there it stands for (1
   * once placed; more while the array's rest waits together, as Slurm shows `7_[5-999]`).
   */
  readonly arrayIndex?: number;
  readonly arrayCount?: number;
  /** The power limit per GPU (W) its current (or last) attempt runs at: its own powerCapWatts, or the powercap stage's choice. */
  readonly powerCapWatts?: number;
  readonly spec: JobSpec;
}

/**
 * A batch array (Slurm's ArrayJobId, Kueue's Job with completions): one row over its elements,
 * each a job of its own (`name-i`, TIDE_ARRAY_INDEX=i) that names it in `arrayId`.
 */
export interface JobArray {
  readonly id: string;
  readonly tenant: string;
  readonly name: string;
  readonly queue: string;
  readonly size: number;
  readonly createdAt: number;
  /** Its first element's job id (all of them: GET /v1/jobs?array=ID). */
  readonly firstJobId: string | null;
  /** Its elements by state, every state named (0 where none). */
  readonly counts: Readonly<Record<JobState, number>>;
  /** Its elements not finished yet (pending, admitted, running, preempted). */
  readonly unfinished: number;
}

/** One replica of a service, as GET /v1/jobs/:id shows it (and the router reads it). */
export interface ServiceReplica {
  /** The replica's own job. */
  readonly id: string;
  readonly state: JobState;
  readonly attempt: number;
  readonly node: string | null;
  /** http://HOST:PORT of the replica (its node's address, its port), once placed. */
  readonly url: string | null;
  /** Its readiness check answered 200 in this attempt: it takes requests. */
  readonly ready: boolean;
  readonly startedAt: number | null;
}

/** A service's state (GET /v1/jobs/:id of a `kind: service` job). */
export interface ServiceStatus {
  readonly minReplicas: number;
  readonly maxReplicas: number;
  /** Replicas its autoscaler wants now. */
  readonly desiredReplicas: number;
  /** GPUs of its queue it keeps from lending; the rest is lent to its cohort. */
  readonly keepGpus: number;
  readonly urgent: boolean;
  /** The autoscaler's last reason, and when it decided (ms since epoch). */
  readonly reason: string | null;
  readonly decidedAt: number | null;
  readonly replicas: readonly ServiceReplica[];
  /** The rate history imported from before Tide ran it (PUT /v1/jobs/{id}/history): points, first and last time (s), when; null: none. */
  readonly history?: { readonly points: number; readonly fromSeconds: number; readonly toSeconds: number; readonly updatedAt: number } | null;
}

/**
 * Progress as a job reports it: a task writes JSON `{"step", "totalSteps"?, "checkpointStep"?}`
 * to `TIDE_PROGRESS_FILE`; the agent forwards it with its heartbeat. `checkpointAt` is when the
 * server first saw `checkpointStep` at its current value (ms since epoch); `at` when it saw the
 * report. The scheduler counts the work at risk in a preemption as the steps since
 * `checkpointStep`, or the running time since `checkpointAt` (or the start).
 */
export interface JobProgressReport {
  readonly step: number;
  readonly totalSteps: number | null;
  readonly checkpointStep: number | null;
  readonly checkpointAt: number | null;
  readonly at: number;
}

export interface Task {
  readonly jobId: string;
  readonly index: number;
  readonly group: string;
  readonly attempt: number;
  /** Unique per attempt: what the agent knows the process by. */
  readonly runId: string;
  readonly state: TaskState;
  readonly node: string | null;
  readonly gpus: readonly number[];
  readonly gpuMilli: number;
  readonly exitCode: number | null;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
}

/**
 * One run of one task (an attempt), kept after a requeue: where it ran, on which GPUs, when, and
 * how it ended. `endReason`: 'exited' (ended by itself; exitCode says how), 'stopped' (asked to
 * stop: the job was preempted, cancelled or timed out), 'start-failed', 'fenced' (its agent lost
 * the server), 'node-lost', 'vanished' (its agent no longer knew it); null while it runs.
 */
export interface TaskAttempt {
  readonly taskIndex: number;
  readonly attempt: number;
  readonly runId: string;
  readonly node: string;
  readonly gpus: readonly number[];
  readonly gpuMilli: number;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
  readonly exitCode: number | null;
  readonly endReason: 'exited' | 'stopped' | 'start-failed' | 'fenced' | 'node-lost' | 'vanished' | null;
}

/** What a task writes to TIDE_PROGRESS_FILE, as the agent forwards it (non-negative integers). */
export interface TaskProgress {
  readonly step: number;
  readonly totalSteps?: number;
  readonly checkpointStep?: number;
}

export interface GpuInfo {
  readonly index: number;
  readonly model: string;
  readonly memoryMib: number;
  readonly uuid: string;
}

/** What an agent registers: its node's address and capacity (validated by api/agentSchema.ts). */
export interface NodeRegistration {
  readonly id: string;
  readonly address: string;
  readonly cpuMilli: number;
  readonly memoryMib: number;
  readonly gpus: readonly GpuInfo[];
  readonly simulated: boolean;
}

export interface GpuTelemetry {
  readonly index: number;
  readonly utilization: number;
  readonly memoryUsedMib: number;
  readonly powerWatts: number;
}

/** suspended: powered down by consolidation (Slurm's power saving); resuming: asked to power up, not back yet. */
export type NodeState = 'ready' | 'lost' | 'drained' | 'suspended' | 'resuming';
export const NODE_STATES: readonly NodeState[] = ['ready', 'drained', 'lost', 'suspended', 'resuming'];

export interface NodeInfo {
  readonly id: string;
  readonly state: NodeState;
  readonly address: string;
  readonly cpuMilli: number;
  readonly memoryMib: number;
  readonly gpus: readonly GpuInfo[];
  readonly simulated: boolean;
  readonly lastHeartbeat: number;
  /** The last lease renewal (POST /v1/agent/lease, while a heartbeat waited on a busy server); absent: none yet. */
  readonly leaseRenewedAt?: number;
  readonly telemetry: readonly GpuTelemetry[];
  /** Milli-GPU in use per device index. */
  readonly gpuUsedMilli: readonly number[];
  readonly cpuUsedMilli: number;
  readonly memoryUsedMib: number;
  /** Suspended or resuming: since when (ms). */
  readonly powerAt?: number;
}

export interface QueueInfo {
  readonly name: string;
  /** Nominal GPU quota (whole GPUs); null for unlimited. */
  readonly gpuQuota: number | null;
  /** How many GPUs beyond its quota the queue may borrow from idle capacity; null for unlimited. */
  readonly borrowingLimit: number | null;
  /** The tenants that may submit to it; null when it is shared by all (a tenant sees only itself here). */
  readonly tenants: readonly string[] | null;
  readonly pending: number;
  readonly running: number;
  /** GPUs (milli) held by the queue's jobs now. */
  readonly usedGpuMilli: number;
  /** The cohort it lends to and borrows from (default `cluster`). */
  readonly cohort: string;
  /** Nominal quota per GPU model (`*`: any model), when given per model; else null (see gpuQuota). */
  readonly nominalQuota: Readonly<Record<string, number>> | null;
  /** Borrowing limit per GPU model, when given per model; else null (see borrowingLimit). */
  readonly borrowingLimits: Readonly<Record<string, number>> | null;
  /** The most of its quota others may borrow, per GPU model (`*`: any); null: all of it. */
  readonly lendingLimits: Readonly<Record<string, number>> | null;
  /** GPUs (milli) held by the queue's jobs now, per GPU model. */
  readonly usedGpuMilliByModel: Readonly<Record<string, number>>;
  /** GPUs of its quota that other queues of its cohort borrow now (e.g. a service's idle replicas' GPUs). */
  readonly lentGpus?: number;
  /** GPUs it uses beyond its nominal quota, borrowed from its cohort. */
  readonly borrowedGpus?: number;
}

export interface JobEvent {
  readonly id: number;
  readonly at: number;
  /** `job:submitted`, `job:admitted`, `task:started`, `node:lost`, … */
  readonly type: string;
  readonly jobId: string | null;
  readonly nodeId: string | null;
  readonly tenant: string | null;
  readonly message: string;
}

/** One task the server wants a node to run (the agent's desired state). */
export interface TaskAssignment {
  readonly runId: string;
  readonly jobId: string;
  readonly jobName: string;
  readonly taskIndex: number;
  readonly gangSize: number;
  readonly attempt: number;
  /** "run" to keep it running, "stop" to stop it (SIGTERM then SIGKILL after grace). */
  readonly action: 'run' | 'stop';
  readonly command: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly gpus: readonly number[];
  readonly gpuMilli: number;
  readonly memoryMib: number;
  readonly peers: readonly string[];
  readonly checkpointDir: string | null;
  readonly gracePeriodSeconds: number;
  /** The job's power cap per GPU (W): the agent sets it with `nvidia-smi -pl` (a dry run on simulated GPUs). */
  readonly powerCapWatts?: number;
  /**
   * A range of an array's elements (more than 1): the run is elements TIDE_ARRAY_INDEX …
   * TIDE_ARRAY_INDEX + arrayCount - 1, one process each with its own TIDE_ARRAY_INDEX, all in
   * the run's process group; it exits 0 when every one did (TaskReport.failedElements).
   */
  readonly arrayCount?: number;
}

/**
 * An agent's measured GPU energy (agent/energyMeter.ts, docs/energy.md): cumulative joules since
 * `epoch` began, as of its observation `seq`, so the server applies them idempotently.
 * nodeJ = Σ runs' energyJ (ever) + unallocatedJ; idleJ is the part of a run's energy spent while
 * its GPU read 0 % utilisation.
 */
export interface EnergyReport {
  readonly epoch: string;
  readonly seq: number;
  readonly nodeJ: number;
  readonly unallocatedJ: number;
  readonly runs: readonly { readonly runId: string; readonly energyJ: number; readonly idleJ: number }[];
}

/** What an agent says about one of its task processes. */
export interface TaskReport {
  readonly runId: string;
  readonly state: 'running' | 'exited';
  readonly pid: number | null;
  readonly exitCode: number | null;
  /** When the agent started the process (ms since epoch, the agent's clock); absent if it never started. */
  readonly startedAt?: number;
  /**
   * Why an exited task ended other than by itself: 'start-failed' (it never ran: the agent could
   * not start it, `message` says why) or 'fenced' (its agent stopped it after losing the server
   * for half the node lease). Absent for a task that exited on its own or was stopped as asked.
   */
  readonly reason?: 'start-failed' | 'fenced';
  readonly message?: string;
  /** The task's progress file, when it changed since the agent last had it acknowledged. */
  readonly progress?: TaskProgress;
  /** Of an exited range of array elements (TaskAssignment.arrayCount): how many exited non-zero. */
  readonly failedElements?: number;
}

export interface ApiErrorBody {
  readonly error: {
    readonly code: string;
    readonly message: string;
    readonly fields?: readonly { readonly path: string; readonly message: string }[];
  };
}

/** One cluster-wide telemetry sample (GET /v1/telemetry). */
export interface TelemetryPoint {
  readonly at: number;
  readonly gpus: number;
  readonly allocated: number;
  /** Allocated GPUs whose utilisation is under 5 % (server/liveEvents.ts IDLE_UTILIZATION). */
  readonly allocatedIdle: number;
  readonly free: number;
  /** Mean utilisation over the GPUs of ready nodes (percent). */
  readonly utilization: number;
  readonly powerWatts: number;
  readonly memoryUsedMib: number;
}
