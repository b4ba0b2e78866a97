/** Small builders for common job and cluster shapes (generators, tests, the CLI's readers). */
import { nodeId, type GpuModel, type NodeSpec } from '../model.ts';
import { jobId, PRIORITY_CLASSES, type JobSpec } from './model.ts';
import type { NodeState } from './scheduler.ts';

/** `count` nodes of `gpusPerNode` GPUs of `model`, named `<prefix>-<i>`, with ample CPU and memory. */
export function gpuNodes(model: GpuModel, count: number, gpusPerNode = 1, prefix = model.toLowerCase()): NodeSpec[] {
  return Array.from({ length: count }, (_, i) => ({
    id: nodeId(`${prefix}-${i}`),
    cpuMilli: 64_000 * gpusPerNode,
    memoryMib: 256 * 1024 * gpusPerNode,
    gpus: Array.from({ length: gpusPerNode }, () => model),
  }));
}

export function schedulable(nodes: readonly NodeSpec[]): NodeState[] {
  return nodes.map((spec) => ({ spec, schedulable: true }));
}

export interface GangJobInput {
  readonly id: string;
  /** Whole GPUs, one per task (a gang of `gpus` single-GPU tasks), or 0 for a CPU-only job. */
  readonly gpus: number;
  readonly throughput: Readonly<Record<GpuModel, number>>;
  readonly totalSteps: number;
  readonly submitTime?: number;
  readonly tenant?: string;
  readonly queue?: string;
  readonly priorityClass?: string;
  readonly timeLimitSeconds?: number;
  readonly jobType?: string;
  readonly preemptible?: boolean;
  readonly checkpointIntervalSeconds?: number;
  readonly restartCostSeconds?: number;
  /** GPUs per task (default 1): a 16-GPU job of 8-GPU tasks is two tasks. */
  readonly gpusPerTask?: number;
}

/** A training job: a gang of identical whole-GPU tasks. */
export function gangJob(input: GangJobInput): JobSpec {
  const perTask = input.gpus === 0 ? 0 : Math.min(input.gpusPerTask ?? 1, input.gpus);
  const replicas = input.gpus === 0 ? 1 : Math.ceil(input.gpus / perTask);
  const priorityClass = input.priorityClass ?? 'normal';
  return {
    id: jobId(input.id),
    tenant: input.tenant ?? 'default',
    queue: input.queue ?? 'default',
    priorityClass,
    priority: PRIORITY_CLASSES[priorityClass] ?? 0,
    submitTime: input.submitTime ?? 0,
    groups: [{ name: 'worker', replicas, task: { cpuMilli: 1000, memoryMib: 1024, gpuCount: perTask, gpuMilli: perTask === 0 ? 0 : 1000, allowedModels: [] } }],
    totalSteps: input.totalSteps,
    throughput: input.throughput,
    preemptible: input.preemptible ?? true,
    ...(input.timeLimitSeconds === undefined ? {} : { timeLimitSeconds: input.timeLimitSeconds }),
    ...(input.jobType === undefined ? {} : { jobType: input.jobType }),
    ...(input.checkpointIntervalSeconds === undefined ? {} : { checkpointIntervalSeconds: input.checkpointIntervalSeconds }),
    ...(input.restartCostSeconds === undefined ? {} : { restartCostSeconds: input.restartCostSeconds }),
  };
}
