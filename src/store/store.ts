/**
 * The Store port: everything the server keeps, behind one interface. Each method is atomic
 * (one transaction). Adapters: SQLite (default, a file in the data directory), PostgreSQL
 * (shared by several servers for HA) and an in-memory SQLite for tests; all pass
 * `conformance.test.ts`.
 */
import type { ServiceHistorySummary } from '../api/serviceHistory.ts';
import type { JobSpec } from '../api/spec.ts';
import type { EnergyReport, GpuTelemetry, Job, JobArray, JobEvent, NodeInfo, NodeRegistration, Task, TaskAssignment, TaskAttempt, TaskReport, TaskState } from '../api/types.ts';
import type { EnergyPrices } from '../core/energy/pricing.ts';
import type { Budget, BudgetPeriod, NodeEnergy, ServedReport, UsageGroup, UsageQuery } from './usage.ts';

export type { NodeRegistration } from '../api/types.ts';
export type { Budget, BudgetPeriod, NodeEnergy, ServedReport, UsageBy, UsageGroup, UsageQuery } from './usage.ts';

/** agent: the shared bootstrap token of the agents; node: one node's own credential. */
export type Role = 'admin' | 'tenant' | 'agent' | 'node';

export interface TokenOwner {
  readonly role: Role;
  readonly tenant: string | null;
  /** For role node: the node the token acts for (and only for). */
  readonly node?: string | null;
}

/** A token as the admin sees it: never its secret or its hash. */
export interface TokenInfo {
  /** Public id: the first 12 hex digits of the token's SHA-256. */
  readonly id: string;
  readonly role: Role;
  readonly tenant: string | null;
  readonly node: string | null;
  readonly createdAt: number;
  /** null: never expires. */
  readonly expiresAt: number | null;
  readonly revokedAt: number | null;
  /** Updated at most once a minute; null: not used since migration 003. */
  readonly lastUsedAt: number | null;
}

/**
 * Outcome of a registration with the bootstrap (agent) token: 'token-taken' when the offered
 * token hash is already some token's (nothing changed).
 */
export type BootstrapResult = 'registered' | 'has-credential' | 'token-taken';

export interface QueueConfig {
  readonly name: string;
  readonly gpuQuota: number | null;
  readonly borrowingLimit: number | null;
  /**
   * The tenants that may submit to the queue. Absent: the rule by name (see
   * server/auth.ts queueOpenTo): a queue named like a tenant, other than `default`, is that
   * tenant's alone; any other queue is shared by all tenants.
   */
  readonly tenants?: readonly string[];
  /** Queues of one cohort lend each other unused quota (Kueue); absent: the cohort `cluster`. */
  readonly cohort?: string;
  /** Nominal quota per GPU model (key `*`: any model), when given per model; `gpuQuota` is then its total. */
  readonly nominalQuota?: ModelQuota;
  /** Borrowing limit per GPU model, when given per model (`borrowingLimit` is then null). */
  readonly borrowingLimits?: ModelQuota;
  /** The most of its nominal quota others may borrow, per GPU model (`*`: any); absent: all of it. */
  readonly lendingLimits?: ModelQuota;
}

/** GPUs per GPU model; the key `*` counts GPUs of any model. */
export type ModelQuota = Readonly<Record<string, number>>;

/** A job that ended by running out its work (succeeded, or timed out), as the scheduler learns run times from it. */
export interface FinishedRun {
  readonly id: string;
  readonly spec: JobSpec;
  /** ms since epoch. */
  readonly finishedAt: number;
  /** Seconds it ran over all its attempts. */
  readonly runSeconds: number;
  /** The GPU model of its last attempt's first GPU (null: CPU-only, or unknown). */
  readonly model: string | null;
}

/** Where a walk through finished jobs stopped: the last one seen, by (finishedAt, id). */
export interface FinishedCursor {
  readonly finishedAt: number;
  readonly id: string;
}

