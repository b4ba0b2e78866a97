/**
 * Target workloads and GPU fragmentation (the measure of FGD, USENIX ATC'23).
 *
 * A target workload is a list of task shapes with their popularity. The fragment of a node
 * for a shape is the idle milli-GPU on that node the shape cannot use; node fragmentation is
 * the popularity-weighted sum over shapes. Memory is not part of it.
 */
import type { ClusterState } from './cluster.ts';
import type { TaskRequest } from './model.ts';

export interface TaskShape {
  readonly cpuMilli: number;
  readonly gpuCount: number;
  /** Milli on each GPU (1000 for whole GPUs, 0 for CPU-only). */
  readonly gpuMilli: number;
  /** Allowed models as a ClusterState mask. */
  readonly modelMask: number;
  /** Share of tasks of this shape; the shapes of a workload sum to 1. */
  readonly popularity: number;
}

export type TargetWorkload = readonly TaskShape[];

/** The identity of a shape (what FGD's score depends on): CPU, per-GPU milli, GPU count, allowed models. */
export function shapeKey(t: Pick<TaskRequest, 'cpuMilli' | 'gpuCount' | 'gpuMilli' | 'allowedModels'>): string {
  return `${t.cpuMilli}/${t.gpuCount}x${t.gpuCount === 0 ? 0 : t.gpuMilli}/${[...t.allowedModels].sort().join('|')}`;
}

/**
 * FGD's target workload: distinct shapes of `tasks`, most frequent first (ties by first
 * appearance), kept until they cover `coverage` of the tasks; popularities renormalised.
 */
export function targetWorkload(cluster: ClusterState, tasks: readonly TaskRequest[], coverage = 0.95): TargetWorkload {
  const counts = new Map<string, { task: TaskRequest; count: number; first: number }>();
  tasks.forEach((t, i) => {
    const key = shapeKey(t);
    const entry = counts.get(key);
    if (entry) entry.count++;
    else counts.set(key, { task: t, count: 1, first: i });
  });
  const sorted = [...counts.values()].sort((a, b) => b.count - a.count || a.first - b.first);
  const kept: typeof sorted = [];
  let covered = 0;
  for (const e of sorted) {
    if (covered >= coverage * tasks.length) break;
    kept.push(e);
    covered += e.count;
  }
  return kept.map(({ task, count }) => ({
    cpuMilli: task.cpuMilli,
    gpuCount: task.gpuCount,
    gpuMilli: task.gpuCount === 0 ? 0 : task.gpuMilli,
    modelMask: cluster.modelMaskOf(task.allowedModels),
    popularity: count / covered,
  }));
}

/**
 * Fragmentation of one node state: Σ_m p_m · F(m), where F(m) is all idle milli if m cannot
 * run there at all (or needs no GPU), else the idle milli on GPUs m cannot use.
 *
 * @param cpuFree free CPU of the node
 * @param gpuFree free milli per device (only the first `count` entries are read)
 * @param gpuModelBits model bit per device, aligned with gpuFree
 */
export function nodeFragmentation(
  workload: TargetWorkload,
  cpuFree: number,
  gpuFree: ArrayLike<number>,
  gpuModelBits: ArrayLike<number>,
  count: number,
): number {
  let idle = 0;
  for (let g = 0; g < count; g++) idle += gpuFree[g] as number;
  if (idle === 0) return 0;
  let frag = 0;
  for (const m of workload) {
    if (m.gpuCount === 0 || cpuFree < m.cpuMilli) {
      frag += m.popularity * idle;
      continue;
    }
    const demand = m.gpuMilli;
    let usable = 0;
    let stranded = 0;
    for (let g = 0; g < count; g++) {
      const free = gpuFree[g] as number;
      if (free >= demand && (m.modelMask & (1 << (gpuModelBits[g] as number))) !== 0) usable++;
      else stranded += free;
    }
    frag += m.popularity * (usable >= m.gpuCount ? stranded : idle);
  }
  return frag;
}

/** Fragmentation of node n as it is now. */
export function clusterNodeFragmentation(cluster: ClusterState, workload: TargetWorkload, n: number): number {
  const start = cluster.gpuStart[n] as number;
  const end = cluster.gpuStart[n + 1] as number;
  return nodeFragmentation(workload, cluster.cpuFree[n] as number, cluster.gpuFree.subarray(start, end), cluster.gpuModel.subarray(start, end), end - start);
}

/**
 * Fragmentation of node n if task t (its CPU and `gpuMilli` on each local device in `devices`)
 * were placed there. `scratch` must hold at least the node's GPU count.
 */
export function fragmentationAfter(
  cluster: ClusterState,
  workload: TargetWorkload,
  n: number,
  t: { readonly cpuMilli: number; readonly gpuMilli: number },
  devices: readonly number[],
  scratch: Int32Array,
): number {
  const start = cluster.gpuStart[n] as number;
  const end = cluster.gpuStart[n + 1] as number;
  for (let g = start; g < end; g++) scratch[g - start] = cluster.gpuFree[g] as number;
  for (const d of devices) scratch[d] = (scratch[d] as number) - t.gpuMilli;
  return nodeFragmentation(workload, (cluster.cpuFree[n] as number) - t.cpuMilli, scratch, cluster.gpuModel.subarray(start, end), end - start);
}

/** Cluster fragmentation as a share of total GPU capacity (0..1). */
export function clusterFragmentationRatio(cluster: ClusterState, workload: TargetWorkload): number {
  let frag = 0;
  for (let n = 0; n < cluster.nodeCount; n++) frag += clusterNodeFragmentation(cluster, workload, n);
  return frag / cluster.totalGpuMilli;
}

