/**
 * Gang placement: every task of a job (or at least `minReplicas` of each elastic group) is
 * placed through the core's placement session on one GPU model, or nothing is. A failed
 * attempt releases what it took (Volcano's Statement: tentative, then commit or undo).
 */
import type { ClusterState } from '../cluster.ts';
import { GPU_MILLI, type GpuModel, type Placement, type TaskId } from '../model.ts';
import type { PlacementSession } from '../policy.ts';
import { CPU_MODEL, minReplicas, type JobSpec, type TaskBinding, type TaskResources } from './model.ts';
import { taskOf } from './clusterView.ts';

export type GangResult =
  | { readonly ok: true; readonly bindings: readonly TaskBinding[] }
  | { readonly ok: false; readonly code: 'waiting-for-resources' | 'waiting-for-gang' | 'fragmentation'; readonly message: string };

/** Free whole GPUs of `model` on schedulable nodes (`nodeOrder`: the schedulable nodes, ascending). */
export function freeGpus(cluster: ClusterState, nodeOrder: Int32Array, model: GpuModel): number {
  const bit = cluster.models.indexOf(model);
  if (bit < 0) return 0;
  // Every node schedulable (the usual case): the cluster keeps the count.
  if (nodeOrder.length === cluster.nodeCount) return cluster.fullFreeByModel[bit] as number;
  let free = 0;
  for (const n of nodeOrder) {
    const end = cluster.gpuStart[n + 1] as number;
    for (let g = cluster.gpuStart[n] as number; g < end; g++) {
      if (cluster.gpuModel[g] === bit && cluster.gpuFree[g] === 1000) free++;
    }
  }
  return free;
}

/**
 * Places the job's tasks on `model` over the session's (schedulable) nodes; on failure nothing
 * stays allocated. Elastic groups get more than `minReplicas` tasks while they fit and the job
 * stays within `maxGpus` (default: no limit beyond full size).
 */
export function placeGang(cluster: ClusterState, session: PlacementSession, job: JobSpec, model: GpuModel, maxGpus = Infinity): GangResult {
  const placed: Placement[] = [];
  const bindings: TaskBinding[] = [];
  const allowedModels = model === CPU_MODEL ? [] : [model];
  let needed = 0;
  for (const group of job.groups) needed += minReplicas(group) * group.task.gpuCount;
  let extra = maxGpus - needed;
  // The failed task's reason scans every node: read only when the message quotes it.
  let failure: { readonly reason: string } | null = null;
  let failedTask: TaskResources | undefined;
  for (const group of job.groups) {
    const min = minReplicas(group);
    for (let i = 0; i < group.replicas; i++) {
      if (i >= min) {
        if (group.task.gpuCount > extra) break;
        extra -= group.task.gpuCount;
      }
      const r = session.place(taskOf(job, group.name, i, { ...group.task, allowedModels }));
      if (!r.ok) {
        if (i < min) {
          failure = r;
          failedTask = group.task;
        }
        break;
      }
      placed.push(r.placement);
      bindings.push({ group: group.name, index: i, nodeId: cluster.nodes[r.placement.node]?.id ?? ('' as TaskBinding['nodeId']), placement: r.placement });
    }
    if (failure !== null) break;
  }
  if (failure === null) return { ok: true, bindings };
  const tasksPlaced = placed.length;
  const bit = cluster.models.indexOf(model);
  // The fragmentation message quotes the reason, which must then be read before the release.
  if (tasksPlaced > 0 && model !== CPU_MODEL && freeGpus(cluster, session.nodeOrder, model) + freedWhole(cluster, placed, bit) >= needed) failure = { reason: failure.reason };
  for (const p of placed) cluster.release(p);
  const free = model === CPU_MODEL ? 0 : freeGpus(cluster, session.nodeOrder, model);
  if (model !== CPU_MODEL && free >= needed) {
    // GPUs free where the task could use them, but not the CPU or memory: that is no fragmentation.
    const host = failedTask ? hostShortage(cluster, session.nodeOrder, { ...failedTask, allowedModels }) : null;
    if (host !== null) return { ok: false, code: 'waiting-for-resources', message: `not enough free ${host} on the nodes with free ${model} GPUs (${failure.reason})` };
    return { ok: false, code: 'fragmentation', message: `${free} ${model} GPUs are free but not in a shape the ${needed}-GPU gang can use (${failure.reason})` };
  }
  if (tasksPlaced > 0) return { ok: false, code: 'waiting-for-gang', message: `only ${tasksPlaced} of its tasks fit; needs ${needed} ${model} GPUs, ${free} free` };
  return { ok: false, code: 'waiting-for-resources', message: model === CPU_MODEL ? failure.reason : `needs ${needed} ${model} GPUs, ${free} free` };
}

/** GPUs of model `bit` that releasing `placed` leaves entirely free. */
function freedWhole(cluster: ClusterState, placed: readonly Placement[], bit: number): number {
  const added = new Map<number, number>();
  for (const p of placed) {
    const start = cluster.gpuStart[p.node] as number;
    for (const d of p.gpus) if (cluster.gpuModel[start + d] === bit) added.set(start + d, (added.get(start + d) ?? 0) + p.gpuMilli);
  }
  let freed = 0;
  for (const [g, milli] of added) if ((cluster.gpuFree[g] as number) + milli === GPU_MILLI) freed++;
  return freed;
}

/**
 * 'CPU' or 'memory' when some schedulable node has the GPUs the task needs free but none of
 * those has its CPU (then memory) free; null when no node has the GPUs (fragmentation).
 */
function hostShortage(cluster: ClusterState, nodeOrder: Int32Array, task: TaskResources): 'CPU' | 'memory' | null {
  const gpusOnly = cluster.prepare({ ...task, id: '' as TaskId, cpuMilli: 0, memoryMib: 0 });
  let gpuNodes = 0;
  let cpuOk = false;
  for (const n of nodeOrder) {
    if (!cluster.fitsIgnoringMemory(n, gpusOnly)) continue;
    gpuNodes++;
    if ((cluster.cpuFree[n] as number) < task.cpuMilli) continue;
    cpuOk = true;
    if ((cluster.memFree[n] as number) >= task.memoryMib) return null;
  }
  if (gpuNodes === 0) return null;
  return cpuOk ? 'memory' : 'CPU';
}
