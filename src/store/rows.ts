/** Database rows and their mapping to the API's domain types; rows never leave the store. */
import type { JobSpec } from '../api/spec.ts';
import { JOB_STATES, TERMINAL_JOB_STATES, type GpuInfo, type GpuTelemetry, type Job, type JobArray, type JobEvent, type JobProgressReport, type JobState, type NodeInfo, type NodeState, type Task, type TaskAttempt, type TaskState } from '../api/types.ts';
import { runIdOf } from './lifecycle.ts';
import type { ActiveTask } from './store.ts';

export interface JobRow {
  id: number;
  tenant: string;
  name: string;
  queue: string;
  priority: number;
  kind: string;
  state: string;
  reason: string | null;
  attempt: number;
  gpu_milli: number;
  task_count: number;
  preemptible: number;
  spec: string;
  client_key: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  updated_at: number;
  estimated_start: number | null;
  /** Running time of earlier attempts (ms); migration 004. */
  run_ms: number;
  timed_out_at: number | null;
  progress_step: number | null;
  progress_total: number | null;
  progress_checkpoint_step: number | null;
  progress_checkpoint_at: number | null;
  progress_at: number | null;
  /** Migration 007: 1 while it runs on borrowed GPUs; a replica's service; its ready attempt; the current stop's grace (ms). */
  borrowed: number;
  service_id: number | null;
  /** The array the job is an element of (migration 018), or null. */
  array_id?: number | string | null;
  array_index?: number | string | null;
  array_count?: number | string | null;
  ready_attempt: number | null;
  stop_grace_ms: number | null;
  /** Migration 011: the power limit (W per GPU) its current attempt runs at. */
  power_cap_watts?: number | null;
  /** Only where selected (client-key lookups): the hash of the spec submitted with the key. */
  spec_hash?: string | null;
}

export interface TaskRow {
  job_id: number;
  idx: number;
  grp: string;
  attempt: number;
  state: string;
  node_id: string | null;
  gpus: string;
  gpu_milli: number;
  cpu_milli: number;
  memory_mib: number;
  pid: number | null;
  exit_code: number | null;
  started_at: number | null;
  finished_at: number | null;
}

export interface NodeRow {
  id: string;
  state: string;
  address: string;
  cpu_milli: number;
  memory_mib: number;
  gpus: string;
  simulated: number;
  last_heartbeat: number;
  telemetry: string;
  registered_at: number;
  /** Migration 011: when it was suspended or asked to resume. */
  power_at?: number | null;
  /** Migration 015 (renewNodes). */
  lease_renewed_at?: number | null;
}

export interface EventRow {
  id: number;
  at: number;
  type: string;
  job_id: number | null;
  node_id: string | null;
  tenant: string | null;
  message: string;
}

/** Specs never change after submission: parsed once per text (bounded), not once per read. */
const specCache = new Map<string, JobSpec>();
export function parseSpec(text: string): JobSpec {
  let spec = specCache.get(text);
  if (!spec) {
    spec = JSON.parse(text) as JobSpec;
    if (specCache.size >= 50_000) specCache.clear();
    specCache.set(text, spec);
  }
  return spec;
}

export function jobFromRow(r: JobRow, known?: JobSpec): Job {
  const spec = known ?? parseSpec(r.spec);
  return {
    id: String(r.id),
    tenant: r.tenant,
    name: r.name,
    queue: r.queue,
    priority: r.priority,
    kind: spec.kind,
    state: r.state as JobState,
    reason: r.reason,
    attempt: r.attempt,
    gpus: r.gpu_milli / 1000,
    tasks: r.task_count,
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    estimatedStart: r.estimated_start,
    clientKey: r.client_key,
    runSeconds: Number(r.run_ms) / 1000,
    progress: progressFromRow(r),
    // Only a running job holds GPUs, borrowed or not (a finished job keeps the flag it last had in its row).
    borrowed: Number(r.borrowed ?? 0) === 1 && (r.state === 'running' || r.state === 'admitted'),
    serviceId: r.service_id === null || r.service_id === undefined ? null : String(r.service_id),
    arrayId: r.array_id === null || r.array_id === undefined ? null : String(r.array_id),
    ...(r.array_id === null || r.array_id === undefined ? {} : { arrayIndex: r.array_index === null || r.array_index === undefined ? ((spec as { arrayIndex?: number }).arrayIndex ?? 0) : Number(r.array_index), arrayCount: Number(r.array_count ?? 1) }),
    ...(r.power_cap_watts !== null && r.power_cap_watts !== undefined ? { powerCapWatts: Number(r.power_cap_watts) } : {}),
    spec,
  };
}

