/** Random: a uniformly random feasible node, and random fitting GPUs on it. */
import type { PolicyFactory } from '../policy.ts';

export const random: PolicyFactory = ({ cluster, rng }) => ({
  name: 'random',
  score: () => 0,
  select: (feasible) => rng.int(0, feasible.length - 1),
  chooseDevices(n, t) {
    const start = cluster.gpuStart[n] as number;
    const usable: number[] = [];
    for (let g = start; g < (cluster.gpuStart[n + 1] as number); g++) if (cluster.gpuUsable(g, t)) usable.push(g - start);
    return rng.shuffle(usable).slice(0, t.gpuCount);
  },
});