/** Resources a tenant's tasks held, summed over the tasks that ended within one hour. */
export interface UsageBucket {
  readonly tenant: string;
  /** The hour (ms since epoch, a multiple of 3,600,000) the tasks ended in. */
  readonly hour: number;
  readonly gpuSeconds: number;
  readonly cpuSeconds: number;
  readonly memoryMibSeconds: number;
}

export interface JobFilter {
  readonly tenant?: string;
  readonly states?: readonly string[];
  readonly queue?: string;
  readonly kind?: string;
  /** Only an array's elements (migration 018). */
  readonly arrayId?: string;
  readonly limit?: number;
  /** Only jobs with an id above this (paging forward). */
  readonly afterId?: number;
  /** Only jobs with an id below this (paging backward). */
  readonly beforeId?: number;
  /** By id: asc (oldest first, the default) or desc (newest first). */
  readonly order?: 'asc' | 'desc';
}

export interface EventFilter {
  readonly jobId?: string;
  readonly tenant?: string;
  readonly afterId?: number;
  readonly beforeId?: number;
  readonly limit?: number;
  /** By id: asc (oldest first, the default) or desc (newest first). */
  readonly order?: 'asc' | 'desc';
}

/** A task that holds resources now (assigned, running or stopping). */
export interface ActiveTask {
  readonly jobId: string;
  readonly index: number;
  readonly node: string;
  readonly gpus: readonly number[];
  readonly gpuMilli: number;
  readonly cpuMilli: number;
  readonly memoryMib: number;
  readonly state: Task['state'];
  /** When the task started (ms since epoch); null while it has not yet. */
  readonly startedAt?: number | null;
}

/** One GPU of one task run (job, task index, attempt) that reads idle (see server/idle/). */
export interface IdleGpuKey {
  readonly jobId: string;
  readonly task: number;
  readonly attempt: number;
  readonly gpu: number;
}

/**
 * A streak of idle readings on one GPU a running task holds: `since` its first idle sample,
 * `lastAt` its latest (so `lastAt - since` is how long it has read idle), `crossedAt` when that
 * reached the configured idle time (null: not yet). Kept by the leader's idle monitor (migration 008).
 */
export interface IdleGpuRecord extends IdleGpuKey {
  readonly node: string;
  readonly tenant: string;
  /** The task's share of the GPU (1000: the whole GPU). */
  readonly gpuMilli: number;
  readonly since: number;
  readonly lastAt: number;
  readonly crossedAt: number | null;
}

/** An audit-log event about a job, written with idle rows (`job:idle`, `job:idle-ended`). */
export interface JobEventInput {
  readonly type: string;
  readonly jobId: string;
  readonly message: string;
}

/** What the scheduling loop reads each cycle. */
export interface StoreSnapshot {
  readonly nodes: readonly NodeInfo[];
  readonly activeTasks: readonly ActiveTask[];
  /** Jobs that are not finished (pending, admitted, running, preempted), oldest first. */
  readonly openJobs: readonly Job[];
  readonly queues: readonly QueueConfig[];
  /** GPUs services keep from lending (added by the loop from the services' controller, not read by the store). */
  readonly reservations?: readonly ServiceReservation[];
}

/** A service's hold on its queue's quota, as the scheduling core's lending stage reads it (core/scheduling/lending.ts Reservation). */
export interface ServiceReservation {
  readonly service: string;
  readonly queue: string;
  /** Quota units (GPUs; a fractional replica counts 1) the service keeps from lending. */
  readonly keepGpus: number;
  /** Its open replicas' job ids. */
  readonly replicas: readonly string[];
  readonly urgent: boolean;
  readonly reason: string;
}

/** A service (an open job of kind `service`) with its autoscaler's last decision (migration 007). */
export interface ServiceRecord {
  readonly job: Job;
  readonly minReplicas: number;
  readonly maxReplicas: number;
  /** Replicas wanted now. */
  readonly desired: number;
  /** GPUs of its queue kept from lending, in milli-GPU (quota units: a fractional replica counts 1000). */
  readonly keepMilli: number;
  readonly urgent: boolean;
  readonly reason: string | null;
  readonly decidedAt: number | null;
}

