/**
 * `tide bench placement`: every policy × every seed of the FGD protocol, spread over worker
 * threads, summarised as a report (the JSON shape other tools read), a table and an SVG chart.
 */
import type { NodeSpec, TaskRequest } from '../core/model.ts';
import { runPool } from '../util/workers.ts';
import { lineChartSvg } from '../report/svgChart.ts';
import { CURVE_POINTS, type SeedResult } from './placementProtocol.ts';

export interface PlacementBenchInput {
  readonly podsFile: string;
  readonly nodes: readonly NodeSpec[];
  readonly pods: readonly TaskRequest[];
  readonly policies: readonly string[];
  readonly seeds: readonly number[];
  readonly threads?: number;
  readonly onProgress?: (done: number, total: number, last: SeedResult) => void;
}

export interface MeanSd {
  readonly mean: number;
  readonly sd: number;
}

export interface PolicySummary {
  readonly unallocatedAt100: MeanSd;
  /** Mean over seeds of unallocated GPU % at each arrival level. */
  readonly curve: readonly { readonly arrivedPct: number; readonly unallocatedPct: number }[];
  /** Pods placed (or dropped) per second of placement time, per core. */
  readonly placementsPerSecond: number;
  readonly droppedPods: MeanSd;
  readonly perSeedAt100: readonly number[];
}

export interface PlacementReport {
  readonly pods: string;
  readonly nodes: number;
  readonly gpus: number;
  readonly seeds: readonly number[];
  /** Mean over seeds of the floor on unallocated % at 100 % arrival. */
  readonly lowerBoundAt100: number;
  readonly policies: Readonly<Record<string, PolicySummary>>;
}

export function meanSd(values: readonly number[]): MeanSd {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / Math.max(1, n);
  const variance = n > 1 ? values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1) : 0;
  return { mean, sd: Math.sqrt(variance) };
}

const AT_100 = CURVE_POINTS.indexOf(100);

export function summarise(input: Pick<PlacementBenchInput, 'podsFile' | 'nodes' | 'policies' | 'seeds'>, results: readonly SeedResult[]): PlacementReport {
  const policies: Record<string, PolicySummary> = {};
  for (const policy of input.policies) {
    const runs = results.filter((r) => r.policy === policy);
    const at100 = runs.map((r) => r.curve[AT_100] as number);
    const seconds = runs.reduce((a, r) => a + r.placeSeconds, 0);
    policies[policy] = {
      unallocatedAt100: meanSd(at100),
      curve: CURVE_POINTS.map((arrivedPct, i) => ({ arrivedPct, unallocatedPct: meanSd(runs.map((r) => r.curve[i] as number)).mean })),
      placementsPerSecond: runs.reduce((a, r) => a + r.pods, 0) / Math.max(seconds, 1e-9),
      droppedPods: meanSd(runs.map((r) => r.dropped)),
      perSeedAt100: at100,
    };
  }
  const firstPolicy = results.filter((r) => r.policy === input.policies[0]);
  return {
    pods: input.podsFile,
    nodes: input.nodes.length,
    gpus: input.nodes.reduce((a, n) => a + n.gpus.length, 0),
    seeds: input.seeds,
    lowerBoundAt100: meanSd(firstPolicy.map((r) => r.lowerBound)).mean,
    policies,
  };
}

export async function runPlacementBenchmark(input: PlacementBenchInput): Promise<PlacementReport> {
  const jobs = input.policies.flatMap((policy) => input.seeds.map((seed) => ({ policy, seed })));
  const results = await runPool<{ policy: string; seed: number }, SeedResult>({
    entry: new URL('./placementWorker.ts', import.meta.url),
    init: { nodes: input.nodes, pods: input.pods },
    jobs,
    ...(input.threads === undefined ? {} : { threads: input.threads }),
    onResult: (r, done, total) => input.onProgress?.(done, total, r),
  });
  return summarise(input, results);
}

export function placementChartSvg(report: PlacementReport): string {
  const xs = CURVE_POINTS.filter((p) => p >= 90);
  return lineChartSvg({
    title: `Unallocated GPU vs arrived workload — ${report.pods.split('/').pop()} (${report.seeds.length} seeds)`,
    xLabel: 'arrived GPU request (% of capacity)',
    yLabel: 'unallocated GPU (% of capacity)',
    yFromZero: true,
    series: [
      ...Object.entries(report.policies).map(([name, s]) => ({
        name: `${name} (${s.unallocatedAt100.mean.toFixed(2)}%)`,
        points: s.curve.filter((c) => c.arrivedPct >= 90).map((c) => [c.arrivedPct, c.unallocatedPct] as const),
      })),
      { name: `floor at 100% (${report.lowerBoundAt100.toFixed(2)}%)`, dashed: true, points: [[xs[0] as number, report.lowerBoundAt100], [xs[xs.length - 1] as number, report.lowerBoundAt100]] },
    ],
  });
}
