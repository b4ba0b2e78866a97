/**
 * The submission-time check: a job that no registered node (any state but lost) could run,
 * even with nothing else on it, is refused with HTTP 422 `unsatisfiable`, naming the field
 * (`tasks[0].gpus: 9 GPUs on one node, but the largest node has 8 (H100)`). The rules are the
 * core's (core/scheduling/feasibility.ts), which the schedulers also apply to the schedulable nodes
 * so that a job accepted before its node left holds back no queue. With no node registered
 * yet the job is accepted (its pending reason says so).
 */
import { ApiError } from '../api/errors.ts';
import type { JobSpec } from '../api/spec.ts';
import type { NodeInfo } from '../api/types.ts';
import { nodeShapes, shortfall, type ShortResource } from '../core/scheduling/feasibility.ts';
import type { TaskGroupSpec } from '../core/scheduling/model.ts';
import type { Store } from '../store/store.ts';

/** The spec field each resource is written as (`task`: the group as a whole). */
const FIELD: Record<ShortResource, string> = { gpus: '.gpus', gpuModels: '.gpuModels', cpu: '.cpu', memory: '.memory', replicas: '.replicas', task: '', tasks: '' };

/** What the check reads of the nodes (any state but lost): their shapes and GPU models; null when none. */
export interface Capacity {
  readonly shapes: ReturnType<typeof nodeShapes>;
  readonly models: readonly string[];
}

export function capacityOf(nodes: readonly NodeInfo[]): Capacity | null {
  const live = nodes.filter((n) => n.state !== 'lost');
  if (live.length === 0) return null;
  return {
    shapes: nodeShapes(live.map((n) => ({ cpuMilli: n.cpuMilli, memoryMib: n.memoryMib, gpus: n.gpus.map((g) => g.model) }))),
    models: [...new Set(live.flatMap((n) => n.gpus.map((g) => g.model)))].sort(),
  };
}

/** The field and message of why no node of `nodes` could run the job, or null. */
export function unsatisfiable(spec: JobSpec, nodes: readonly NodeInfo[]): { path: string; message: string } | null {
  return unsatisfiableOn(spec, capacityOf(nodes));
}

function unsatisfiableOn(spec: JobSpec, capacity: Capacity | null): { path: string; message: string } | null {
  if (capacity === null) return null;
  // The models the whole job may run on, as the scheduler sees them (coreAdapter): every group's list applies.
  let models = capacity.models;
  for (const g of spec.groups) if (g.gpuModels.length > 0) models = models.filter((m) => g.gpuModels.includes(m));
  const groups: TaskGroupSpec[] = spec.groups.map((g) => ({
    name: g.name,
    replicas: g.replicas,
    task: { cpuMilli: g.cpuMilli, memoryMib: g.memoryMib, gpuCount: g.gpuCount, gpuMilli: g.gpuMilli, allowedModels: g.gpuModels },
  }));
  const s = shortfall(groups, [...models], capacity.shapes);
  if (s === null) return null;
  return { path: s.group < 0 ? 'tasks' : `tasks[${s.group}]${FIELD[s.resource]}`, message: s.message };
}

/** The 422 for a job no registered node could run. */
export function unsatisfiableError(u: { path: string; message: string }): ApiError {
  return new ApiError('unsatisfiable', `no node of this cluster could run the job: ${u.path}: ${u.message}`, [u]);
}

/**
 * The check as submissions run it: against the node list as it was when the store's nodes last
 * changed (reading and parsing every node on each submission cost two thirds of the API's
 * throughput; a version query is one cheap aggregate).
 */
export class SubmissionCheck {
  private capacity: Capacity | null = null;
  private version: string | null = null;

  constructor(private readonly store: Pick<Store, 'listNodes' | 'nodesVersion'>) {}

  /** Why no node could run the job, or null. */
  async problem(spec: JobSpec): Promise<{ path: string; message: string } | null> {
    const version = await this.store.nodesVersion();
    if (version !== this.version) {
      this.capacity = capacityOf(await this.store.listNodes());
      this.version = version;
    }
    return unsatisfiableOn(spec, this.capacity);
  }
}
