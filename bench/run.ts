/**
 * `npm run bench`: placement speed. Not part of the tests.
 *
 * 1. Placements per second per policy on the openb cluster (1,213 nodes, 6,212 GPUs), one core,
 *    seeds 43-44 after a warm-up seed; the baseline, run in the same process, is fgd without
 *    the score index (a scan of every node per task, scores cached per shape: `fgd-scan`).
 * 2. The same at 100k GPUs (the openb nodes replicated 16×), one seed, for the policies with
 *    speed targets.
 * 3. The default `tide bench placement` run (all policies × seeds 42-51) on all cores.
 * 4. Peak memory (max RSS) of this process.
 * 5. The job simulator's speed at the size (100k jobs on 10k GPUs), fifo then tide.
 */
import { printSimSpeed, TARGET } from './simSpeed.ts';
import { resourceUsage } from 'node:process';
import Table from 'cli-table3';
import { nodeId, type NodeSpec } from '../src/core/model.ts';
import { getPlacementPolicy, placementPolicyNames } from '../src/core/placement/index.ts';
import { runPlacementSeed } from '../src/bench/placementProtocol.ts';
import { runPlacementBenchmark } from '../src/bench/placementBenchmark.ts';
import { readOpenbNodes, readOpenbPods } from '../src/traces/openb.ts';
import type { PolicyFactory } from '../src/core/policy.ts';

const TRACES = new URL('../../shared/traces/openb-2023/', import.meta.url).pathname;
const nodes = readOpenbNodes(`${TRACES}openb_node_list_gpu_node.csv`);
const pods = readOpenbPods(`${TRACES}openb_pod_list_default.csv`, new Set(nodes.flatMap((n) => n.gpus)));
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

/**
 * The baseline: the same policy without the engine's score index, as FGD's reference
 * implementations run it — every task scans every node, with each node's score cached per
 * task shape until that node changes.
 */
function scanWithShapeCache(name: string): PolicyFactory {
  const factory = getPlacementPolicy(name);
  if (!factory) throw new Error(name);
  return (ctx) => {
    const { scoreKey, ...policy } = factory(ctx);
    const caches = new Map<string, { score: Float64Array; version: Uint32Array }>();
    const { cluster } = ctx;
    return {
      ...policy,
      score(n, t) {
        const key = `${scoreKey?.(t)}#${t.cpuMilli}/${t.gpuCount}/${t.gpuMilli}/${t.modelMask}`;
        let cache = caches.get(key);
        if (!cache) caches.set(key, (cache = { score: new Float64Array(cluster.nodeCount), version: new Uint32Array(cluster.nodeCount) }));
        if (cache.version[n] !== cluster.version[n]) {
          cache.score[n] = policy.score(n, t);
          cache.version[n] = cluster.version[n] as number;
        }
        return cache.score[n] as number;
      },
    };
  };
}
const variants: Record<string, PolicyFactory | undefined> = { 'fgd-scan': scanWithShapeCache('fgd') };
const factoryOf = (name: string): PolicyFactory | undefined => variants[name] ?? getPlacementPolicy(name);

function speed(cluster: readonly NodeSpec[], policy: string, seeds: readonly number[]): { pps: number; unallocated: number } {
  let podsDone = 0;
  let seconds = 0;
  let unallocated = 0;
  for (const seed of seeds) {
    const r = runPlacementSeed(cluster, pods, policy, seed, factoryOf(policy));
    podsDone += r.pods;
    seconds += r.placeSeconds;
    unallocated += (r.curve[3] as number) / seeds.length;
  }
  return { pps: podsDone / seconds, unallocated };
}

const policies = [...placementPolicyNames(), 'fgd-scan'];
const openb = new Table({ head: ['policy', 'placements/s (openb, 1 core)', 'vs fgd-scan', 'unalloc % @100'], style: { head: [], border: [], compact: true } });
const rows = policies.map((p) => {
  runPlacementSeed(nodes, pods, p, 42, factoryOf(p)); // warm-up
  return [p, speed(nodes, p, [43, 44])] as const;
});
const baseline = rows.find(([p]) => p === 'fgd-scan')?.[1].pps ?? NaN;
for (const [p, r] of rows) openb.push([p, fmt(r.pps), `${(r.pps / baseline).toFixed(2)}×`, r.unallocated.toFixed(2)]);
console.log(`Placement speed on openb: ${nodes.length} nodes, ${nodes.reduce((a, n) => a + n.gpus.length, 0)} GPUs, ${pods.length} trace pods inflated to 130 %`);
console.log(openb.toString());

const REPLICAS = 16;
const big: NodeSpec[] = [];
for (let r = 0; r < REPLICAS; r++) for (const n of nodes) big.push({ ...n, id: nodeId(`${n.id}-r${r}`) });
const bigGpus = big.reduce((a, n) => a + n.gpus.length, 0);
const scale = new Table({ head: ['policy', `placements/s (${fmt(bigGpus)} GPUs, 1 core)`, 'pods placed or dropped', 'unalloc % @100'], style: { head: [], border: [], compact: true } });
for (const p of ['tide', 'fgd', 'bestfit'].filter((name) => getPlacementPolicy(name))) {
  const r = runPlacementSeed(big, pods, p, 42);
  scale.push([p, fmt(r.pods / r.placeSeconds), fmt(r.pods), (r.curve[3] as number).toFixed(2)]);
}
console.log(`\nAt scale: the openb nodes × ${REPLICAS} = ${fmt(big.length)} nodes, ${fmt(bigGpus)} GPUs; seed 42`);
console.log(scale.toString());

const started = performance.now();
await runPlacementBenchmark({ podsFile: 'default', nodes, pods, policies: placementPolicyNames(), seeds: [42, 43, 44, 45, 46, 47, 48, 49, 50, 51] });
console.log(`\nDefault run (${placementPolicyNames().length} policies × 10 seeds, worker threads on all cores): ${((performance.now() - started) / 1000).toFixed(1)} s`);
console.log(`Peak memory of the benchmark process (max RSS): ${fmt(resourceUsage().maxRSS / 1024)} MiB`);

// The job simulator at the size: 100k jobs on 10k GPUs (also `npm run bench:jobs`).
console.log('');
await printSimSpeed(TARGET.jobs, TARGET.gpus, ['fifo', 'tide']);