/** One open replica of a service: its job, its task's state and where it runs. */
export interface ReplicaRecord {
  readonly job: Job;
  /** Its readiness check answered 200 in its current attempt. */
  readonly ready: boolean;
  readonly taskState: TaskState | null;
  readonly node: string | null;
  /** The node's registered agent address (http://IP:PORT): only its host is used to reach the replica. */
  readonly nodeAddress: string | null;
  readonly startedAt: number | null;
}

/** What a service's autoscaler decided, as the store keeps it. */
export interface ServiceDecisionRecord {
  readonly desired: number;
  readonly keepMilli: number;
  readonly urgent: boolean;
  readonly reason: string;
}

export interface TaskBinding {
  readonly index: number;
  readonly node: string;
  readonly gpus: readonly number[];
  readonly gpuMilli: number;
}

/** What the scheduling loop writes back: the store applies it in one transaction. */
export interface AppliedPlan {
  /**
   * `powerCapWatts`: the power limit per GPU the attempt runs at (recorded on the job, handed to
   * the agents with its tasks); null: none (a cap an earlier attempt had is cleared); absent: unchanged.
   * `units`: of an array's waiting rest, how many of its CPU-only elements this bind places on its
   * one node (default 1): a burst's 10,000 such binds are then one per node.
   */
  readonly binds: readonly { readonly jobId: string; readonly attempt: number; readonly tasks: readonly TaskBinding[]; readonly powerCapWatts?: number | null; readonly units?: number }[];
  /** `reclaim`: lent GPUs taken back for a service; `immediate` stops the job with no grace period. */
  readonly preemptions: readonly { readonly jobId: string; readonly reason: string; readonly reclaim?: 'planned' | 'immediate'; readonly lender?: string }[];
  readonly pending: readonly { readonly jobId: string; readonly reason: string; readonly estimatedStart: number | null }[];
  /** Jobs that began or stopped running on borrowed GPUs since the snapshot (their `borrowed` flag). */
  readonly borrowed?: { readonly on: readonly string[]; readonly off: readonly string[] };
  /** Nodes to suspend (`off`) or resume (`on`): the consolidate stage's; the loop hands them to server/power/nodePower.ts. */
  readonly nodePower?: readonly { readonly node: string; readonly state: 'off' | 'on' }[];
  /** Plan again by then (ms) even if nothing happens: a deferred job's cheaper hour, a node's suspend time. */
  readonly wakeAt?: number;
  /** New pending jobs the planner has not taken in yet (server/scheduling/arrivalQueue.ts): plan again soon. */
  readonly backlog?: number;
}

/** A node's power transition (store/nodePower.ts says which are allowed from where). */
export type NodePowerState = 'suspended' | 'resuming' | 'ready' | 'lost';

export interface SubmitResult {
  readonly jobs: readonly Job[];
  /** False when every job already existed under the client key (an idempotent retry). */
  readonly created: boolean;
  /**
   * True when the client key was already used with a different spec: nothing was created and
   * `jobs` are the key's earlier jobs (the API answers 409).
   */
  readonly conflict: boolean;
}

/** What a lease renewal found (Store.renewNodeLease). */
export type LeaseRenewal = 'renewed' | 'lost' | 'unknown';

export interface Store {
  readonly dialect: 'sqlite' | 'postgres';
  migrate(): Promise<void>;
  close(): Promise<void>;

