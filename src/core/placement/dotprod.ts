/**
 * DotProd (Tetris-style alignment, as in the FGD paper's baselines): the smallest dot product
 * of the node's free (CPU, GPU) vector and the task's request vector wins.
 */
import type { PolicyFactory } from '../policy.ts';
import { MAX_SPEC_CPU, MAX_SPEC_GPU } from './spec.ts';

export const dotprod: PolicyFactory = ({ cluster }) => ({
  name: 'dotprod',
  scoreKey: () => '',
  score(n, t) {
    const dot =
      ((cluster.cpuFree[n] as number) / MAX_SPEC_CPU) * (t.cpuMilli / MAX_SPEC_CPU) +
      ((cluster.idleGpuMilli[n] as number) / MAX_SPEC_GPU) * ((t.gpuCount * t.gpuMilli) / MAX_SPEC_GPU);
    return Math.floor(100 * (1 - dot / 2));
  },
});
