/**
 * The mutable state of a cluster for placement: free CPU, memory and milli-GPU per device,
 * kept in flat typed arrays so that policies can scan thousands of nodes per task.
 *
 * GPU models are interned to bit positions (at most 32 distinct models); a task's allowed
 * models become a bit mask, so "may this task use this GPU" is one AND.
 */
import { GPU_MILLI, taskKind, type GpuModel, type NodeSpec, type Placement, type TaskKind, type TaskRequest } from './model.ts';

/** A task with what the cluster derives from it once: its kind and its model mask. */
export interface PreparedTask extends TaskRequest {
  readonly kind: TaskKind;
  /** Bits of the GPU models it may use (all bits when any model will do). */
  readonly modelMask: number;
}

/** Why a node cannot take a task; the first check that fails, in this order. */
export type UnfitReason = 'cpu' | 'memory' | 'gpu-model' | 'gpu';

export const ALL_MODELS = 0xffffffff;

export class ClusterState {
  readonly nodes: readonly NodeSpec[];
  readonly nodeCount: number;
  /** Interned GPU model names; bit i of a mask stands for models[i]. */
  readonly models: readonly GpuModel[];
  readonly cpuFree: Float64Array;
  readonly memFree: Float64Array;
  /** GPUs of node n are gpuFree[gpuStart[n] .. gpuStart[n + 1]). */
  readonly gpuStart: Int32Array;
  /** Free milli-GPU per device. */
  readonly gpuFree: Int32Array;
  /** Model bit index per device. */
  readonly gpuModel: Uint8Array;
  /** OR of the model bits of a node's GPUs. */
  readonly nodeModelMask: Uint32Array;
  /** 1 when all the node's GPUs are of one model (the fast path). */
  readonly nodeHomogeneous: Uint8Array;
  /** GPUs with all 1000 milli free, per node. */
  readonly fullFreeGpus: Int32Array;
  /** Largest free milli on any one GPU, per node. */
  readonly maxGpuFree: Int32Array;
  /** Free milli-GPU summed over a node's GPUs. */
  readonly idleGpuMilli: Int32Array;
  /** Bumped whenever a node's free capacity changes; policies key their caches on it. */
  readonly version: Uint32Array;
  /** GPUs with all 1000 milli free, per model bit, over every node. */
  readonly fullFreeByModel: Int32Array;
  readonly totalGpuMilli: number;
  private allocated = 0;
  /** Nodes in the order their state changed (repeats allowed), for incremental score indexes. */
  private changeLog = new Int32Array(1024);
  private changeLen = 0;
  /** Absolute position of changeLog[0]; entries before it were dropped. */
  private changeBase = 0;
  private readonly maskCache = new Map<string, number>();

  constructor(nodes: readonly NodeSpec[]) {
    this.nodes = nodes;
    const n = nodes.length;
    this.nodeCount = n;
    const models: GpuModel[] = [];
    const modelBit = new Map<GpuModel, number>();
    let gpuTotal = 0;
    for (const node of nodes) {
      for (const m of node.gpus) {
        if (!modelBit.has(m)) {
          if (models.length === 32) throw new Error('ClusterState supports at most 32 GPU models');
          modelBit.set(m, models.length);
          models.push(m);
        }
      }
      gpuTotal += node.gpus.length;
    }
    this.models = models;
    this.cpuFree = new Float64Array(n);
    this.memFree = new Float64Array(n);
    this.gpuStart = new Int32Array(n + 1);
    this.gpuFree = new Int32Array(gpuTotal).fill(GPU_MILLI);
    this.gpuModel = new Uint8Array(gpuTotal);
    this.nodeModelMask = new Uint32Array(n);
    this.nodeHomogeneous = new Uint8Array(n);
    this.fullFreeGpus = new Int32Array(n);
    this.maxGpuFree = new Int32Array(n);
    this.idleGpuMilli = new Int32Array(n);
    this.version = new Uint32Array(n);
    this.fullFreeByModel = new Int32Array(models.length);
    let g = 0;
    nodes.forEach((node, i) => {
      this.cpuFree[i] = node.cpuMilli;
      this.memFree[i] = node.memoryMib;
      this.gpuStart[i] = g;
      let mask = 0;
      for (const m of node.gpus) {
        const bit = modelBit.get(m) ?? 0;
        this.gpuModel[g++] = bit;
        this.fullFreeByModel[bit] = (this.fullFreeByModel[bit] as number) + 1;
        mask |= 1 << bit;
      }
      this.gpuStart[i + 1] = g;
      this.nodeModelMask[i] = mask >>> 0;
      this.nodeHomogeneous[i] = mask === 0 || (mask & (mask - 1)) === 0 ? 1 : 0;
      this.refreshGpuAggregates(i);
    });
    this.totalGpuMilli = gpuTotal * GPU_MILLI;
  }

