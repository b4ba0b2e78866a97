import { test } from 'node:test';
import assert from 'node:assert/strict';
import { capEffect, clampCap, DEFAULT_POWER_MODEL, FALLBACK_GPU_POWER, GENERIC_CAP_CURVE, gpuPower, jobWatts, minCapFraction, nodeBaseWatts, powerAtUtilization, type GpuPowerProfile } from './powerModel.ts';
import { checkPowerConfig, mergePowerConfig } from './powerConfig.ts';

const near = (a: number, b: number, eps = 1e-9): void => assert.ok(Math.abs(a - b) <= eps, `${a} ≠ ${b}`);

test('every model the issue names has a default, with TDP above idle-with-memory above idle', () => {
  for (const m of ['H200', 'H100', 'A100', 'A10', 'L40S', 'V100', 'T4', 'P100', 'Ascend 910B', 'K80']) {
    const p = gpuPower(DEFAULT_POWER_MODEL, m);
    assert.notEqual(p, FALLBACK_GPU_POWER, m);
    assert.ok(p.idleWatts < p.idleWithMemoryWatts && p.idleWithMemoryWatts < p.tdpWatts, m);
    assert.ok(p.minCapWatts <= p.tdpWatts && p.source.length > 0, m);
    assert.equal(p.capCurve.at(-1)?.fraction, 1, m);
  }
  // Only the Zeus-measured cards have a curve of their own: everyone else's is marked extrapolated.
  for (const [m, p] of Object.entries(DEFAULT_POWER_MODEL.gpus)) assert.equal(p.extrapolated.includes('capCurve'), p.capCurve === GENERIC_CAP_CURVE, m);
});

test('reported names resolve to their model, and A10 is not A100', () => {
  const name = (s: string): GpuPowerProfile => gpuPower(DEFAULT_POWER_MODEL, s);
  assert.equal(name('Tesla V100-SXM2-32GB'), DEFAULT_POWER_MODEL.gpus['V100']);
  assert.equal(name('NVIDIA A100-SXM4-80GB'), DEFAULT_POWER_MODEL.gpus['A100']);
  assert.equal(name('NVIDIA A10'), DEFAULT_POWER_MODEL.gpus['A10']);
  assert.equal(name('NVIDIA H100 80GB HBM3'), DEFAULT_POWER_MODEL.gpus['H100']);
  assert.equal(name('Ascend910B3'), DEFAULT_POWER_MODEL.gpus['Ascend 910B']);
  assert.equal(name('RTX 4090'), FALLBACK_GPU_POWER);
});

test('power is linear in utilisation between idle and TDP', () => {
  const v = gpuPower(DEFAULT_POWER_MODEL, 'V100');
  near(powerAtUtilization(v, 0), 40);
  near(powerAtUtilization(v, 1), 300);
  near(powerAtUtilization(v, 0.5), 170);
  near(powerAtUtilization(v, 7), 300);
});

test('the cap curve interpolates and keeps energy per work = power ÷ throughput', () => {
  const h = gpuPower(DEFAULT_POWER_MODEL, 'H100');
  const at07 = capEffect(h, 0.7);
  near(at07.throughput, 0.959);
  near(at07.energy, 0.845);
  const mid = capEffect(h, 0.75);
  near(mid.throughput, (0.959 + 0.977) / 2);
  near(mid.power / mid.throughput, mid.energy);
  // Below the card's lowest limit the cap is raised to it: T4 goes no lower than 60/70 W.
  const t4 = gpuPower(DEFAULT_POWER_MODEL, 'T4');
  near(minCapFraction(t4), 60 / 70);
  near(clampCap(t4, 0.5), 60 / 70);
  near(capEffect(t4, 0.2).throughput, capEffect(t4, 60 / 70).throughput);
  // A card that cannot be capped runs at full power whatever is asked.
  assert.equal(capEffect(gpuPower(DEFAULT_POWER_MODEL, 'Ascend 910B'), 0.5).power, 1);
});

test('a job draws loadFraction × TDP at full power and less under a cap', () => {
  const v = gpuPower(DEFAULT_POWER_MODEL, 'V100');
  near(jobWatts(v), 0.71 * 300);
  near(jobWatts(v, 0.7), 0.71 * 300 * 0.941 * 0.845);
});

test('node base power follows CCF per core and per GiB, or a fixed figure', () => {
  near(nodeBaseWatts(DEFAULT_POWER_MODEL, { cpuMilli: 8000, memoryMib: 61 * 1024 }), 8 * 2.12 + 61 * 0.392);
  const fixed = mergePowerConfig(DEFAULT_POWER_MODEL, { node: { baseWatts: 41 } });
  assert.equal(nodeBaseWatts(fixed, { cpuMilli: 64000, memoryMib: 1 }), 41);
});

test('config overrides merge over the matching default and clear its extrapolated marks', () => {
  const m = mergePowerConfig(DEFAULT_POWER_MODEL, { gpus: { H100: { idleWithMemoryWatts: 110 }, MI300X: { tdpWatts: 750, idleWatts: 90 } } });
  const h = gpuPower(m, 'NVIDIA H100 80GB HBM3');
  assert.equal(h.idleWithMemoryWatts, 110);
  assert.equal(h.tdpWatts, 700);
  assert.ok(!h.extrapolated.includes('idleWithMemory'));
  assert.ok(h.extrapolated.includes('capCurve'));
  const mi = gpuPower(m, 'MI300X');
  assert.equal(mi.tdpWatts, 750);
  near(mi.minCapWatts, (FALLBACK_GPU_POWER.minCapWatts / 300) * 750);
  // The defaults themselves are untouched.
  assert.equal(gpuPower(DEFAULT_POWER_MODEL, 'H100').idleWithMemoryWatts, 112);
});

test('bad power settings are named by path', () => {
  const errors = checkPowerConfig(DEFAULT_POWER_MODEL, {
    gpus: { H100: { idleWatts: 800 }, X: { capCurve: [{ fraction: 0.5, throughput: 0.9, energy: 0.8 }] } },
    node: { baseWatts: -3 },
  });
  const paths = errors.map((e) => e.path);
  assert.ok(paths.includes('power.gpus.H100.idleWatts'), paths.join());
  assert.ok(paths.includes('power.gpus.X.capCurve'), paths.join());
  assert.ok(paths.includes('power.node.baseWatts'), paths.join());
  assert.deepEqual(checkPowerConfig(DEFAULT_POWER_MODEL, { gpus: { H100: { loadFraction: 0.8 } } }), []);
});
