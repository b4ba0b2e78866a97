/**
 * `npm run bench:jobs`: simulator speed. 100,000 synthetic jobs on 10,000 GPUs (1,250 8-GPU
 * servers of three models) at 80 % load, with the `tide` and `fifo` schedulers and every plan
 * checked; prints simulated events and scheduler cycles per second. Target: under 60 s.
 * Not part of the tests. Arguments: [jobs] [gpus] [policies].
 */
import { performance } from 'node:perf_hooks';
import { getJobScheduler } from '../src/core/jobs/policies/index.ts';
import { Rng } from '../src/core/rng.ts';
import { highsSolver } from '../src/lp/highsSolver.ts';
import { Simulation } from '../src/sim/simulator.ts';
import { syntheticCluster, syntheticJobs } from '../src/sim/syntheticWorkload.ts';

const jobs = Number(process.argv[2] ?? 100_000);
const gpus = Number(process.argv[3] ?? 10_000);
const policies = (process.argv[4] ?? 'tide,fifo').split(',');
const nodes = syntheticCluster(gpus);
const total = nodes.reduce((a, n) => a + n.gpus.length, 0);
for (const policy of policies) {
  const factory = getJobScheduler(policy);
  if (!factory) throw new Error(`unknown policy ${policy}`);
  const started = performance.now();
  const sim = new Simulation({ nodes, scheduler: factory({ rng: Rng.fromSeed(1), lp: await highsSolver() }), jobs: syntheticJobs({ jobs, clusterGpus: total, seed: 1 }) }).run();
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `${policy}: ${sim.finishedJobs.length.toLocaleString('en-US')} jobs on ${total.toLocaleString('en-US')} GPUs in ${seconds.toFixed(1)} s ` +
      `(${Math.round(sim.events / seconds).toLocaleString('en-US')} events/s, ${Math.round(sim.cycles / seconds).toLocaleString('en-US')} cycles/s; ` +
      `${(sim.now / 86_400).toFixed(0)} simulated days) — target < 60 s: ${seconds < 60 ? 'met' : 'NOT met'}`,
  );
}
