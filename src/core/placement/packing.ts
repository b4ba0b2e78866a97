/**
 * GPU Packing: prefer, in order, a GPU already shared by others (the tighter the better), then
 * free GPUs on a node already in use (fewer needed is better), then an empty node (smaller
 * first). CPU-only tasks score 0. Score bands as in the FGD authors' simulator.
 */
import type { PolicyFactory } from '../policy.ts';
import { MAX_NODE_SCORE } from './spec.ts';

export const packing: PolicyFactory = ({ cluster }) => ({
  name: 'packing',
  scoreKey: () => '',
  score(n, t) {
    if (t.gpuCount === 0) return 0;
    const gpuCount = cluster.gpuCount(n);
    const fullFree = cluster.fullFreeGpus[n] as number;
    if (fullFree === gpuCount) return Math.max(Math.trunc(MAX_NODE_SCORE / 3) - fullFree, fullFree);
    const start = cluster.gpuStart[n] as number;
    // The devices the task would take: least free milli first.
    const candidates: number[] = [];
    for (let g = start; g < start + gpuCount; g++) if (cluster.gpuUsable(g, t)) candidates.push(g);
    candidates.sort((a, b) => (cluster.gpuFree[a] as number) - (cluster.gpuFree[b] as number) || a - b);
    const used = candidates.slice(0, t.gpuCount);
    const freshGpus = used.filter((g) => cluster.gpuFree[g] === 1000).length;
    if (freshGpus > 0) return Math.max(MAX_NODE_SCORE / 2 - freshGpus, Math.trunc(MAX_NODE_SCORE / 3));
    let freePercent = 0;
    for (const g of used) freePercent += Math.trunc(((cluster.gpuFree[g] as number) * 100) / 1000);
    return Math.max(MAX_NODE_SCORE - Math.trunc(freePercent / 10), MAX_NODE_SCORE / 2);
  },
});
