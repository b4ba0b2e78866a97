import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../core/rng.ts';
import { gangJob, gpuNodes } from '../../core/scheduling/build.ts';
import { jobId, type JobSpec } from '../../core/scheduling/model.ts';
import { getJobScheduler } from '../../core/scheduling/policies/index.ts';
import type { JobScheduler, SchedulePlan } from '../../core/scheduling/scheduler.ts';
import { DEFAULT_POWER_MODEL, gpuPower, jobWatts, capEffect } from '../../core/energy/powerModel.ts';
import { mergePowerConfig } from '../../core/energy/powerConfig.ts';
import { DEFAULT_PRICES, simulationPrices, type EnergyPrices } from '../../core/energy/pricing.ts';
import { withEnergyStages } from '../../core/scheduling/stages/energyStages.ts';
import type { EnergyPlan } from '../../core/scheduling/stages/stage.ts';
import { nodeId } from '../../core/model.ts';
import { arraySource, simulate, type JobSource, type NodeOutage } from '../simulator.ts';
import { capSpeed, EnergyAccountant, type EnergyReport } from './accountant.ts';

const near = (a: number, b: number, rel = 1e-9): void => assert.ok(Math.abs(a - b) <= rel * Math.max(1, Math.abs(b)), `${a} ≠ ${b}`);
const fifo = (): JobScheduler => (getJobScheduler('fifo') as NonNullable<ReturnType<typeof getJobScheduler>>)({ rng: Rng.fromSeed(1) });
const prices: EnergyPrices = { ...simulationPrices(DEFAULT_PRICES), gpuHourYuan: { V100: 2, '*': 1 } };

test('one job on one V100: its energy, the idle GPU and the base power add up to the node, priced by the hour', () => {
  const power = mergePowerConfig(DEFAULT_POWER_MODEL, { node: { baseWatts: 41 } });
  const nodes = gpuNodes('V100', 1, 1);
  const acc = new EnergyAccountant({ nodes, power, prices, keepAttempts: true });
  simulate({ nodes, scheduler: fifo(), jobs: arraySource([gangJob({ id: 'a', gpus: 1, throughput: { V100: 1 }, totalSteps: 3600, tenant: 't1', queue: 'q1' })]), onEvent: acc.onEvent });
  const r = acc.report(7200);
  const job = 0.71 * 300 * 3600;
  near(r.jobsEnergyJ, job);
  near(r.idleEnergyJ, 40 * 3600);
  near(r.baseEnergyJ, 41 * 7200);
  near(r.nodeEnergyJ, job + 40 * 3600 + 41 * 7200);
  assert.ok(r.closureError < 1e-12);
  // 00:00–02:00 is the valley hour of the default tariff: 0.65 × 0.38 yuan per kWh at the meter.
  near(r.energyKwh, (r.nodeEnergyJ * 1.56) / 3.6e6);
  near(r.costYuan, r.energyKwh * 0.65 * 0.38 + 2, 1e-9);
  near(r.co2Kg, (r.energyKwh * 536.6) / 1000);
  const t1 = r.byTenant['t1'];
  assert.ok(t1);
  near(t1.energyJ, job);
  near(t1.gpuSeconds, 3600);
  near(t1.gpuYuan, 2);
  near(r.work, 1, 1e-9); // one V100 GPU-hour of work
  assert.deepEqual(r.attempts?.map((a) => [a.job, a.attempt, a.endedAs, a.start, a.end]), [['a', 1, 'finished', 0, 3600]]);
});

test('a power cap slows the job by the curve and lowers its power by it', () => {
  const power = DEFAULT_POWER_MODEL;
  const nodes = gpuNodes('V100', 1, 1);
  const capped: JobScheduler = {
    name: 'cap-0.7',
    cycle(s): EnergyPlan {
      const plan = fifo().cycle(s);
      return { ...plan, binds: plan.binds.map((b) => ({ ...b, powerCap: 0.7 })) };
    },
  };
  const acc = new EnergyAccountant({ nodes, power, prices });
  const sim = simulate({ nodes, scheduler: capped, jobs: arraySource([gangJob({ id: 'a', gpus: 1, throughput: { V100: 1 }, totalSteps: 3600 })]), onEvent: acc.onEvent, speedOf: capSpeed(power) });
  const v = gpuPower(power, 'V100');
  const seconds = 3600 / capEffect(v, 0.7).throughput;
  near(sim.finishedJobs[0]?.finishTime ?? NaN, seconds);
  const r = acc.report(sim.now);
  near(r.jobsEnergyJ, jobWatts(v, 0.7) * seconds);
  // Energy per unit of work falls by the curve's energy ratio.
  near(r.jobsEnergyJ / (jobWatts(v) * 3600), 0.845, 1e-9);
  near(r.meanCap, 0.7);
});