  ensureTenant(name: string, now: number): Promise<void>;
  listTenants(): Promise<string[]>;
  /**
   * Records a token (by its hash); re-adding one replaces its owner and keeps its expiry and
   * revocation (a revoked token stays revoked). `expiresAt` applies to a new token only.
   */
  putToken(hash: string, owner: TokenOwner, now: number, expiresAt?: number | null): Promise<void>;
  /** The token's owner and lifecycle, revoked or expired ones included (the caller decides). */
  findToken(hash: string): Promise<(TokenOwner & TokenInfo) | null>;
  /** Records a use: writes only when the last recorded use is a minute old or more. */
  touchToken(hash: string, now: number): Promise<void>;
  /** Every token, oldest first. */
  listTokens(): Promise<TokenInfo[]>;
  /** Revokes a token by its public id (a revoked one keeps its first revocation time); null if unknown. */
  revokeToken(id: string, now: number): Promise<TokenInfo | null>;
  /** Revokes every live token of a role except those hashes (a config's admin or agent token replaced). Returns their ids. */
  revokeRoleExcept(role: Role, keepHashes: readonly string[], now: number): Promise<string[]>;
  /** Whether a node has a live (unrevoked) credential. */
  nodeHasCredential(nodeId: string): Promise<boolean>;
  /** Revokes a node's credential so that its next bootstrap registration is accepted; returns the revoked ids. */
  resetNodeCredential(nodeId: string, now: number): Promise<string[]>;
  putQueue(queue: QueueConfig, now: number): Promise<void>;
  listQueues(): Promise<QueueConfig[]>;

  /**
   * Creates the jobs (one per array element) unless the tenant already used the client key: then
   * returns the key's jobs, with `conflict` when they were submitted with a different spec.
   */
  /**
   * `beforeCreate` runs inside the transaction only when new jobs are about to be made (not for an
   * idempotent retry, which returns the jobs the key already names); it may throw to refuse them.
   */
  submit(tenant: string, spec: JobSpec, clientKey: string | null, now: number, beforeCreate?: () => void): Promise<SubmitResult>;
  getJob(id: string): Promise<Job | null>;
  listJobs(filter: JobFilter): Promise<Job[]>;
  listTasks(jobId: string): Promise<Task[]>;
  /** Counts of jobs by state (all tenants). */
  jobStateCounts(): Promise<Record<string, number>>;
  /** Cancels an unfinished job; returns it, or null when it was already finished. */
  cancel(id: string, by: string, now: number): Promise<Job | null>;
  /** An array with its elements counted by state; null when there is none. */
  getArray(id: string): Promise<JobArray | null>;
  /**
   * Cancels an array's unfinished elements (`only` those indexes, when given), a chunk of them to
   * a transaction; answers how many and the nodes whose tasks were asked to stop (null: no such array).
   */
  cancelArray(id: string, by: string, now: number, only?: ReadonlySet<number>): Promise<{ readonly cancelled: number; readonly nodes: readonly string[] } | null>;
  /** An array's element by its index (Slurm's 123_5); null when there is none. */
  getArrayElement(id: string, index: number): Promise<Job | null>;
  /** Stops a running job and requeues it once its tasks have exited. */
  preempt(id: string, reason: string, now: number): Promise<Job | null>;
  /**
   * A job at its time limit (server/timeLimits.ts decides): its tasks are asked to stop and the
   * job ends `timeout` once they have (at once when it is pending); `reason` says why. Null when
   * it was already marked or is not pending, admitted or running.
   */
  timeOut(id: string, reason: string, now: number): Promise<Job | null>;
  /** Idle-GPU streaks (server/idle/): all, one tenant's or one job's. */
  listIdleGpus(filter?: { readonly tenant?: string; readonly jobId?: string }): Promise<IdleGpuRecord[]>;
  /** Writes and removes idle-GPU streaks and appends their jobs' events, in one transaction. */
  saveIdleGpus(upsert: readonly IdleGpuRecord[], remove: readonly IdleGpuKey[], events: readonly JobEventInput[], now: number): Promise<void>;
  /**
   * Reclaims a running job whose GPUs stayed idle (server/idle/, policy reclaim): its tasks are
   * asked to stop (SIGTERM, SIGKILL after its grace period) and it ends `cancelled` with `reason`,
   * never requeued; the event is `job:idle-reclaimed`. Null when it is not admitted or running.
   */
  reclaimIdle(id: string, reason: string, now: number): Promise<Job | null>;
  /** Every run of the job's tasks, earlier attempts included (attempt, then task order). */
  listAttempts(jobId: string): Promise<TaskAttempt[]>;