/** An array's row (migration 018). */
export interface ArrayRow {
  id: number | string;
  tenant: string;
  name: string;
  queue: string;
  size: number | string;
  created_at: number | string;
}

/** An array's row and its elements' counts by state (Q.arrayCounts) as the API shows it. */
/** Elements of one state (Q.jobStateCounts, Q.arrayCounts): `ok`, of the ranges that failed, the elements that exited 0. */
export interface StateCount {
  state: string;
  n: number | string;
  ok?: number | string | null;
}

/** Adds a state's elements to `byState`, a failed range's elements that exited 0 as succeeded. */
export function addStateCount(byState: Record<string, number>, c: StateCount): void {
  const ok = c.state === 'failed' ? Number(c.ok ?? 0) : 0;
  byState[c.state] = (byState[c.state] ?? 0) + Number(c.n) - ok;
  if (ok > 0) byState['succeeded'] = (byState['succeeded'] ?? 0) + ok;
}

export function arrayFromRows(r: ArrayRow, counts: readonly (StateCount & { first: number | string })[]): JobArray {
  const byState = Object.fromEntries(JOB_STATES.map((st) => [st, 0])) as Record<JobState, number>;
  let first: number | null = null;
  for (const c of counts) {
    if (c.state in byState) addStateCount(byState, c);
    first = first === null ? Number(c.first) : Math.min(first, Number(c.first));
  }
  const unfinished = JOB_STATES.filter((st) => !TERMINAL_JOB_STATES.includes(st)).reduce((n, st) => n + byState[st], 0);
  return { id: String(r.id), tenant: r.tenant, name: r.name, queue: r.queue, size: Number(r.size), createdAt: Number(r.created_at), firstJobId: first === null ? null : String(first), counts: byState, unfinished };
}

function progressFromRow(r: JobRow): JobProgressReport | null {
  if (r.progress_step === null || r.progress_at === null) return null;
  return { step: r.progress_step, totalSteps: r.progress_total, checkpointStep: r.progress_checkpoint_step, checkpointAt: r.progress_checkpoint_at, at: r.progress_at };
}

export interface AttemptRow {
  job_id: number;
  idx: number;
  attempt: number;
  node_id: string;
  gpus: string;
  gpu_milli: number;
  started_at: number | null;
  finished_at: number | null;
  exit_code: number | null;
  end_reason: string | null;
}

export function attemptFromRow(r: AttemptRow): TaskAttempt {
  return {
    taskIndex: r.idx,
    attempt: r.attempt,
    runId: runIdOf(r.job_id, r.idx, r.attempt),
    node: r.node_id,
    gpus: JSON.parse(r.gpus) as number[],
    gpuMilli: r.gpu_milli,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    exitCode: r.exit_code,
    endReason: r.end_reason as TaskAttempt['endReason'],
  };
}

export function taskFromRow(r: TaskRow): Task {
  return {
    jobId: String(r.job_id),
    index: r.idx,
    group: r.grp,
    attempt: r.attempt,
    runId: runIdOf(r.job_id, r.idx, r.attempt),
    state: r.state as TaskState,
    node: r.node_id,
    gpus: JSON.parse(r.gpus) as number[],
    gpuMilli: r.gpu_milli,
    exitCode: r.exit_code,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  };
}

/**
 * Node rows' GPUs and telemetry as parsed, kept while a row's text stays the same: the node list
 * reads every node (1,250) while only those that heartbeat since changed. The parsed arrays are
 * shared between reads: callers never change them.
 */
export class NodeTextCache {
  private readonly byId = new Map<string, { gpusText: string; gpus: GpuInfo[]; telemetryText: string; telemetry: GpuTelemetry[] }>();

  parsed(r: NodeRow): { gpus: GpuInfo[]; telemetry: GpuTelemetry[] } {
    let e = this.byId.get(r.id);
    if (!e) this.byId.set(r.id, (e = { gpusText: r.gpus, gpus: JSON.parse(r.gpus) as GpuInfo[], telemetryText: r.telemetry, telemetry: JSON.parse(r.telemetry) as GpuTelemetry[] }));
    if (e.gpusText !== r.gpus) {
      e.gpusText = r.gpus;
      e.gpus = JSON.parse(r.gpus) as GpuInfo[];
    }
    if (e.telemetryText !== r.telemetry) {
      e.telemetryText = r.telemetry;
      e.telemetry = JSON.parse(r.telemetry) as GpuTelemetry[];
    }
    return e;
  }
}

/** What a node's active tasks use: milli-GPU per device index, CPU and memory. */
export interface NodeUse {
  readonly gpu: number[];
  readonly cpu: number;
  readonly mem: number;
}

