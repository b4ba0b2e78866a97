/**
 * The what-if worker thread: runs `tide sim`'s scenario (cli/sim.ts runScenario, the same code as
 * the command) on a cluster and a workload given as file text, and posts back the report and the
 * chart the command writes with --svg. Started by whatIf.ts, which bounds its size and time.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { runScenario } from '../cli/sim.ts';
import { lineChartSvg } from '../report/svgChart.ts';

export interface WhatIfInput {
  readonly cluster: string;
  readonly workload: string;
  readonly workloadExt: 'yaml' | 'csv';
  readonly policies: readonly string[];
  readonly seed: number;
  readonly maxHours: number;
}

const input = (workerData as { init: WhatIfInput }).init;
const dir = mkdtempSync(join(tmpdir(), 'tide-whatif-'));
try {
  const clusterFile = join(dir, 'cluster.yaml');
  const workloadFile = join(dir, `workload.${input.workloadExt}`);
  writeFileSync(clusterFile, input.cluster);
  writeFileSync(workloadFile, input.workload);
  const report = await runScenario(clusterFile, workloadFile, input.policies, input.seed, undefined, input.maxHours);
  const svg = lineChartSvg({
    title: 'GPUs allocated over time',
    xLabel: 'simulated time (hours)',
    yLabel: 'GPUs allocated',
    yFromZero: true,
    series: Object.entries(report.policies).map(([name, s]) => ({ name, points: s.allocation })),
  });
  parentPort?.postMessage({ ok: true, report: { ...report, cluster: 'cluster', workload: 'workload' }, svg });
} catch (e) {
  parentPort?.postMessage({ ok: false, message: (e as Error).message.replaceAll(dir, '') });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
