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
import { ScoreTree } from './scoreIndex.ts';
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
   * Optional: declares that `score` and `filter` depend only on node n's own state (anything
   * that changes it bumps `cluster.version[n]`) and on the task's CPU, GPU count, GPU milli,
   * allowed models and this key. The engine then caches scores per node version and keeps
   * them in an index, so a task costs O(changed nodes · log n) instead of a full scan, with
   * exactly the same choice.
   */
  scoreKey?(task: PreparedTask): string;
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

/** Scores of one task shape over all nodes, kept current from the cluster's change log. */
interface ShapeIndex {
  readonly tree: ScoreTree;
  /** cluster.version[n] when node n was last scored (0: never). */
  readonly scoredAt: Uint32Array;
  cursor: number;
}

/** How many nodes give each reason for not taking one task shape, kept current like a ShapeIndex. */
interface Explanation {
  readonly labels: string[];
  readonly index: Map<string, number>;
  /** Nodes per reason text, in the order the texts first came. */
  readonly counts: Map<string, number>;
  /** Index in labels of each node's reason (-1: not yet known). */
  readonly nodeLabel: Int32Array;
  readonly checkedAt: Uint32Array;
  cursor: number;
}

/** A policy bound to a cluster and a fixed node order (the tie-break), placing tasks one at a time. */
export class PlacementSession {
  private readonly feasible: number[] = [];
  private readonly indexes = new Map<string, ShapeIndex>();
  private readonly explanations = new Map<string, Explanation>();
  /** Position of each node in nodeOrder. */
  private readonly position: Int32Array;

