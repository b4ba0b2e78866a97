/**
 * BestFit: the node left with the least free CPU and GPU (equally weighted, normalised by the
 * largest node) after placing the task wins. The published min–max normalisation across nodes
 * is monotone and never changes the winner, so it is left out.
 */
import type { PolicyFactory } from '../policy.ts';
import { MAX_NODE_SCORE, MAX_SPEC_CPU, MAX_SPEC_GPU } from './spec.ts';

export const bestfit: PolicyFactory = ({ cluster }) => ({
  name: 'bestfit',
  scoreKey: () => '',
  score(n, t) {
    const leftover =
      (0.5 * ((cluster.cpuFree[n] as number) - t.cpuMilli)) / MAX_SPEC_CPU +
      (0.5 * ((cluster.idleGpuMilli[n] as number) - t.gpuCount * t.gpuMilli)) / MAX_SPEC_GPU;
    return Math.trunc((1 - leftover) * MAX_NODE_SCORE);
  },
});