  /** Milli-GPU currently held by placed tasks. */
  get allocatedGpuMilli(): number {
    return this.allocated;
  }

  /** The most GPUs any node has (sizes scratch buffers). */
  get maxGpusPerNode(): number {
    let max = 0;
    for (let n = 0; n < this.nodeCount; n++) max = Math.max(max, this.gpuCount(n));
    return max;
  }

  gpuCount(node: number): number {
    return (this.gpuStart[node + 1] as number) - (this.gpuStart[node] as number);
  }

  /** The mask of allowed models; 0 when none of them exists in this cluster. */
  modelMaskOf(allowed: readonly GpuModel[]): number {
    if (allowed.length === 0) return ALL_MODELS;
    const key = allowed.join('|');
    let mask = this.maskCache.get(key);
    if (mask === undefined) {
      mask = 0;
      for (const m of allowed) {
        const bit = this.models.indexOf(m);
        if (bit >= 0) mask |= 1 << bit;
      }
      mask >>>= 0;
      this.maskCache.set(key, mask);
    }
    return mask;
  }

  prepare(task: TaskRequest): PreparedTask {
    return { ...task, kind: taskKind(task), modelMask: this.modelMaskOf(task.allowedModels) };
  }

  /** May the task use device g (global index) given its free milli? */
  gpuUsable(g: number, t: PreparedTask): boolean {
    if ((t.modelMask & (1 << (this.gpuModel[g] as number))) === 0) return false;
    const free = this.gpuFree[g] as number;
    return t.kind === 'whole' ? free === GPU_MILLI : free >= t.gpuMilli;
  }

  /** Can node n take task t now? CPU, memory, GPU model and GPU capacity (whole-GPU rules). */
  fits(n: number, t: PreparedTask): boolean {
    return (this.memFree[n] as number) >= t.memoryMib && this.fitsIgnoringMemory(n, t);
  }

  /** fits() without the memory check: what depends only on CPU, GPU count, milli and models. */
  fitsIgnoringMemory(n: number, t: PreparedTask): boolean {
    if ((this.cpuFree[n] as number) < t.cpuMilli) return false;
    if (t.gpuCount === 0) return true;
    if (this.nodeHomogeneous[n] === 1) {
      if (((this.nodeModelMask[n] as number) & t.modelMask) === 0) return false;
      return t.kind === 'whole' ? (this.fullFreeGpus[n] as number) >= t.gpuCount : (this.maxGpuFree[n] as number) >= t.gpuMilli;
    }
    return this.usableGpuCount(n, t) >= t.gpuCount;
  }

  /** Number of devices on node n that task t could use now. */
  usableGpuCount(n: number, t: PreparedTask): number {
    let count = 0;
    const end = this.gpuStart[n + 1] as number;
    for (let g = this.gpuStart[n] as number; g < end; g++) if (this.gpuUsable(g, t)) count++;
    return count;
  }

  /** The first reason node n cannot take t, or null if it can. */
  unfitReason(n: number, t: PreparedTask): UnfitReason | null {
    if ((this.cpuFree[n] as number) < t.cpuMilli) return 'cpu';
    if ((this.memFree[n] as number) < t.memoryMib) return 'memory';
    if (t.gpuCount === 0) return null;
    if (((this.nodeModelMask[n] as number) & t.modelMask) === 0) return 'gpu-model';
    return this.usableGpuCount(n, t) >= t.gpuCount ? null : 'gpu';
  }

  /**
   * The default device choice on a node that fits: the lowest-index free GPUs for whole-GPU
   * tasks, the tightest GPU (least free milli that is enough, lowest index on ties) for a fraction.
   * Returns local device indices.
   */
  defaultDevices(n: number, t: PreparedTask): number[] {
    if (t.gpuCount === 0) return [];
    const start = this.gpuStart[n] as number;
    const end = this.gpuStart[n + 1] as number;
    if (t.kind === 'whole') {
      const picked: number[] = [];
      for (let g = start; g < end && picked.length < t.gpuCount; g++) if (this.gpuUsable(g, t)) picked.push(g - start);
      return picked;
    }
    let best = -1;
    let bestFree = Infinity;
    for (let g = start; g < end; g++) {
      const free = this.gpuFree[g] as number;
      if (free < bestFree && this.gpuUsable(g, t)) {
        best = g - start;
        bestFree = free;
      }
    }
    return best < 0 ? [] : [best];
  }