  constructor(
    readonly cluster: ClusterState,
    readonly policy: PlacementPolicy,
    /** The nodes to consider, in tie-break order: earlier wins among equal scores. */
    readonly nodeOrder: Int32Array,
  ) {
    // Nodes left out of the order (not schedulable) have no position and are never chosen.
    this.position = new Int32Array(cluster.nodeCount).fill(-1);
    nodeOrder.forEach((n, i) => (this.position[n] = i));
  }

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
    if (choice.node < 0) {
      // The reason scans every node: computed only when someone reads it.
      let reason: string | undefined;
      // eslint-disable-next-line @typescript-eslint/no-this-alias -- the result's getter reads it (no closure per failure)
      const session = this;
      return {
        ok: false,
        get reason(): string {
          return (reason ??= session.explain(t));
        },
      };
    }
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
    if (this.policy.scoreKey && !this.policy.select) return this.chooseIndexed(t, this.policy.scoreKey(t));
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
    const filter = policy.filter?.bind(policy);
    for (let i = 0; i < nodeOrder.length; i++) {
      const n = nodeOrder[i] as number;
      if (!cluster.fits(n, t)) continue;
      if (filter !== undefined && filter(n, t) !== null) continue;
      const s = policy.score(n, t);
      if (s > bestScore) {
        bestScore = s;
        best = n;
      }
    }
    return { node: best, score: bestScore };
  }

  private chooseIndexed(t: PreparedTask, policyKey: string): { node: number; score: number } {
    const { cluster } = this;
    const key = `${policyKey}#${t.cpuMilli}/${t.gpuCount}/${t.gpuMilli}/${t.modelMask}`;
    let index = this.indexes.get(key);
    if (!index) {
      index = { tree: new ScoreTree(this.nodeOrder.length), scoredAt: new Uint32Array(cluster.nodeCount), cursor: -1 };
      this.indexes.set(key, index);
    }
    const ix = index;
    const changed = cluster.changesSince(ix.cursor);
    if (changed === null) for (let n = 0; n < cluster.nodeCount; n++) this.rescore(ix, t, n);
    else for (const n of changed) this.rescore(ix, t, n);
    ix.cursor = cluster.changeCursor;
    // The best node by score; memory is not part of the key, so skip (and then restore) the
    // best nodes that lack it.
    const skipped: number[] = [];
    let node = -1;
    let score = 0;
    for (let p = ix.tree.top(); p >= 0; p = ix.tree.top()) {
      const n = this.nodeOrder[p] as number;
      if ((cluster.memFree[n] as number) >= t.memoryMib) {
        node = n;
        score = ix.tree.topScore();
        break;
      }
      skipped.push(p, ix.tree.get(p));
      ix.tree.set(p, -Infinity);
    }
    for (let i = 0; i < skipped.length; i += 2) ix.tree.set(skipped[i] as number, skipped[i + 1] as number);
    return { node, score };
  }

  /** Brings node n's score in `ix` up to date with its state. */
  private rescore(ix: ShapeIndex, t: PreparedTask, n: number): void {
    const position = this.position[n] as number;
    if (position < 0) return;
    const version = this.cluster.version[n] as number;
    if (ix.scoredAt[n] === version) return;
    ix.scoredAt[n] = version;
    const ok = this.cluster.fitsIgnoringMemory(n, t) && (this.policy.filter?.(n, t) ?? null) === null;
    ix.tree.set(position, ok ? this.policy.score(n, t) : -Infinity);
  }

  /** kube-scheduler style: "0/1213 nodes can take it: 900 not enough GPU, 313 not enough CPU". */
  private explain(t: PreparedTask): string {
    const label: Record<UnfitReason, string> = {
      cpu: 'not enough CPU',
      memory: 'not enough memory',
      'gpu-model': `no GPU of an allowed model (${t.allowedModels.join(', ')})`,
      gpu: t.kind === 'whole' ? `fewer than ${t.gpuCount} free GPUs` : `no GPU with ${t.gpuMilli} milli free`,
    };
    let counts: ReadonlyMap<string, number>;
    if (this.policy.scoreKey) counts = this.explainIndexed(t, label);
    else {
      const all = new Map<string, number>();
      for (const n of this.nodeOrder) {
        const key = this.labelOf(n, t, label);
        all.set(key, (all.get(key) ?? 0) + 1);
      }
      counts = all;
    }
    const parts = [...counts.entries()].filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([k, v]) => `${v} ${k}`);
    return `0/${this.nodeOrder.length} nodes can take it: ${parts.join(', ')}`;
  }

  /**
   * Per node reason counts for one task shape, kept current from the cluster's change log like
   * the score indexes: a node's reason depends only on its own state and the task's shape (and,
   * for an indexed policy, its filter does too).
   */
  private explainIndexed(t: PreparedTask, label: Readonly<Record<UnfitReason, string>>): ReadonlyMap<string, number> {
    const { cluster } = this;
    const key = `${this.policy.scoreKey?.(t)}#${t.cpuMilli}/${t.memoryMib}/${t.gpuCount}/${t.gpuMilli}/${t.kind}/${t.modelMask}/${t.allowedModels.join(',')}`;
    let ex = this.explanations.get(key);
    if (!ex) {
      ex = { labels: [], index: new Map(), counts: new Map(), nodeLabel: new Int32Array(cluster.nodeCount).fill(-1), checkedAt: new Uint32Array(cluster.nodeCount), cursor: -1 };
      this.explanations.set(key, ex);
    }
    const changed = cluster.changesSince(ex.cursor);
    if (changed === null) for (let n = 0; n < cluster.nodeCount; n++) this.recheck(ex, n, t, label);
    else for (const n of changed) this.recheck(ex, n, t, label);
    ex.cursor = cluster.changeCursor;
    return ex.counts;
  }

  /** Why node n cannot take t (`label` words the cluster's reasons), or 'fits'. */
  private labelOf(n: number, t: PreparedTask, label: Readonly<Record<UnfitReason, string>>): string {
    const r = this.cluster.unfitReason(n, t);
    return r === null ? (this.policy.filter?.(n, t) ?? 'fits') : label[r];
  }

  /** Brings node n's label in `e` up to date with its state. */
  private recheck(e: Explanation, n: number, t: PreparedTask, label: Readonly<Record<UnfitReason, string>>): void {
    if ((this.position[n] as number) < 0) return;
    const version = this.cluster.version[n] as number;
    if (e.checkedAt[n] === version) return;
    e.checkedAt[n] = version;
    const text = this.labelOf(n, t, label);
    let i = e.index.get(text);
    if (i === undefined) {
      e.index.set(text, (i = e.labels.length));
      e.labels.push(text);
    }
    const old = e.nodeLabel[n] as number;
    if (old === i) return;
    if (old >= 0) {
      const was = e.labels[old] as string;
      e.counts.set(was, (e.counts.get(was) ?? 0) - 1);
    }
    e.counts.set(text, (e.counts.get(text) ?? 0) + 1);
    e.nodeLabel[n] = i;
  }
}
