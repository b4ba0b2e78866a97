/**
 * Whether a job could ever run on a set of nodes, even with nothing else on them: every task
 * of a group must fit an empty node (GPUs of one allowed model, CPU, memory), the group's
 * tasks must fit the nodes together, and a gang runs on one GPU model. The server refuses at
 * submission what no registered node could hold; the schedulers give a job that no schedulable
 * node could hold the reason `unschedulable` and let the jobs behind it go (Slurm's `--bf`,
 * Kueue's BestEffortFIFO). These are necessary conditions: a job that fails them never fits;
 * one that passes may still wait for a shape the cluster rarely has free.
 */
import { GPU_MILLI, type GpuModel, type NodeSpec } from '../model.ts';
import { minReplicas, type TaskGroupSpec } from './model.ts';

/**
 * The field of a task group that no node can satisfy (`task`: no node has it all at once;
 * `tasks`: the job's groups together, `group` then −1).
 */
export type ShortResource = 'gpus' | 'gpuModels' | 'cpu' | 'memory' | 'replicas' | 'task' | 'tasks';

export interface Shortfall {
  /** Index of the task group in the job's groups (−1: the groups together). */
  readonly group: number;
  readonly resource: ShortResource;
  /** One line, e.g. "9 GPUs on one node, but the largest node has 8 (H100)". */
  readonly message: string;
}

/** Nodes of one capacity, counted once (a cluster has few shapes however many nodes). */
export interface NodeShape {
  readonly cpuMilli: number;
  readonly memoryMib: number;
  /** GPUs per model. */
  readonly gpus: ReadonlyMap<GpuModel, number>;
  readonly count: number;
}

export function nodeShapes(nodes: Iterable<Pick<NodeSpec, 'cpuMilli' | 'memoryMib' | 'gpus'>>): NodeShape[] {
  const byKey = new Map<string, { cpuMilli: number; memoryMib: number; gpus: Map<GpuModel, number>; count: number }>();
  for (const n of nodes) {
    const gpus = new Map<GpuModel, number>();
    for (const m of n.gpus) gpus.set(m, (gpus.get(m) ?? 0) + 1);
    const key = `${n.cpuMilli}|${n.memoryMib}|${[...gpus].sort((a, b) => (a[0] < b[0] ? -1 : 1)).join(',')}`;
    const s = byKey.get(key);
    if (s) s.count++;
    else byKey.set(key, { cpuMilli: n.cpuMilli, memoryMib: n.memoryMib, gpus, count: 1 });
  }
  return [...byKey.values()];
}

/** "10000", "0.5" cores. */
export function formatCores(milli: number): string {
  return String(Math.round(milli) / 1000);
}

/** "512Gi", "1.5Gi", "300Mi". */
export function formatMemory(mib: number): string {
  if (mib < 1024) return `${mib}Mi`;
  return mib % 1024 === 0 ? `${mib / 1024}Gi` : `${(mib / 1024).toFixed(1)}Gi`;
}

/**
 * Why no node of `shapes` could ever run a job of these groups on one of `models` (the GPU
 * models it may use; ignored when no group needs a GPU), or null when some could. `node` is
 * how messages name a node ("node", "schedulable node"). Reports, in this order: the groups
 * together when each fits a model alone but their whole GPUs exceed what it has; the first
 * group that fits none of its allowed models (naming its field); else that no one model fits
 * every group.
 */
export function shortfall(groups: readonly TaskGroupSpec[], models: readonly GpuModel[], shapes: readonly NodeShape[], node = 'node'): Shortfall | null {
  const gpuJob = groups.some((g) => g.task.gpuCount > 0);
  if (!gpuJob) {
    for (let i = 0; i < groups.length; i++) {
      const s = groupShortfall(groups[i] as TaskGroupSpec, i, [], shapes, node);
      if (s) return s;
    }
    return null;
  }
  const allowedIn = (g: TaskGroupSpec, m: GpuModel): boolean => g.task.allowedModels.length === 0 || g.task.allowedModels.includes(m);
  // Whole GPUs the job holds at once (fractions aside), and the most any one model has.
  let wholeGpus = 0;
  for (const g of groups) if (g.task.gpuMilli >= GPU_MILLI) wholeGpus += minReplicas(g) * g.task.gpuCount;
  let most: { model: GpuModel | undefined; gpus: number } = { model: undefined, gpus: 0 };
  for (const m of models) {
    if (!groups.every((g, i) => allowedIn(g, m) && groupShortfall(g, i, [m], shapes, node) === null)) continue;
    const total = totalGpus(shapes, m);
    if (total >= wholeGpus) return null;
    if (total > most.gpus) most = { model: m, gpus: total };
  }
  // Every group fits alone on some model, but not all of them together.
  if (most.model !== undefined) return { group: -1, resource: 'tasks', message: `its tasks need ${wholeGpus} GPUs of one model at once, but the ${node}s have ${most.gpus} (${most.model})` };
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i] as TaskGroupSpec;
    const own = g.task.gpuCount > 0 ? models.filter((m) => allowedIn(g, m)) : models;
    const asked = g.task.allowedModels.length > 0 ? g.task.allowedModels : models;
    if (g.task.gpuCount > 0 && own.length === 0 && asked.some((m) => shapes.some((x) => x.gpus.has(m)))) {
      return { group: i, resource: 'gpuModels', message: `its task groups allow no GPU model in common (${asked.join(', ')} here)` };
    }
    const s = groupShortfall(g, i, own, shapes, node, asked);
    if (s) return s;
  }
  // Each group fits some model, but no one model fits them all.
  return { group: 0, resource: 'gpuModels', message: 'no one GPU model has room for all its task groups (a job runs on one model)' };
}

