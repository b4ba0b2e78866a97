/**
 * The placement policy framework: the extension points a policy implements, and the engine
 * that runs one task through them (filter → score → pick → choose devices → allocate).
 *
 * Feasibility (CPU, memory, GPU model, whole-GPU rules) is the engine's job and is the same
 * for every policy, so no policy can over-allocate. A policy only ranks feasible nodes.
 */
import type { ClusterState, PreparedTask, UnfitReason } from './cluster.ts';
import type { Placement, TaskRequest } from './model.ts';
import type { Rng } from './rng.ts';
import type { TargetWorkload } from './workload.ts';

/** What a policy is built with. */
export interface PolicyContext {
  readonly cluster: ClusterState;
  /** Seeded; the policy's only source of randomness. */
  readonly rng: Rng;
  /** The task shapes expected in this cluster, most popular first (used by fragmentation-aware policies). */
  readonly workload: TargetWorkload;
}

export interface PlacementPolicy {
  readonly name: string;
  /**
   * Optional extra filter on a node that already fits. Return null to keep the node, or a short
   * reason (shown in "why pending") to drop it.
   */
  filter?(node: number, task: PreparedTask): string | null;
  /**
   * Score a node that fits the task. Integers; the highest wins; equal scores go to the node
   * that comes first in the session's node order. Must not change any state.
   */
  score(node: number, task: PreparedTask): number;
  /**
   * Optional: pick the node yourself from all feasible nodes (given in node order), instead of
   * by score. Returns an index into `feasible`.
   */
  select?(feasible: readonly number[], task: PreparedTask): number;
  /** Optional: the devices (local indices) to use on the chosen node. Default: ClusterState.defaultDevices. */
  chooseDevices?(node: number, task: PreparedTask): number[];
  /**
   * Optional: told after each successful placement, and for each task already running when a
   * session starts (PlacementSession.adopt), so the policy can keep its own bookkeeping.
   */
  placed?(task: PreparedTask, placement: Placement): void;
}

export type PolicyFactory = (ctx: PolicyContext) => PlacementPolicy;

export type PlaceResult =
  | { readonly ok: true; readonly placement: Placement; readonly score: number }
  | { readonly ok: false; readonly reason: string };

/** A policy bound to a cluster and a fixed node order (the tie-break), placing tasks one at a time. */
export class PlacementSession {
  private readonly feasible: number[] = [];

  constructor(
    readonly cluster: ClusterState,
    readonly policy: PlacementPolicy,
    /** Tie-break order of node indices: earlier wins among equal scores. */
    readonly nodeOrder: Int32Array,
  ) {}

  /** Records a task that already runs at `placement` (from a snapshot): allocates it and tells the policy. */
  adopt(request: TaskRequest, placement: Placement): string | null {
    const t = this.cluster.prepare(request);
    const error = this.cluster.allocate(placement, t);
    if (error === null) this.policy.placed?.(t, placement);
    return error;
  }

  /** Places one task now or says why it cannot be placed. Allocates on success. */
  place(request: TaskRequest): PlaceResult {
    const t = this.cluster.prepare(request);
    const choice = this.choose(t);
    if (choice.node < 0) return { ok: false, reason: this.explain(t) };
    const devices = this.policy.chooseDevices?.(choice.node, t) ?? this.cluster.defaultDevices(choice.node, t);
    const placement: Placement = {
      node: choice.node,
      gpus: [...devices].sort((a, b) => a - b),
      gpuMilli: t.gpuCount === 0 ? 0 : t.gpuMilli,
      cpuMilli: t.cpuMilli,
      memoryMib: t.memoryMib,
    };
    const error = this.cluster.allocate(placement, t);
    if (error !== null) throw new Error(`policy ${this.policy.name} chose an invalid placement: ${error}`);
    this.policy.placed?.(t, placement);
    return { ok: true, placement, score: choice.score };
  }

  private choose(t: PreparedTask): { node: number; score: number } {
    const { cluster, policy, nodeOrder } = this;
    if (policy.select) {
      const feasible = this.feasible;
      feasible.length = 0;
      for (const n of nodeOrder) if (cluster.fits(n, t) && (policy.filter?.(n, t) ?? null) === null) feasible.push(n);
      if (feasible.length === 0) return { node: -1, score: 0 };
      const picked = feasible[policy.select(feasible, t)];
      return { node: picked ?? -1, score: 0 };
    }
    let best = -1;
    let bestScore = -Infinity;
    for (let i = 0; i < nodeOrder.length; i++) {
      const n = nodeOrder[i] as number;
      if (!cluster.fits(n, t)) continue;
      if (policy.filter && policy.filter(n, t) !== null) continue;
      const s = policy.score(n, t);
      if (s > bestScore) {
        bestScore = s;
        best = n;
      }
    }
    return { node: best, score: bestScore };
  }

  /** kube-scheduler style: "0/1213 nodes can take it: 900 not enough GPU, 313 not enough CPU". */
  private explain(t: PreparedTask): string {
    const counts = new Map<string, number>();
    const label: Record<UnfitReason, string> = {
      cpu: 'not enough CPU',
      memory: 'not enough memory',
      'gpu-model': `no GPU of an allowed model (${t.allowedModels.join(', ')})`,
      gpu: t.kind === 'whole' ? `fewer than ${t.gpuCount} free GPUs` : `no GPU with ${t.gpuMilli} milli free`,
    };
    for (let n = 0; n < this.cluster.nodeCount; n++) {
      const r = this.cluster.unfitReason(n, t);
      const key = r === null ? (this.policy.filter?.(n, t) ?? 'fits') : label[r];
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    const parts = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([k, v]) => `${v} ${k}`);
    return `0/${this.cluster.nodeCount} nodes can take it: ${parts.join(', ')}`;
  }
}
