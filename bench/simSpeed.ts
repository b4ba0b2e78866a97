/**
 * Simulator speed: synthetic jobs on a synthetic cluster (1/2/4/8-GPU gangs and a few 16–64,
 * three GPU models, 80 % load, checkpoints, every plan checked), per job scheduler. Shared by
 * `npm run bench` (a small size) and `npm run bench:jobs` (the 100k jobs / 10k GPUs).
 */
import { performance } from 'node:perf_hooks';
import { getJobScheduler } from '../src/core/jobs/policies/index.ts';
import { Rng } from '../src/core/rng.ts';
import { highsSolver } from '../src/lp/highsSolver.ts';
import { Simulation } from '../src/sim/simulator.ts';
import { syntheticCluster, syntheticJobs } from '../src/sim/syntheticWorkload.ts';

export interface SimSpeed {
  readonly policy: string;
  readonly jobs: number;
  readonly gpus: number;
  readonly seconds: number;
  readonly events: number;
  readonly cycles: number;
  readonly simulatedDays: number;
}

export async function simSpeed(policy: string, jobs: number, gpus: number): Promise<SimSpeed> {
  const factory = getJobScheduler(policy);
  if (!factory) throw new Error(`unknown policy ${policy}`);
  const nodes = syntheticCluster(gpus);
  const total = nodes.reduce((a, n) => a + n.gpus.length, 0);
  const started = performance.now();
  const sim = new Simulation({ nodes, scheduler: factory({ rng: Rng.fromSeed(1), lp: await highsSolver() }), jobs: syntheticJobs({ jobs, clusterGpus: total, seed: 1 }) }).run();
  return { policy, jobs: sim.finishedJobs.length, gpus: total, seconds: (performance.now() - started) / 1000, events: sim.events, cycles: sim.cycles, simulatedDays: sim.now / 86_400 };
}

export function simSpeedLine(r: SimSpeed): string {
  const n = (v: number): string => Math.round(v).toLocaleString('en-US');
  return `${r.policy}: ${n(r.jobs)} jobs on ${n(r.gpus)} GPUs in ${r.seconds.toFixed(1)} s (${n(r.events / r.seconds)} simulated events/s, ${n(r.cycles / r.seconds)} cycles/s; ${r.simulatedDays.toFixed(0)} simulated days)`;
}