/** Per node, what its active tasks use (tasks not on a node are left out). */
export function useByNode(tasks: readonly ActiveTask[]): Map<string, NodeUse> {
  const used = new Map<string, { gpu: number[]; cpu: number; mem: number }>();
  for (const t of tasks) {
    if (t.node === '') continue;
    let u = used.get(t.node);
    if (!u) used.set(t.node, (u = { gpu: [], cpu: 0, mem: 0 }));
    u.cpu += t.cpuMilli;
    u.mem += t.memoryMib;
    const per = t.gpus.length ? t.gpuMilli / t.gpus.length : 0;
    for (const g of t.gpus) u.gpu[g] = (u.gpu[g] ?? 0) + per;
  }
  return used;
}

/**
 * Each node's last NodeInfo, handed out again while its row and its use are unchanged: the API
 * serialises a node object once (app.ts), so a node list rebuilt every second re-serialises only
 * the nodes that heartbeated or whose use changed since (about half of 1,250 at a 2-s heartbeat).
 */
export class NodeInfoCache {
  private readonly texts = new NodeTextCache();
  private readonly byId = new Map<string, NodeInfo>();

  of(r: NodeRow, used: NodeUse | undefined): NodeInfo {
    return this.keep(nodeFromRow(r, used, this.texts));
  }

  /** The node with its use from `used` (the same object when its use is unchanged). */
  withUse(n: NodeInfo, used: NodeUse | undefined): NodeInfo {
    const gpuUsedMilli = n.gpus.map((_, i) => used?.gpu[i] ?? 0);
    return this.keep({ ...n, gpuUsedMilli, cpuUsedMilli: used?.cpu ?? 0, memoryUsedMib: used?.mem ?? 0 });
  }

  private keep(next: NodeInfo): NodeInfo {
    const prev = this.byId.get(next.id);
    if (prev && sameNode(prev, next)) return prev;
    this.byId.set(next.id, next);
    return next;
  }
}

/** The fields of a NodeInfo compared by value (or, for GPUs and telemetry as NodeTextCache hands them out, by identity). */
const NODE_FIELDS = ['state', 'address', 'cpuMilli', 'memoryMib', 'gpus', 'simulated', 'lastHeartbeat', 'leaseRenewedAt', 'telemetry', 'cpuUsedMilli', 'memoryUsedMib', 'powerAt'] as const;

/** Compiles only while NODE_FIELDS names every field of NodeInfo but its id and its GPU use (compared below). */
export const NODE_FIELDS_COMPLETE: [Exclude<keyof NodeInfo, 'id' | 'gpuUsedMilli' | (typeof NODE_FIELDS)[number]>] extends [never] ? true : never = true;

/** Whether two NodeInfos of one node say the same. */
function sameNode(a: NodeInfo, b: NodeInfo): boolean {
  return NODE_FIELDS.every((k) => a[k] === b[k]) && a.gpuUsedMilli.length === b.gpuUsedMilli.length && a.gpuUsedMilli.every((x, i) => x === b.gpuUsedMilli[i]);
}

export function nodeFromRow(r: NodeRow, used: NodeUse | undefined, texts?: NodeTextCache): NodeInfo {
  const known = texts?.parsed(r);
  const gpus = known?.gpus ?? (JSON.parse(r.gpus) as GpuInfo[]);
  return {
    id: r.id,
    state: r.state as NodeState,
    address: r.address,
    cpuMilli: r.cpu_milli,
    memoryMib: r.memory_mib,
    gpus,
    simulated: r.simulated === 1,
    lastHeartbeat: r.last_heartbeat,
    ...(r.lease_renewed_at !== null && r.lease_renewed_at !== undefined ? { leaseRenewedAt: Number(r.lease_renewed_at) } : {}),
    telemetry: known?.telemetry ?? (JSON.parse(r.telemetry) as GpuTelemetry[]),
    gpuUsedMilli: gpus.map((_, i) => used?.gpu[i] ?? 0),
    cpuUsedMilli: used?.cpu ?? 0,
    memoryUsedMib: used?.mem ?? 0,
    ...(r.power_at !== null && r.power_at !== undefined && (r.state === 'suspended' || r.state === 'resuming') ? { powerAt: Number(r.power_at) } : {}),
  };
}

export function eventFromRow(r: EventRow): JobEvent {
  return {
    id: r.id,
    at: r.at,
    type: r.type,
    jobId: r.job_id === null ? null : String(r.job_id),
    nodeId: r.node_id,
    tenant: r.tenant,
    message: r.message,
  };
}
