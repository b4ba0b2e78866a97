/**
 * `npm run bench:energy-accounting`: what simulated energy accounting costs, at the issue's size
 * (100,000 synthetic jobs on 10,000 GPUs, as `npm run bench:jobs`). Per policy:
 *
 * 1. the simulator runs alone, recording the events the accountant reads (cheap: references);
 * 2. the recorded events are replayed into an accountant (every event priced, closure checked);
 * 3. with `--paired`, the simulator runs again with the accountant listening, as the benchmarks
 *    run it.
 *
 * Times are CPU seconds of this process (process.cpuUsage), so other processes on a shared
 * machine disturb them less than wall time; the ratio to beat is accounting ÷ simulation < 10 %.
 * Not a test.
 *
 *   npm run bench:energy-accounting -- [--jobs 100000] [--gpus 10000] [--policies fifo,tide] [--paired]
 */
import Table from 'cli-table3';
import { DEFAULT_POWER_MODEL } from '../src/core/energy/powerModel.ts';
import { DEFAULT_PRICES, simulationPrices } from '../src/core/energy/pricing.ts';
import { getJobScheduler, jobSchedulerNames } from '../src/core/scheduling/policies/index.ts';
import { Rng } from '../src/core/rng.ts';
import { highsSolver } from '../src/lp/highsSolver.ts';
import { Simulation, type SimEvent } from '../src/sim/simulator.ts';
import type { NodeSpec } from '../src/core/model.ts';
import type { EnergyPlan } from '../src/core/scheduling/stages/stage.ts';
import { syntheticCluster, syntheticJobs } from '../src/sim/syntheticWorkload.ts';
import { EnergyAccountant } from '../src/sim/energy/accountant.ts';
import { progressBar } from '../src/cli/progress.ts';
import { benchArgs, intFlag, usageError } from './args.ts';
import { TARGET } from './simSpeed.ts';

const SCRIPT = 'bench:energy-accounting';
const { values } = benchArgs(SCRIPT, { jobs: { type: 'string' }, gpus: { type: 'string' }, policies: { type: 'string', default: 'fifo,tide' }, paired: { type: 'boolean' } });
const jobs = intFlag(SCRIPT, 'jobs', values.jobs, TARGET.jobs);
const gpus = intFlag(SCRIPT, 'gpus', values.gpus, TARGET.gpus);
if (jobs === 0 || gpus === 0) usageError(SCRIPT, '--jobs and --gpus must be above 0');
const policies = String(values.policies).split(',').map((p) => p.trim()).filter((p) => p !== '');
const unknown = policies.find((p) => !getJobScheduler(p));
if (policies.length === 0 || unknown !== undefined) usageError(SCRIPT, `--policies: ${unknown === undefined ? 'empty list' : `unknown policy '${unknown}'`} (known: ${jobSchedulerNames().join(', ')})`);

const cpu = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** One simulation; with `listen`, every event also goes there. CPU seconds and the events the accountant reads. */
async function simulateOnce(policy: string, record: boolean, listen?: (e: SimEvent) => void): Promise<{ seconds: number; events: SimEvent[]; now: number; nodes: NodeSpec[] }> {
  const nodes = syntheticCluster(gpus);
  const total = nodes.reduce((a, n) => a + n.gpus.length, 0);
  const factory = getJobScheduler(policy);
  if (!factory) throw new Error(policy);
  const scheduler = factory({ rng: Rng.fromSeed(1), lp: await highsSolver() });
  const events: SimEvent[] = [];
  const bar = progressBar(`${policy}${listen ? ' + accounting' : ''}`);
  let next = 0;
  const started = cpu();
  const sim = new Simulation({
    nodes,
    scheduler,
    jobs: syntheticJobs({ jobs, clusterGpus: total, seed: 1 }),
    timeLimits: 'estimate',
    onEvent: (e) => {
      // A cycle's plan is kept without its pending reasons (the accountant reads binds and power changes).
      if (record) events.push(e.type === 'cycle' ? { ...e, plan: { binds: e.plan.binds, preemptions: [], pending: [], ...((e.plan as EnergyPlan).nodePower ? { nodePower: (e.plan as EnergyPlan).nodePower } : {}) } } : e);
      listen?.(e);
    },
    stop: (s) => {
      if (s.finishedJobs.length >= next) {
        bar.update(s.finishedJobs.length, jobs, 'jobs finished');
        next += 1000;
      }
      return false;
    },
  }).run();
  const seconds = cpu() - started;
  bar.stop();
  return { seconds, events, now: sim.now, nodes };
}

const accountant = (nodes: NodeSpec[]): EnergyAccountant => new EnergyAccountant({ nodes, power: DEFAULT_POWER_MODEL, prices: simulationPrices(DEFAULT_PRICES) });

const table = new Table({ head: ['policy', 'simulation CPU s', 'events', 'accounting CPU s (replay)', 'ratio', ...(values.paired ? ['simulation + accounting CPU s', 'ratio'] : []), 'closure error', 'energy MWh', '< 10 %'], style: { head: [], border: [], compact: true } });
for (const policy of policies) {
  const plain = await simulateOnce(policy, true);
  const acc = accountant(plain.nodes);
  const started = cpu();
  for (const e of plain.events) acc.onEvent(e);
  const report = acc.report(plain.now);
  const replay = cpu() - started;
  const paired = values.paired ? await simulateOnce(policy, false, accountant(plain.nodes).onEvent) : undefined;
  const ratio = replay / plain.seconds;
  table.push([policy, plain.seconds.toFixed(1), plain.events.length.toLocaleString('en-US'), replay.toFixed(2), `${(100 * ratio).toFixed(1)} %`, ...(paired ? [paired.seconds.toFixed(1), `${(100 * (paired.seconds / plain.seconds - 1)).toFixed(1)} %`] : []), report.closureError.toExponential(1), (report.energyKwh / 1000).toFixed(0), ratio < 0.1 ? 'met' : 'NOT met']);
}
console.log(`Energy accounting's cost: ${jobs.toLocaleString('en-US')} synthetic jobs on ${gpus.toLocaleString('en-US')} GPUs, CPU seconds of one process`);
console.log(table.toString());
