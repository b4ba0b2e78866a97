/**
 * Simulator speed: synthetic jobs on a synthetic cluster (1/2/4/8-GPU gangs and a few 16–64,
 * three GPU models, 80 % load, checkpoints, every plan checked), per job scheduler. Shared by
 * `npm run bench` and `npm run bench:jobs` (both at the 100k jobs / 10k GPUs).
 */
import { performance } from 'node:perf_hooks';
import Table from 'cli-table3';
import { getJobScheduler } from '../src/core/scheduling/policies/index.ts';
import { Rng } from '../src/core/rng.ts';
import { highsSolver } from '../src/lp/highsSolver.ts';
import { Simulation } from '../src/sim/simulator.ts';
import { syntheticCluster, syntheticJobs } from '../src/sim/syntheticWorkload.ts';
import { progressBar } from '../src/cli/progress.ts';

export interface SimSpeed {
  readonly policy: string;
  readonly jobs: number;
  readonly gpus: number;
  readonly seconds: number;
  readonly events: number;
  readonly cycles: number;
  readonly simulatedDays: number;
}

/** `load`: the share of the cluster's capacity the arrivals ask for (syntheticJobs' default 0.8). */
export async function simSpeed(policy: string, jobs: number, gpus: number, load?: number): Promise<SimSpeed> {
  const factory = getJobScheduler(policy);
  if (!factory) throw new Error(`unknown policy ${policy}`);
  const nodes = syntheticCluster(gpus);
  const total = nodes.reduce((a, n) => a + n.gpus.length, 0);
  const started = performance.now();
  const bar = progressBar(policy);
  let next = 0;
  const progress = (s: Simulation): boolean => {
    if (s.finishedJobs.length >= next) {
      bar.update(s.finishedJobs.length, jobs, 'jobs finished');
      next += 1000;
    }
    return false;
  };
  const sim = new Simulation({ nodes, scheduler: factory({ rng: Rng.fromSeed(1), lp: await highsSolver() }), jobs: syntheticJobs({ jobs, clusterGpus: total, seed: 1, ...(load === undefined ? {} : { load }) }), stop: progress, timeLimits: 'estimate' }).run();
  bar.stop();
  return { policy, jobs: sim.finishedJobs.length, gpus: total, seconds: (performance.now() - started) / 1000, events: sim.events, cycles: sim.cycles, simulatedDays: sim.now / 86_400 };
}

/** The target: this many jobs on this many GPUs in under TARGET_SECONDS. */
export const TARGET = { jobs: 100_000, gpus: 10_000, seconds: 60 };

/**
 * Runs each policy on the same synthetic jobs, one after the other in this process, and prints
 * a table (the first policy is the baseline of the last column) with the target's verdict at
 * the size.
 */
export async function printSimSpeed(jobs: number, gpus: number, policies: readonly string[], load?: number): Promise<SimSpeed[]> {
  const n = (v: number): string => Math.round(v).toLocaleString('en-US');
  const atTarget = jobs >= TARGET.jobs && gpus >= TARGET.gpus;
  const table = new Table({ head: ['policy', 'seconds', 'simulated events/s', 'cycles/s', 'simulated days', `time ÷ ${policies[0]}`, ...(atTarget ? [`< ${TARGET.seconds} s`] : [])], style: { head: [], border: [], compact: true } });
  const results: SimSpeed[] = [];
  for (const policy of policies) {
    const r = await simSpeed(policy, jobs, gpus, load);
    results.push(r);
    const base = results[0] as SimSpeed;
    table.push([policy, r.seconds.toFixed(1), n(r.events / r.seconds), n(r.cycles / r.seconds), r.simulatedDays.toFixed(0), (r.seconds / base.seconds).toFixed(2), ...(atTarget ? [r.seconds < TARGET.seconds ? 'met' : 'NOT met'] : [])]);
  }
  const first = results[0] as SimSpeed;
  console.log(`Simulator speed: ${n(first.jobs)} synthetic jobs on ${n(first.gpus)} GPUs (${Math.round(100 * (load ?? 0.8))} % load, every plan checked), one core`);
  console.log(table.toString());
  return results;
}
