/**
 * The FGD placement protocol (../shared/docs/placement-benchmark.md) for one policy and one
 * seed: shuffle and inflate the pods to 130 % of GPU capacity, place them one at a time in
 * that order, drop what does not fit, and record unallocated GPU % along the arrival axis.
 * Pure apart from the clock used to time placements.
 */
import { performance } from 'node:perf_hooks';
import { ClusterState } from '../core/cluster.ts';
import { taskGpuMilli, type NodeSpec, type TaskRequest } from '../core/model.ts';
import { PlacementSession, type PolicyFactory } from '../core/policy.ts';
import { getPlacementPolicy } from '../core/placement/index.ts';
import { Rng } from '../core/rng.ts';
import { targetWorkload } from '../core/workload.ts';

/** Arrival levels (% of GPU capacity) at which the curve is read. */
export const CURVE_POINTS = [80, 90, 95, 100, 105, 110, 120, 130] as const;
export const INFLATE_TO = 1.3;

export interface SeedResult {
  readonly policy: string;
  readonly seed: number;
  /** Unallocated GPU % at each of CURVE_POINTS. */
  readonly curve: readonly number[];
  readonly placed: number;
  readonly dropped: number;
  readonly pods: number;
  /** Seconds spent in the policy's placement calls. */
  readonly placeSeconds: number;
  /** The floor on unallocated % at 100 % arrival for this seed's pods (see lowerBoundAt100). */
  readonly lowerBound: number;
}

/**
 * The pod sequence for a seed: the trace shuffled, then inflated (or trimmed) to 130 % of
 * capacity. Consumes the rng exactly the same way for every policy.
 */
export function podSequence(pods: readonly TaskRequest[], capacityMilli: number, rng: Rng): TaskRequest[] {
  const seq = rng.shuffle([...pods]);
  const target = INFLATE_TO * capacityMilli;
  let total = seq.reduce((sum, p) => sum + taskGpuMilli(p), 0);
  if (total < target) {
    for (;;) {
      const next = pods[rng.int(0, pods.length - 1)] as TaskRequest;
      if (total + taskGpuMilli(next) > target) break;
      seq.push(next);
      total += taskGpuMilli(next);
    }
  } else {
    while (total > target && seq.length > 0) {
      const [removed] = seq.splice(rng.int(0, seq.length - 1), 1);
      total -= taskGpuMilli(removed as TaskRequest);
    }
  }
  return seq;
}

/**
 * The floor on unallocated % at 100 % arrival: a GPU holding a fraction of size s > 500 keeps a
 * gap of 1000 − s that only a fraction ≤ 1000 − s can use, one such pod per gap, and a pod that
 * fits must be placed. So waste ≥ (1000 − s) · (#pods of size s − #pods ≤ 1000 − s) for each
 * s; the bound is the largest over s, among the pods that arrive by 100 %.
 */
export function lowerBoundAt100(seq: readonly TaskRequest[], capacityMilli: number): number {
  const sizes: number[] = [];
  let arrived = 0;
  for (const p of seq) {
    if (arrived >= capacityMilli) break;
    arrived += taskGpuMilli(p);
    if (p.gpuCount === 1 && p.gpuMilli < 1000) sizes.push(p.gpuMilli);
  }
  const countBySize = new Map<number, number>();
  for (const s of sizes) countBySize.set(s, (countBySize.get(s) ?? 0) + 1);
  let worst = 0;
  for (const [s, count] of countBySize) {
    if (s <= 500) continue;
    const gap = 1000 - s;
    const fillers = sizes.filter((x) => x <= gap).length;
    worst = Math.max(worst, gap * Math.max(0, count - fillers));
  }
  return (100 * worst) / capacityMilli;
}

/** Runs one policy on one seed. `factory` overrides the registry's policy of that name (benchmarks of variants). */
export function runPlacementSeed(
  nodes: readonly NodeSpec[],
  pods: readonly TaskRequest[],
  policyName: string,
  seed: number,
  factory: PolicyFactory | undefined = getPlacementPolicy(policyName),
): SeedResult {
  if (!factory) throw new Error(`unknown placement policy '${policyName}'`);
  const cluster = new ClusterState(nodes);
  const rng = Rng.fromSeed(seed);
  const seq = podSequence(pods, cluster.totalGpuMilli, rng);
  const nodeOrder = rng.permutation(cluster.nodeCount);
  const policy = factory({ cluster, rng, workload: targetWorkload(cluster, pods) });
  const session = new PlacementSession(cluster, policy, nodeOrder);

  const capacity = cluster.totalGpuMilli;
  const curve: number[] = [];
  let nextPoint = 0;
  let arrived = 0;
  let placed = 0;
  const start = performance.now();
  for (const pod of seq) {
    if (session.place(pod).ok) placed++;
    arrived += taskGpuMilli(pod);
    while (nextPoint < CURVE_POINTS.length && (100 * arrived) / capacity >= (CURVE_POINTS[nextPoint] as number)) {
      curve.push(100 - (100 * cluster.allocatedGpuMilli) / capacity);
      nextPoint++;
    }
  }
  const placeSeconds = (performance.now() - start) / 1000;
  // Inflation stops just below 130 %: read the last points at the final event.
  while (curve.length < CURVE_POINTS.length) curve.push(100 - (100 * cluster.allocatedGpuMilli) / capacity);
  return {
    policy: policyName,
    seed,
    curve,
    placed,
    dropped: seq.length - placed,
    pods: seq.length,
    placeSeconds,
    lowerBound: lowerBoundAt100(seq, capacity),
  };
}