/**
 * Why the tasks of one group could never all run on `models` (one model per task), or null.
 * `asked`: the models the group asked for, for the message when no node has one.
 */
function groupShortfall(g: TaskGroupSpec, group: number, models: readonly GpuModel[], shapes: readonly NodeShape[], node: string, asked: readonly GpuModel[] = models): Shortfall | null {
  const t = g.task;
  const short = (resource: ShortResource, message: string): Shortfall => ({ group, resource, message });
  // Devices one task needs of a model (a fraction needs one device with room).
  const devices = t.gpuCount === 0 ? 0 : t.gpuMilli < GPU_MILLI ? 1 : t.gpuCount;
  const gpusOf = (s: NodeShape): { model: GpuModel | undefined; count: number } => {
    let best: { model: GpuModel | undefined; count: number } = { model: undefined, count: 0 };
    for (const m of models) {
      const c = s.gpus.get(m) ?? 0;
      if (c > best.count) best = { model: m, count: c };
    }
    return best;
  };
  if (devices > 0) {
    let most: { model: GpuModel | undefined; count: number } = { model: undefined, count: 0 };
    for (const s of shapes) {
      const b = gpusOf(s);
      if (b.count > most.count) most = b;
    }
    if (most.count === 0) {
      const present = [...new Set(shapes.flatMap((s) => [...s.gpus.keys()]))].sort();
      if (present.length === 0) return short('gpuModels', `needs a GPU, but no ${node} has one`);
      return short('gpuModels', `no ${node} has a ${asked.length > 0 ? asked.join(' or ') : 'usable'} GPU (they have ${present.join(', ')})`);
    }
    if (devices > most.count) return short('gpus', `${devices} GPUs on one node, but the largest ${node} has ${most.count} (${most.model})`);
  }
  let maxCpu = 0;
  let maxMem = 0;
  for (const s of shapes) {
    maxCpu = Math.max(maxCpu, s.cpuMilli);
    maxMem = Math.max(maxMem, s.memoryMib);
  }
  if (t.cpuMilli > maxCpu) return short('cpu', `${formatCores(t.cpuMilli)} cores, the largest ${node} has ${formatCores(maxCpu)}`);
  if (t.memoryMib > maxMem) return short('memory', `${formatMemory(t.memoryMib)} of memory, the largest ${node} has ${formatMemory(maxMem)}`);
  // Tasks of the group that empty nodes hold at once, on the best model.
  const perModel = devices === 0 ? [undefined] : models;
  let most = 0;
  for (const m of perModel) {
    let n = 0;
    for (const s of shapes) n += s.count * tasksOn(s, m, devices, t.gpuMilli, t.cpuMilli, t.memoryMib);
    most = Math.max(most, n);
  }
  if (most === 0) {
    const gpuText = devices === 0 ? '' : t.gpuMilli < GPU_MILLI ? `a ${models.join('/')} GPU, ` : `${devices} ${models.join('/')} GPUs, `;
    return short('task', `no ${node} has ${gpuText}${formatCores(t.cpuMilli)} cores and ${formatMemory(t.memoryMib)} of memory at once`);
  }
  const min = minReplicas(g);
  if (most < min) return short('replicas', `${min} tasks must run at once, but the ${node}s can hold at most ${most}`);
  return null;
}

/** GPUs of `model` over all the nodes of `shapes`. */
function totalGpus(shapes: readonly NodeShape[], model: GpuModel): number {
  let n = 0;
  for (const s of shapes) n += s.count * (s.gpus.get(model) ?? 0);
  return n;
}

/** Tasks of this size an empty node of shape `s` holds at once (on GPUs of `model`). */
function tasksOn(s: NodeShape, model: GpuModel | undefined, devices: number, gpuMilli: number, cpuMilli: number, memoryMib: number): number {
  let n = Infinity;
  if (devices > 0) {
    const c = model === undefined ? 0 : (s.gpus.get(model) ?? 0);
    n = gpuMilli < GPU_MILLI ? c * Math.floor(GPU_MILLI / gpuMilli) : Math.floor(c / devices);
  }
  if (cpuMilli > 0) n = Math.min(n, Math.floor(s.cpuMilli / cpuMilli));
  if (memoryMib > 0) n = Math.min(n, Math.floor(s.memoryMib / memoryMib));
  // A task that asks for nothing: as many as you like.
  return n === Infinity ? Number.MAX_SAFE_INTEGER : n;
}
