import { test } from 'node:test';
import assert from 'node:assert/strict';
import { capEffect, DEFAULT_POWER_MODEL, gpuPower, jobWatts, minCapFraction } from '../../energy/powerModel.ts';
import { mergePowerConfig } from '../../energy/powerConfig.ts';
import { gangJob, gpuNodes, schedulable } from '../build.ts';
import type { JobSpec } from '../model.ts';
import type { SchedulePlan, SchedulerSnapshot } from '../scheduler.ts';
import { bestPowerCap, powercapStage } from './powercap.ts';
import type { EnergyPlan } from './stage.ts';

const h100 = gpuPower(DEFAULT_POWER_MODEL, 'H100');

/** Brute force over a fine grid: the cheapest energy per work within the slowdown. */
function bruteForce(slowdown: number, base: number): number {
  let bestCost = jobWatts(h100) + base;
  for (let f = 1; f >= minCapFraction(h100); f -= 0.0001) {
    const e = capEffect(h100, f);
    if (e.throughput < 1 - slowdown) continue;
    const cost = (jobWatts(h100, f) + base) / e.throughput;
    if (cost < bestCost) bestCost = cost;
  }
  return bestCost;
}

test('the cap minimises energy per work within the slowdown, as a fine search finds', () => {
  for (const [slowdown, base] of [[0.05, 0], [0.03, 0], [0.1, 0], [0.05, 300], [0.2, 100]] as const) {
    const cap = bestPowerCap(h100, slowdown, base);
    const e = capEffect(h100, cap);
    assert.ok(e.throughput >= 1 - slowdown - 1e-12, `slowdown ${slowdown}: throughput ${e.throughput}`);
    const cost = (jobWatts(h100, cap) + base) / e.throughput;
    assert.ok(cost <= bruteForce(slowdown, base) * 1.002, `slowdown ${slowdown}, base ${base}: cap ${cap} costs ${cost}`);
  }
  // At 5 % the generic curve allows about 0.68 of TDP: −4.1 % speed at 0.7, −7.7 % at 0.6.
  const at5 = bestPowerCap(h100, 0.05);
  assert.ok(at5 > 0.6 && at5 < 0.7, String(at5));
});

test('no slowdown allowed, no cap; a card that cannot be capped stays at full power', () => {
  assert.equal(bestPowerCap(h100, 0), 1);
  assert.equal(bestPowerCap(gpuPower(DEFAULT_POWER_MODEL, 'Ascend 910B'), 0.5), 1);
  // The T4 goes no lower than 60 of its 70 W.
  assert.ok(bestPowerCap(gpuPower(DEFAULT_POWER_MODEL, 'T4'), 0.5) >= 60 / 70 - 1e-9);
});

test('node base power makes slowing down dearer: the cap rises with it', () => {
  assert.ok(bestPowerCap(h100, 0.2, 2000) > bestPowerCap(h100, 0.2, 0));
});

test('the stage caps each bind by its own job\'s allowance, and leaves alone a job that allows none', () => {
  const nodes = schedulable(gpuNodes('H100', 2, 8));
  const a = gangJob({ id: 'a', gpus: 8, throughput: { H100: 1 }, totalSteps: 100 });
  const b: JobSpec = { ...gangJob({ id: 'b', gpus: 8, throughput: { H100: 1 }, totalSteps: 100 }), maxSlowdown: 0 };
  const c: JobSpec = { ...gangJob({ id: 'c', gpus: 1, throughput: { H100: 1 }, totalSteps: 100 }), maxSlowdown: 0.1 };
  const snapshot: SchedulerSnapshot = { now: 0, nodes, running: [], pending: [a, b, c].map((spec) => ({ spec, progress: { stepsDone: 0, attainedGpuSeconds: 0, runSeconds: 0, preemptions: 0 } })), queues: [] };
  const bindOn = (job: JobSpec, node: number, gpus: number) => ({ job: job.id, model: 'H100', bindings: Array.from({ length: gpus }, (_, i) => ({ group: 'worker', index: i, nodeId: nodes[node]!.spec.id, placement: { node, gpus: [i], gpuMilli: 1000, cpuMilli: 1000, memoryMib: 1024 } })) });
  const plan: SchedulePlan = { binds: [bindOn(a, 0, 8), bindOn(b, 1, 8)], preemptions: [], pending: [{ job: c.id, code: 'waiting-for-resources', message: 'full' }] };
  const power = mergePowerConfig(DEFAULT_POWER_MODEL, { node: { baseWatts: 0 } });
  const calm: SchedulePlan = { ...plan, pending: [{ job: c.id, code: 'over-quota', message: 'its queue is full' }] };
  const out = powercapStage({ power, maxSlowdown: 0.05, eta: 1 }).after?.(snapshot, calm) as EnergyPlan;
  assert.equal(out.binds[0]?.powerCap, bestPowerCap(h100, 0.05));
  assert.equal(out.binds[1]?.powerCap, undefined);
  assert.equal(out.pending, calm.pending);
  const lenient = powercapStage({ power, maxSlowdown: 0.05, eta: 1 }).after?.(snapshot, { ...calm, binds: [bindOn(c, 0, 1)] }) as EnergyPlan;
  assert.equal(lenient.binds[0]?.powerCap, bestPowerCap(h100, 0.1));
  // While a job waits for H100s, binds run at full power: capacity is what is short.
  const busy = powercapStage({ power, maxSlowdown: 0.05, eta: 1 }).after?.(snapshot, plan) as EnergyPlan;
  assert.equal(busy.binds[0]?.powerCap, undefined);
});

test('with time worth something (η < 1) a big job is capped deeper than a small one', () => {
  const eight = bestPowerCap(h100, 0.05, 0, 8, 700);
  const one = bestPowerCap(h100, 0.05, 0, 1, 700);
  assert.ok(eight < one, `${eight} vs ${one}`);
  assert.equal(bestPowerCap(h100, 0.05, 0, 1, 1e6), 1, 'time worth everything: no cap');
});
