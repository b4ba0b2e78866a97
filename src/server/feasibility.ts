/**
 * The submission-time check: a job that no registered node (any state but lost) could run,
 * even with nothing else on it, is refused with HTTP 422 `unsatisfiable`, naming the field
 * (`tasks[0].gpus: 9 GPUs on one node, but the largest node has 8 (H100)`). The rules are the
 * core's (core/jobs/feasibility.ts), which the schedulers also apply to the schedulable nodes
 * so that a job accepted before its node left holds back no queue. With no node registered
 * yet the job is accepted (its pending reason says so).
 */
import { ApiError } from '../api/errors.ts';
import type { JobSpec } from '../api/spec.ts';
import type { NodeInfo } from '../api/types.ts';
import { nodeShapes, shortfall, type ShortResource } from '../core/jobs/feasibility.ts';
import type { TaskGroupSpec } from '../core/jobs/model.ts';

/** The spec field each resource is written as (`task`: the group as a whole). */
const FIELD: Record<ShortResource, string> = { gpus: '.gpus', gpuModels: '.gpuModels', cpu: '.cpu', memory: '.memory', replicas: '.replicas', task: '', tasks: '' };

/** The field and message of why no node of `nodes` could run the job, or null. */
export function unsatisfiable(spec: JobSpec, nodes: readonly NodeInfo[]): { path: string; message: string } | null {
  const live = nodes.filter((n) => n.state !== 'lost');
  if (live.length === 0) return null;
  const shapes = nodeShapes(live.map((n) => ({ cpuMilli: n.cpuMilli, memoryMib: n.memoryMib, gpus: n.gpus.map((g) => g.model) })));
  // The models the whole job may run on, as the scheduler sees them (coreAdapter): every group's list applies.
  let models = [...new Set(live.flatMap((n) => n.gpus.map((g) => g.model)))].sort();
  for (const g of spec.groups) if (g.gpuModels.length > 0) models = models.filter((m) => g.gpuModels.includes(m));
  const groups: TaskGroupSpec[] = spec.groups.map((g) => ({
    name: g.name,
    replicas: g.replicas,
    task: { cpuMilli: g.cpuMilli, memoryMib: g.memoryMib, gpuCount: g.gpuCount, gpuMilli: g.gpuMilli, allowedModels: g.gpuModels },
  }));
  const s = shortfall(groups, models, shapes);
  if (s === null) return null;
  return { path: s.group < 0 ? 'tasks' : `tasks[${s.group}]${FIELD[s.resource]}`, message: s.message };
}

/** Throws the 422 for a job no registered node could run. */
export function assertSatisfiable(spec: JobSpec, nodes: readonly NodeInfo[]): void {
  const u = unsatisfiable(spec, nodes);
  if (u) throw new ApiError('unsatisfiable', `no node of this cluster could run the job: ${u.path}: ${u.message}`, [u]);
}
