/**
 * FGD, Fragmentation Gradient Descent (Weng et al., USENIX ATC'23): place the task where the
 * node's fragmentation (for the target workload) grows least. Score ⌊100 · σ(−Δ/1000)⌋; for a
 * fraction, every GPU that fits is tried and the best one is used.
 *
 * Scores are cached per (task shape, node) and reused until the node changes, which is what
 * makes FGD cheap: after one placement only one node's entries go stale.
 */
import type { ClusterState, PreparedTask } from '../cluster.ts';
import type { PolicyFactory } from '../policy.ts';
import { clusterNodeFragmentation, fragmentationAfter, type TargetWorkload } from '../workload.ts';
import { MAX_NODE_SCORE } from './spec.ts';

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/** Per-shape cache of a score and the device that gave it, valid while the node's version matches. */
export interface ShapeScores {
  readonly score: Int16Array;
  readonly device: Int8Array;
  readonly version: Uint32Array;
}

export function newShapeScores(nodeCount: number): ShapeScores {
  return { score: new Int16Array(nodeCount), device: new Int8Array(nodeCount), version: new Uint32Array(nodeCount) };
}

/** Caches of per-shape node scores, keyed by what a score depends on. */
export class ShapeCache {
  private readonly byShape = new Map<string, ShapeScores>();
  constructor(private readonly nodeCount: number) {}

  for(t: PreparedTask): ShapeScores {
    const key = `${t.cpuMilli}/${t.gpuCount}/${t.gpuMilli}/${t.modelMask}`;
    let entry = this.byShape.get(key);
    if (!entry) {
      entry = newShapeScores(this.nodeCount);
      this.byShape.set(key, entry);
    }
    return entry;
  }
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
  const bandOf = (after: number): number => Math.trunc(sigmoid((before - after) / 1000) * MAX_NODE_SCORE);
  if (t.kind !== 'fraction') {
    return { score: bandOf(fragmentationAfter(cluster, workload, n, t, cluster.defaultDevices(n, t), scratch)), device: -1 };
  }
  const start = cluster.gpuStart[n] as number;
  const end = cluster.gpuStart[n + 1] as number;
  let best = -1;
  let bestScore = -1;
  for (let g = start; g < end; g++) {
    if (!cluster.gpuUsable(g, t)) continue;
    const s = bandOf(fragmentationAfter(cluster, workload, n, t, [g - start], scratch));
    if (s > bestScore) {
      bestScore = s;
      best = g - start;
    }
  }
  return { score: bestScore, device: best };
}

export const fgd: PolicyFactory = ({ cluster, workload }) => {
  const cache = new ShapeCache(cluster.nodeCount);
  const fragmentation = new NodeFragmentation(cluster, workload);
  const scratch = new Int32Array(cluster.maxGpusPerNode);
  let lastTask: PreparedTask | undefined;
  let last: ShapeScores | undefined;
  return {
    name: 'fgd',
    score(n, t) {
      if (t !== lastTask) {
        lastTask = t;
        last = cache.for(t);
      }
      const entry = last as ShapeScores;
      if (entry.version[n] !== cluster.version[n]) {
        const { score, device } = fgdScore(cluster, workload, fragmentation.of(n), n, t, scratch);
        entry.score[n] = score;
        entry.device[n] = device;
        entry.version[n] = cluster.version[n] as number;
      }
      return entry.score[n] as number;
    },
    chooseDevices(n, t) {
      const device = last?.device[n] ?? -1;
      return t.kind === 'fraction' && device >= 0 ? [device] : cluster.defaultDevices(n, t);
    },
  };
};