  snapshot(): Promise<StoreSnapshot>;
  /**
   * Applies a scheduling plan: its preemptions, first binds and first pending reasons in one
   * transaction, the rest of its binds and reasons in parts after it (a big plan would hold the
   * database for seconds), each part checked on its own (a job still pending in the attempt
   * planned, its GPUs free). With `leaseHolder`, each part is applied only while that holder still
   * has the scheduler lease (fencing a deposed leader); returns false when the first part was not.
   */
  applyPlan(plan: AppliedPlan, now: number, leaseHolder?: string): Promise<boolean>;

  registerNode(node: NodeRegistration, now: number): Promise<void>;
  /**
   * A registration with the bootstrap token: in one transaction, unless the node already has a
   * live credential ('has-credential', nothing changed), records the node token (by its hash,
   * role node, bound to the node) and registers the node.
   */
  bootstrapNode(node: NodeRegistration, tokenHash: string, now: number): Promise<BootstrapResult>;
  /**
   * An agent's heartbeat: records telemetry and task reports, and (given) its energy counters
   * after the reports, in the same transaction (as recordEnergy); returns the node's desired tasks.
   */
  heartbeat(nodeId: string, telemetry: readonly GpuTelemetry[], reports: readonly TaskReport[], now: number, energy?: { readonly report: EnergyReport; readonly prices: EnergyPrices }): Promise<TaskAssignment[] | null>;
  /**
   * Renews a node's lease without a heartbeat's reports (POST /v1/agent/lease): its last heartbeat
   * becomes `now`, unless the node is lost ('lost': its tasks were written off, its agent must
   * fence and heartbeat) or not registered ('unknown'). Written ahead of the store's queued work
   * (on SQLite), many nodes to a transaction, so that it is answered while heartbeats queue.
   */
  renewNodeLease(nodeId: string, now: number): Promise<LeaseRenewal>;
  /** Marks nodes silent since before `deadline` lost and requeues their jobs; returns their ids. */
  expireNodes(deadline: number, now: number): Promise<string[]>;
  listNodes(): Promise<NodeInfo[]>;
  /**
   * Calls `fn` with each node list read in the background (listNodes answers the kept list while
   * it reads the next): the API serialises and compresses it then, not in the next reader's turn.
   */
  observeNodeLists(fn: (list: readonly NodeInfo[]) => void): void;
  /** Changes whenever a node registers (or re-registers) or is lost: a cheap test for caches of listNodes. */
  nodesVersion(): Promise<string>;
  /** How many jobs the tenant has open (pending, admitted, running or preempted): what its submission limit counts. */
  countOpenJobs(tenant: string): Promise<number>;
  /** Drains a node (nothing new is placed there; running tasks stay) or makes it ready again. False if unknown or lost. */
  setNodeDrained(id: string, drained: boolean, now: number): Promise<boolean>;
  getNode(id: string): Promise<NodeInfo | null>;
  /**
   * Power saving (migration 011): `suspended` from ready and only while no task is active on the
   * node; `resuming` from suspended; `ready` from suspended or resuming; `lost` (down) from
   * resuming. Writes the event `node:<state>` with `message`. False when the node was not in a
   * state it may leave that way (nothing changed).
   */
  setNodePower(id: string, to: NodePowerState, now: number, message: string): Promise<boolean>;

  listEvents(filter: EventFilter): Promise<JobEvent[]>;

  /**
   * Jobs that ran out their work (succeeded or timed out), oldest first by (finishedAt, id): with
   * a cursor, at most `limit` of those after it; without, the latest `limit`.
   */
  finishedRuns(after: FinishedCursor | null, limit: number): Promise<FinishedRun[]>;
  /** Tenants' resource use by tasks that ended after `sinceMs`, per tenant and hour. */
  usageByHour(sinceMs: number): Promise<UsageBucket[]>;
  /** The specs of the latest `limit` submitted jobs, newest first. */
  recentSpecs(limit: number): Promise<JobSpec[]>;