  /** Takes the placement's resources. Returns an error message, or null on success (nothing changes on error). */
  allocate(p: Placement, t: PreparedTask): string | null {
    const n = p.node;
    if (n < 0 || n >= this.nodeCount) return `node index ${n} out of range`;
    if ((this.cpuFree[n] as number) < p.cpuMilli) return `node ${this.nodes[n]?.id}: not enough CPU`;
    if ((this.memFree[n] as number) < p.memoryMib) return `node ${this.nodes[n]?.id}: not enough memory`;
    if (p.gpus.length !== t.gpuCount) return `placement has ${p.gpus.length} GPUs, task needs ${t.gpuCount}`;
    const start = this.gpuStart[n] as number;
    const count = this.gpuCount(n);
    for (const d of p.gpus) {
      if (d < 0 || d >= count) return `node ${this.nodes[n]?.id}: no GPU ${d}`;
      if (!this.gpuUsable(start + d, t)) return `node ${this.nodes[n]?.id}: GPU ${d} cannot take this task`;
    }
    if (new Set(p.gpus).size !== p.gpus.length) return 'placement names a GPU twice';
    this.cpuFree[n] = (this.cpuFree[n] as number) - p.cpuMilli;
    this.memFree[n] = (this.memFree[n] as number) - p.memoryMib;
    for (const d of p.gpus) this.setGpuFree(start + d, (this.gpuFree[start + d] as number) - p.gpuMilli);
    this.allocated += p.gpus.length * p.gpuMilli;
    this.refreshGpuAggregates(n);
    return null;
  }

  /** Gives back what a placement took (it must have been allocated). */
  release(p: Placement): void {
    const n = p.node;
    const start = this.gpuStart[n] as number;
    this.cpuFree[n] = (this.cpuFree[n] as number) + p.cpuMilli;
    this.memFree[n] = (this.memFree[n] as number) + p.memoryMib;
    for (const d of p.gpus) this.setGpuFree(start + d, (this.gpuFree[start + d] as number) + p.gpuMilli);
    this.allocated -= p.gpus.length * p.gpuMilli;
    this.refreshGpuAggregates(n);
  }

  private setGpuFree(g: number, free: number): void {
    const bit = this.gpuModel[g] as number;
    if (this.gpuFree[g] === GPU_MILLI) this.fullFreeByModel[bit] = (this.fullFreeByModel[bit] as number) - 1;
    if (free === GPU_MILLI) this.fullFreeByModel[bit] = (this.fullFreeByModel[bit] as number) + 1;
    this.gpuFree[g] = free;
  }

  private refreshGpuAggregates(n: number): void {
    let full = 0;
    let max = 0;
    let idle = 0;
    const end = this.gpuStart[n + 1] as number;
    for (let g = this.gpuStart[n] as number; g < end; g++) {
      const free = this.gpuFree[g] as number;
      if (free === GPU_MILLI) full++;
      if (free > max) max = free;
      idle += free;
    }
    this.fullFreeGpus[n] = full;
    this.maxGpuFree[n] = max;
    this.idleGpuMilli[n] = idle;
    this.version[n] = (this.version[n] as number) + 1;
    this.logChange(n);
  }

  /** A cursor for changesSince: the number of state changes so far. */
  get changeCursor(): number {
    return this.changeBase + this.changeLen;
  }

  /**
   * The nodes whose state changed since `cursor`, in order (a node may come more than once), or
   * null when the log no longer reaches back that far. A view of the log: read it before the
   * next change.
   */
  changesSince(cursor: number): Int32Array | null {
    if (cursor < this.changeBase) return null;
    return this.changeLog.subarray(cursor - this.changeBase, this.changeLen);
  }

  private logChange(n: number): void {
    if (this.changeLen === this.changeLog.length) {
      if (this.changeLen < 4 * this.nodeCount) {
        const grown = new Int32Array(this.changeLog.length * 2);
        grown.set(this.changeLog);
        this.changeLog = grown;
      } else {
        // Readers this far behind rescan all nodes, which costs no more than replaying the log.
        this.changeBase += this.changeLen;
        this.changeLen = 0;
      }
    }
    this.changeLog[this.changeLen++] = n;
  }
}
