/**
 * `npm run bench:energy-accounting`: what simulated energy accounting costs, at the issue's size
 * (100,000 synthetic jobs on 10,000 GPUs, as `npm run bench:jobs`). Each policy runs the same
 * jobs twice in this process, without and with the accountant listening (every event priced,
 * closure checked at the end), alternating the order over `--rounds`; the table gives the
 * median seconds of each and their ratio. Target: accounting adds under 10 %. Not a test.
 *
 *   npm run bench:energy-accounting -- [--jobs 100000] [--gpus 10000] [--policies fifo,tide] [--rounds 1]
 */
import { performance } from 'node:perf_hooks';
import Table from 'cli-table3';
import { DEFAULT_POWER_MODEL } from '../src/core/energy/powerModel.ts';
import { DEFAULT_PRICES, simulationPrices } from '../src/core/energy/pricing.ts';
import { getJobScheduler, jobSchedulerNames } from '../src/core/scheduling/policies/index.ts';
import { Rng } from '../src/core/rng.ts';
import { highsSolver } from '../src/lp/highsSolver.ts';
import { Simulation } from '../src/sim/simulator.ts';
import { syntheticCluster, syntheticJobs } from '../src/sim/syntheticWorkload.ts';
import { EnergyAccountant } from '../src/sim/energy/accountant.ts';
import { progressBar } from '../src/cli/progress.ts';
import { benchArgs, intFlag, usageError } from './args.ts';
import { TARGET } from './simSpeed.ts';

const SCRIPT = 'bench:energy-accounting';
const { values } = benchArgs(SCRIPT, { jobs: { type: 'string' }, gpus: { type: 'string' }, policies: { type: 'string', default: 'fifo,tide' }, rounds: { type: 'string' } });
const jobs = intFlag(SCRIPT, 'jobs', values.jobs, TARGET.jobs);
const gpus = intFlag(SCRIPT, 'gpus', values.gpus, TARGET.gpus);
const rounds = intFlag(SCRIPT, 'rounds', values.rounds, 1);
if (jobs === 0 || gpus === 0 || rounds === 0) usageError(SCRIPT, '--jobs, --gpus and --rounds must be above 0');
const policies = String(values.policies).split(',').map((p) => p.trim()).filter((p) => p !== '');
const unknown = policies.find((p) => !getJobScheduler(p));
if (policies.length === 0 || unknown !== undefined) usageError(SCRIPT, `--policies: ${unknown === undefined ? 'empty list' : `unknown policy '${unknown}'`} (known: ${jobSchedulerNames().join(', ')})`);

async function once(policy: string, account: boolean): Promise<{ seconds: number; closure: number; kwh: number }> {
  const nodes = syntheticCluster(gpus);
  const total = nodes.reduce((a, n) => a + n.gpus.length, 0);
  const factory = getJobScheduler(policy);
  if (!factory) throw new Error(policy);
  const scheduler = factory({ rng: Rng.fromSeed(1), lp: await highsSolver() });
  const accountant = account ? new EnergyAccountant({ nodes, power: DEFAULT_POWER_MODEL, prices: simulationPrices(DEFAULT_PRICES) }) : undefined;
  const bar = progressBar(`${policy}${account ? ' + accounting' : ''}`);
  let next = 0;
  const started = performance.now();
  const sim = new Simulation({
    nodes,
    scheduler,
    jobs: syntheticJobs({ jobs, clusterGpus: total, seed: 1 }),
    timeLimits: 'estimate',
    ...(accountant ? { onEvent: accountant.onEvent } : {}),
    stop: (s) => {
      if (s.finishedJobs.length >= next) {
        bar.update(s.finishedJobs.length, jobs, 'jobs finished');
        next += 1000;
      }
      return false;
    },
  }).run();
  const report = accountant?.report(sim.now);
  const seconds = (performance.now() - started) / 1000;
  bar.stop();
  return { seconds, closure: report?.closureError ?? NaN, kwh: report?.energyKwh ?? NaN };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number;
const table = new Table({ head: ['policy', 'without s', 'with s', 'ratio', 'closure error', 'energy MWh', '< 1.10'], style: { head: [], border: [], compact: true } });
for (const policy of policies) {
  const plain: number[] = [];
  const counted: number[] = [];
  let last = { seconds: 0, closure: NaN, kwh: NaN };
  for (let r = 0; r < rounds; r++) {
    // Alternate the order so that warm-up and the machine's load fall on both sides alike.
    if (r % 2 === 0) {
      plain.push((await once(policy, false)).seconds);
      last = await once(policy, true);
      counted.push(last.seconds);
    } else {
      last = await once(policy, true);
      counted.push(last.seconds);
      plain.push((await once(policy, false)).seconds);
    }
  }
  const ratio = median(counted) / median(plain);
  table.push([policy, median(plain).toFixed(1), median(counted).toFixed(1), ratio.toFixed(3), last.closure.toExponential(1), (last.kwh / 1000).toFixed(0), ratio < 1.1 ? 'met' : 'NOT met']);
}
console.log(`Energy accounting's cost: ${jobs.toLocaleString('en-US')} synthetic jobs on ${gpus.toLocaleString('en-US')} GPUs, ${rounds} round(s), median seconds, one core`);
console.log(table.toString());