  /** Services (docs/services.md, migration 007). Open services (all, or those ids), oldest first. */
  listServices(ids?: readonly string[]): Promise<ServiceRecord[]>;
  /** The open replicas of these services, oldest first. */
  listReplicas(serviceIds: readonly string[]): Promise<ReplicaRecord[]>;
  /** Adds a replica job (its spec made by the service's controller); null when the service is no longer open. */
  addReplica(serviceId: string, spec: JobSpec, now: number): Promise<Job | null>;
  /** Stops a replica (scale down): its task is asked to stop and the job ends cancelled with `reason`. */
  stopReplica(replicaId: string, reason: string, now: number): Promise<boolean>;
  /** Records that a replica's readiness check answered 200 in this attempt; true when that is news. */
  markReplicaReady(replicaId: string, attempt: number): Promise<boolean>;
  /** Records an autoscaler's decision (and, when given, an event on the service). */
  decideService(serviceId: string, d: ServiceDecisionRecord, now: number, event?: { readonly type: string; readonly message: string }): Promise<void>;
  /** Changes a service's bounds (the desired count is clamped to them); null when it is not an open service. */
  setServiceBounds(serviceId: string, minReplicas: number, maxReplicas: number, by: string, now: number): Promise<ServiceRecord | null>;
  /**
   * Replaces an open service's imported rate history (points checked by api/serviceHistory.ts),
   * with an event on it; null when it is not an open service (migration 013).
   */
  putServiceHistory(serviceId: string, points: readonly (readonly [number, number])[], by: string, now: number): Promise<ServiceHistorySummary | null>;
  /** The summaries of these services' histories, by service id (those without one are absent). */
  serviceHistorySummaries(serviceIds: readonly string[]): Promise<ReadonlyMap<string, ServiceHistorySummary>>;
  /** A service's history with its points, or null. */
  serviceHistory(serviceId: string): Promise<{ readonly summary: ServiceHistorySummary; readonly points: readonly (readonly [number, number])[] } | null>;
  /** Marks jobs as running on borrowed GPUs, or no longer. */
  setBorrowed(jobIds: readonly string[], borrowed: boolean): Promise<void>;
  /** Records an event in the audit log (its tenant: the job's). */
  addEvent(e: { readonly type: string; readonly jobId?: string | null; readonly nodeId?: string | null; readonly message: string }, now: number): Promise<void>;
  /**
   * Applies an agent's cumulative energy counters to its node and its runs' usage records, priced
   * with `prices` (store/usage.ts, docs/energy.md); false when they were already applied.
   */
  recordEnergy(nodeId: string, report: EnergyReport, now: number, prices: EnergyPrices): Promise<boolean>;
  /** Usage records (one per task attempt) grouped by key and GPU model over a window. */
  usage(q: UsageQuery): Promise<UsageGroup[]>;
  /**
   * Adds what service replicas served (their scraped cumulative counters) to their attempts'
   * records, counting increases only (store/usage.ts applyServed); returns the attempts found.
   */
  recordServed(reports: readonly ServedReport[]): Promise<number>;
  /** Every node's measured energy and what its records were given (all time). */
  nodeEnergy(): Promise<NodeEnergy[]>;
  /** Folds finished usage records into the hourly and daily rollups reports read (store/usageRollup.ts); returns how many. */
  rollUpUsage(now: number, utcOffsetHours: number): Promise<number>;
  putBudget(b: Budget, now: number): Promise<void>;
  /** False when the tenant had no budget for that period. */
  deleteBudget(tenant: string, period: BudgetPeriod): Promise<boolean>;
  /** Every budget, or one tenant's. */
  listBudgets(tenant?: string): Promise<Budget[]>;

  /** Takes or renews a named lease for `holder` until now + ttl; true when holder has it. */
  acquireLease(name: string, holder: string, ttlMs: number, now: number): Promise<boolean>;
  releaseLease(name: string, holder: string): Promise<void>;
}
