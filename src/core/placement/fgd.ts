/**
 * FGD, Fragmentation Gradient Descent (Weng et al., USENIX ATC'23): place the task where the
 * node's fragmentation (for the target workload) grows least. Score ⌊100 · σ(−Δ/1000)⌋; for a
 * fraction, every GPU that fits is tried and the best one is used.
 *
 * A score depends only on the node and the task's shape, so the engine caches it per node
 * version (scoreKey): after one placement only one node is re-scored.
 */
import type { ClusterState, PreparedTask } from '../cluster.ts';
import type { PolicyFactory } from '../policy.ts';
import { clusterNodeFragmentation, fragmentationAfter, type TargetWorkload } from '../workload.ts';
import { MAX_NODE_SCORE } from './spec.ts';

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/** FGD's integer score for a change of node fragmentation from `before` to `after`. */
export function fgdBand(before: number, after: number): number {
  return Math.trunc(sigmoid((before - after) / 1000) * MAX_NODE_SCORE);
}

/** Node fragmentation now, cached per node version. */
export class NodeFragmentation {
  private readonly value: Float64Array;
  private readonly version: Uint32Array;
  constructor(
    private readonly cluster: ClusterState,
    private readonly workload: TargetWorkload,
  ) {
    this.value = new Float64Array(cluster.nodeCount);
    this.version = new Uint32Array(cluster.nodeCount);
  }

  of(n: number): number {
    if (this.version[n] !== this.cluster.version[n]) {
      this.value[n] = clusterNodeFragmentation(this.cluster, this.workload, n);
      this.version[n] = this.cluster.version[n] as number;
    }
    return this.value[n] as number;
  }
}

/**
 * The best FGD score for placing t on n and the device it uses (−1 for whole-GPU and CPU tasks,
 * which take the lowest-index free GPUs).
 */
export function fgdScore(
  cluster: ClusterState,
  workload: TargetWorkload,
  before: number,
  n: number,
  t: PreparedTask,
  scratch: Int32Array,
): { score: number; device: number } {
  if (t.kind !== 'fraction') {
    return { score: fgdBand(before, fragmentationAfter(cluster, workload, n, t, cluster.defaultDevices(n, t), scratch)), device: -1 };
  }
  const start = cluster.gpuStart[n] as number;
  const end = cluster.gpuStart[n + 1] as number;
  let best = -1;
  let bestScore = -1;
  // On a node of one model, GPUs with the same free milli give the same score: try each value once
  // (the first, lowest-index GPU of a value is the one that would win the tie anyway).
  const sameModel = cluster.nodeHomogeneous[n] === 1;
  for (let g = start; g < end; g++) {
    if (!cluster.gpuUsable(g, t)) continue;
    if (sameModel && seenEarlier(cluster.gpuFree, start, g)) continue;
    const s = fgdBand(before, fragmentationAfter(cluster, workload, n, t, [g - start], scratch));
    if (s > bestScore) {
      bestScore = s;
      best = g - start;
    }
  }
  return { score: bestScore, device: best };
}

function seenEarlier(free: Int32Array, start: number, g: number): boolean {
  const value = free[g];
  for (let h = start; h < g; h++) if (free[h] === value) return true;
  return false;
}

export const fgd: PolicyFactory = ({ cluster, workload }) => {
  const fragmentation = new NodeFragmentation(cluster, workload);
  const scratch = new Int32Array(cluster.maxGpusPerNode);
  return {
    name: 'fgd',
    scoreKey: () => '',
    score: (n, t) => fgdScore(cluster, workload, fragmentation.of(n), n, t, scratch).score,
    chooseDevices(n, t) {
      const { device } = fgdScore(cluster, workload, fragmentation.of(n), n, t, scratch);
      return device >= 0 ? [device] : cluster.defaultDevices(n, t);
    },
  };
};
