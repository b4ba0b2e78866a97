// Every registered job scheduler runs with every energy stage around it, through the simulator
// (which checks each plan: no over-allocation, whole gangs, a reason for every pending job) and
// the energy accountant (which fails a bind to a sleeping node and checks that accounting closes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_POWER_MODEL } from '../../energy/powerModel.ts';
import { DEFAULT_PRICES, simulationPrices } from '../../energy/pricing.ts';
import { Rng } from '../../rng.ts';
import { gpuNodes } from '../build.ts';
import { getJobScheduler, jobSchedulerNames } from '../policies/index.ts';
import type { JobScheduler, SchedulePlan, SchedulerSnapshot } from '../scheduler.ts';
import { highsSolver } from '../../../lp/highsSolver.ts';
import { gavelJobs, readThroughputs } from '../../../sim/gavelWorkload.ts';
import { simulate, type JobSource } from '../../../sim/simulator.ts';
import { capSpeed, EnergyAccountant } from '../../../sim/energy/accountant.ts';
import { ENERGY_PROFILES, withEnergyStages } from './energyStages.ts';
import { withStages } from './stage.ts';

const table = readThroughputs('../shared/traces/gavel/simulation_throughputs.json');
const nodes = [...gpuNodes('V100', 2, 4), ...gpuNodes('P100', 4, 1), ...gpuNodes('K80', 2, 4)];
const prices = simulationPrices(DEFAULT_PRICES);

/** Gavel's gangs, a third of them deferrable with a deadline a day after their declared end. */
function workload(seed: number): JobSource {
  const inner = gavelJobs(table, { jobsPerHour: 4, multiGpu: true, seed, count: 30 });
  let i = 0;
  return {
    next() {
      const j = inner.next();
      if (!j) return j;
      const short = { ...j, totalSteps: j.totalSteps / 10, timeLimitSeconds: (j.timeLimitSeconds ?? 0) / 10 };
      return i++ % 3 === 0 ? { ...short, deferrable: true, deadline: j.submitTime + short.timeLimitSeconds + 86_400 } : short;
    },
  };
}

async function run(name: string, profile: string, seed: number) {
  const factory = getJobScheduler(name);
  assert.ok(factory);
  const scheduler = withEnergyStages(factory({ rng: Rng.fromSeed(seed), lp: await highsSolver() }), { power: DEFAULT_POWER_MODEL, prices, ...ENERGY_PROFILES[profile] });
  const acc = new EnergyAccountant({ nodes, power: DEFAULT_POWER_MODEL, prices });
  const sim = simulate({ nodes, scheduler, jobs: workload(seed), onEvent: acc.onEvent, speedOf: capSpeed(DEFAULT_POWER_MODEL) });
  return { sim, report: acc.report(sim.now) };
}

for (const name of jobSchedulerNames()) {
  test(`${name} with all energy stages: every job finishes by its deadline, plans stay valid, accounting closes, runs replay`, async () => {
    const { sim, report } = await run(name, 'tide', 11);
    assert.equal(sim.finishedJobs.length, 30);
    for (const f of sim.finishedJobs) if (f.spec.deadline !== undefined) assert.ok(f.finishTime <= f.spec.deadline, `${f.spec.id} finished at ${f.finishTime}, deadline ${f.spec.deadline}`);
    assert.ok(report.closureError <= 1e-3);
    const again = await run(name, 'tide', 11);
    assert.deepEqual(again.sim.finishedJobs.map((f) => `${f.spec.id}@${f.finishTime}`), sim.finishedJobs.map((f) => `${f.spec.id}@${f.finishTime}`));
    assert.equal(JSON.stringify(again.report), JSON.stringify(report));
  });
}

test('each stage alone changes what it should: caps, suspended nodes, deferred starts', async () => {
  const base = (await run('tide', 'maxpower', 4)).report;
  const capped = (await run('tide', 'powercap', 4)).report;
  const consolidated = (await run('tide', 'consolidate', 4)).report;
  const shifted = await run('tide', 'timeshift', 4);
  assert.equal(base.meanCap, 1);
  assert.ok(capped.meanCap < 1 && capped.jobsEnergyJ / capped.work < base.jobsEnergyJ / base.work);
  assert.ok(consolidated.idleEnergyJ < base.idleEnergyJ / 2, `${consolidated.idleEnergyJ} vs ${base.idleEnergyJ}`);
  // Deferred work buys its energy at a lower average tariff (the idle cluster around it is another matter: consolidate's).
  const tariff = (r: typeof base): number => Object.values(r.byTenant).reduce((a, u) => a + u.energyYuan, 0) / Object.values(r.byTenant).reduce((a, u) => a + u.energyJ, 0);
  assert.ok(tariff(shifted.report) < tariff(base) * 0.9, `${tariff(shifted.report)} vs ${tariff(base)}`);
});

test('withStages puts held jobs\' reasons into the plan in job order and takes the earliest wake-up', () => {
  const inner: JobScheduler = { name: 'inner', cycle: (s: SchedulerSnapshot): SchedulePlan => ({ binds: [], preemptions: [], pending: s.pending.map((p) => ({ job: p.spec.id, code: 'waiting-for-resources', message: '' })), wakeAt: 500 }) };
  const holdB = { name: 'hold-b', before: (s: SchedulerSnapshot) => ({ snapshot: { ...s, pending: s.pending.filter((p) => p.spec.id !== 'b') }, held: [{ job: s.pending[1]!.spec.id, code: 'deferred-to-cheaper-hours' as const, message: 'later' }], wakeAt: 300 }) };
  const composed = withStages(inner, [holdB]);
  assert.equal(composed.name, 'inner+hold-b');
  const progress = { stepsDone: 0, attainedGpuSeconds: 0, runSeconds: 0, preemptions: 0 };
  const pending = ['a', 'b', 'c'].map((id) => ({ spec: { id } as SchedulerSnapshot['pending'][number]['spec'], progress }));
  const plan = composed.cycle({ now: 0, nodes: [], running: [], pending, queues: [] });
  assert.deepEqual(plan.pending.map((r) => [r.job, r.code]), [['a', 'waiting-for-resources'], ['b', 'deferred-to-cheaper-hours'], ['c', 'waiting-for-resources']]);
  assert.equal(plan.wakeAt, 300);
});