/** Jobs of every kind the accounting must follow: fractional tasks, gangs, restarts with checkpoints. */
function mixedJobs(seed: number, n: number): JobSource {
  const rng = Rng.fromSeed(seed);
  const jobs: JobSpec[] = [];
  for (let i = 0; i < n; i++) {
    const submitTime = i * 300 * rng.float();
    const kind = rng.int(0, 2);
    const tenant = `t${rng.int(0, 2)}`;
    if (kind === 0) {
      jobs.push({
        id: jobId(`f${i}`),
        tenant,
        queue: tenant,
        priorityClass: 'normal',
        priority: 100,
        submitTime,
        groups: [{ name: 'w', replicas: 2, task: { cpuMilli: 1000, memoryMib: 1024, gpuCount: 1, gpuMilli: [250, 500, 300][rng.int(0, 2)] as number, allowedModels: [] } }],
        totalSteps: 600 + 3000 * rng.float(),
        throughput: { V100: 1, K80: 0.4 },
        preemptible: true,
        restartCostSeconds: 30,
        checkpointIntervalSeconds: 200,
      });
    } else {
      jobs.push(gangJob({ id: `g${i}`, gpus: [1, 2, 4][rng.int(0, 2)] as number, throughput: { V100: 2, K80: 0.7 }, totalSteps: 2000 + 8000 * rng.float(), submitTime, tenant, queue: tenant, restartCostSeconds: 60, checkpointIntervalSeconds: 600, timeLimitSeconds: 20_000 }));
    }
  }
  return arraySource(jobs);
}

async function messyRun(policy: string, seed: number): Promise<{ report: EnergyReport; finished: number }> {
  const nodes = [...gpuNodes('V100', 2, 4), ...gpuNodes('K80', 3, 2)];
  const power = DEFAULT_POWER_MODEL;
  const factory = getJobScheduler(policy);
  assert.ok(factory);
  const scheduler = withEnergyStages(factory({ rng: Rng.fromSeed(seed) }), { power, prices, powercap: true, consolidate: { suspendSeconds: 120, resumeSeconds: 60 }, timeshift: true });
  const acc = new EnergyAccountant({ nodes, power, prices, keepAttempts: true });
  const outages: NodeOutage[] = [{ node: nodeId('v100-1'), at: 2000, repairedAt: 5000 }];
  const sim = simulate({ nodes, scheduler, jobs: mixedJobs(seed, 40), outages, onEvent: acc.onEvent, speedOf: capSpeed(power) });
  return { report: acc.report(sim.now + 1000), finished: sim.finishedJobs.length };
}

test('accounting closes with fractional GPUs, preemptions, restarts, a node outage, power caps and suspended nodes', async () => {
  for (const policy of ['fifo', 'tide']) {
    const { report: r, finished } = await messyRun(policy, 7);
    assert.equal(finished, 40, policy);
    assert.ok(r.closureError <= 1e-3, `${policy}: closure ${r.closureError}`);
    near(r.nodeEnergyJ, r.jobsEnergyJ + r.idleEnergyJ + r.baseEnergyJ, 1e-3);
    // Every attempt is a record, and the totals per tenant are their sums.
    const attempts = r.attempts ?? [];
    assert.ok(attempts.length >= 40);
    for (const [tenant, u] of Object.entries(r.byTenant)) near(u.energyJ, attempts.filter((a) => a.tenant === tenant).reduce((s, a) => s + a.energyJ, 0), 1e-9);
    const jobs = Object.values(r.byJob ?? {});
    assert.equal(jobs.length, 40);
    near(jobs.reduce((s, u) => s + u.energyJ, 0), r.jobsEnergyJ, 1e-9);
    assert.equal(jobs.reduce((s, u) => s + u.attempts, 0), attempts.length);
    // Work credited to the finished jobs is their whole work: nothing counted twice across attempts.
    near(r.work, attempts.reduce((s, a) => s + a.work, 0), 1e-9);
    assert.ok(r.cappedShare > 0 && r.meanCap < 1, `${policy}: caps were applied`);
  }
});

test('the same run gives the same accounting', async () => {
  const a = JSON.stringify((await messyRun('tide', 3)).report);
  const b = JSON.stringify((await messyRun('tide', 3)).report);
  assert.equal(a, b);
});

test('a plan that binds a job to a suspended node fails the run', () => {
  const nodes = gpuNodes('V100', 1, 1);
  const acc = new EnergyAccountant({ nodes, power: DEFAULT_POWER_MODEL, prices });
  const bad: JobScheduler = {
    name: 'bad',
    cycle(s): EnergyPlan {
      const plan: SchedulePlan = fifo().cycle(s);
      return { ...plan, nodePower: [{ node: 0, state: 'off', readyAt: Infinity }] };
    },
  };
  assert.throws(() => simulate({ nodes, scheduler: bad, jobs: arraySource([gangJob({ id: 'a', gpus: 1, throughput: { V100: 1 }, totalSteps: 10 })]), onEvent: acc.onEvent }), /powered down/);
});
