/**
 * GPU Clustering: keep tasks of one kind (a GPU fraction, 1, 2, 4 or 8 whole GPUs) together.
 * Base score ⌊25 · used GPU milli / 8000⌋, plus 75 if the node holds only this kind, 50 if it
 * holds several kinds including this one, 25 if it holds no GPU task, 0 otherwise.
 * CPU-only tasks score 0.
 */
import type { PolicyFactory } from '../policy.ts';
import { MAX_SPEC_GPU } from './spec.ts';

type GpuKind = string;
const kindOf = (t: { gpuCount: number; gpuMilli: number }): GpuKind => (t.gpuMilli < 1000 ? 'share' : `${t.gpuCount}`);

export const clustering: PolicyFactory = ({ cluster }) => {
  /** Per node: how many placed tasks of each kind. */
  const kinds: Map<GpuKind, number>[] = Array.from({ length: cluster.nodeCount }, () => new Map());
  return {
    name: 'clustering',
    scoreKey: () => '',
    score(n, t) {
      if (t.gpuCount === 0) return 0;
      const held = kinds[n] as Map<GpuKind, number>;
      const base = Math.trunc((25 * (MAX_SPEC_GPU - (cluster.idleGpuMilli[n] as number))) / MAX_SPEC_GPU);
      if (held.has(kindOf(t))) return base + (held.size === 1 ? 75 : 50);
      return base + (held.size === 0 ? 25 : 0);
    },
    placed(t, p) {
      if (t.gpuCount === 0) return;
      const held = kinds[p.node] as Map<GpuKind, number>;
      held.set(kindOf(t), (held.get(kindOf(t)) ?? 0) + 1);
    },
  };
};
