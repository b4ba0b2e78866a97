/**
 * Tide's domain model for placement: nodes, tasks and placements. Pure data, no I/O.
 *
 * Units: CPU in milli-cores, memory in MiB, GPU in milli-GPU (one GPU = 1000).
 */

declare const brand: unique symbol;
/** A string that the type checker keeps apart from other ids. */
export type Branded<T, B extends string> = T & { readonly [brand]: B };
export type NodeId = Branded<string, 'NodeId'>;
export type TaskId = Branded<string, 'TaskId'>;

export const nodeId = (s: string): NodeId => s as NodeId;
export const taskId = (s: string): TaskId => s as TaskId;

/** Capacity of one GPU in milli-GPU. */
export const GPU_MILLI = 1000;

/** A GPU model name as the cluster reports it, e.g. "V100M32" or "H100". */
export type GpuModel = string;

export interface NodeSpec {
  readonly id: NodeId;
  readonly cpuMilli: number;
  readonly memoryMib: number;
  /** One entry per GPU device, in device-index order. */
  readonly gpus: readonly GpuModel[];
  readonly labels?: Readonly<Record<string, string>>;
}

/**
 * What a task asks for. Three forms:
 * - CPU-only: `gpuCount` 0;
 * - a fraction of one GPU: `gpuCount` 1 and `gpuMilli` below 1000;
 * - k whole GPUs: `gpuCount` k and `gpuMilli` 1000 (each GPU entirely free before it is taken).
 */
export interface TaskRequest {
  readonly id: TaskId;
  readonly cpuMilli: number;
  readonly memoryMib: number;
  readonly gpuCount: number;
  /** Milli-GPU on each GPU it uses. */
  readonly gpuMilli: number;
  /** GPU models the task may run on; empty means any. */
  readonly allowedModels: readonly GpuModel[];
}

/** Where a task runs: the node (by index in the cluster) and the GPU devices it holds there. */
export interface Placement {
  readonly node: number;
  /** Device indices on that node, ascending. */
  readonly gpus: readonly number[];
  readonly gpuMilli: number;
  readonly cpuMilli: number;
  readonly memoryMib: number;
}

export type TaskKind = 'cpu' | 'fraction' | 'whole';

export function taskKind(t: Pick<TaskRequest, 'gpuCount' | 'gpuMilli'>): TaskKind {
  if (t.gpuCount === 0) return 'cpu';
  return t.gpuMilli < GPU_MILLI ? 'fraction' : 'whole';
}

/** Total milli-GPU a task holds. */
export function taskGpuMilli(t: Pick<TaskRequest, 'gpuCount' | 'gpuMilli'>): number {
  return t.gpuCount * t.gpuMilli;
}

/**
 * Checks a request's own consistency (not whether it fits anywhere).
 * Returns the problems as `field: message` strings; empty when valid.
 */
export function validateTask(t: TaskRequest): string[] {
  const problems: string[] = [];
  const nonNegativeInt = (field: string, v: number): void => {
    if (!Number.isInteger(v) || v < 0) problems.push(`${field}: must be a non-negative integer, got ${v}`);
  };
  nonNegativeInt('cpuMilli', t.cpuMilli);
  nonNegativeInt('memoryMib', t.memoryMib);
  nonNegativeInt('gpuCount', t.gpuCount);
  nonNegativeInt('gpuMilli', t.gpuMilli);
  if (t.gpuMilli > GPU_MILLI) problems.push(`gpuMilli: at most ${GPU_MILLI} per GPU, got ${t.gpuMilli}`);
  if (t.gpuCount > 1 && t.gpuMilli !== GPU_MILLI) {
    problems.push(`gpuMilli: a task of ${t.gpuCount} GPUs takes whole GPUs (${GPU_MILLI}), got ${t.gpuMilli}`);
  }
  if (t.gpuCount >= 1 && t.gpuMilli === 0) problems.push('gpuMilli: a GPU task needs more than 0');
  return problems;
}
