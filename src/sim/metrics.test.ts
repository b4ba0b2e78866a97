import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gangJob, gpuNodes } from '../core/scheduling/build.ts';
import type { QueueConfig } from '../core/scheduling/model.ts';
import { getJobScheduler } from '../core/scheduling/policies/index.ts';
import { Rng } from '../core/rng.ts';
import { MetricsCollector } from './metrics.ts';
import { arraySource, simulate } from './simulator.ts';

// Queue a borrows all 4 GPUs for 10,000 s; at t = 100 queue b asks for the 2 it is owed.
const queues: QueueConfig[] = [
  { name: 'a', cohort: 'c', nominalQuota: { '*': 2 } },
  { name: 'b', cohort: 'c', nominalQuota: { '*': 2 } },
];
const jobs = [
  gangJob({ id: 'a1', gpus: 4, throughput: { V100: 1 }, totalSteps: 10_000, queue: 'a', tenant: 'a' }),
  gangJob({ id: 'b1', gpus: 2, throughput: { V100: 1 }, totalSteps: 1000, submitTime: 100, queue: 'b', tenant: 'b' }),
];

function belowGuarantee(policy: string): { a: number; b: number } {
  const factory = getJobScheduler(policy);
  assert.ok(factory);
  const metrics = new MetricsCollector(4, () => true, queues);
  simulate({ nodes: gpuNodes('V100', 1, 4), queues, scheduler: factory({ rng: Rng.fromSeed(1) }), jobs: arraySource(jobs), onEvent: metrics.onEvent });
  const q = metrics.summary().byQueue;
  return { a: q['a']?.belowGuaranteeShare ?? NaN, b: q['b']?.belowGuaranteeShare ?? NaN };
}

test('a queue kept from its nominal quota shows the time it was owed GPUs', () => {
  // fifo never reclaims: b waits until a1 ends at 10,000 s, of a 11,000 s run.
  const fifo = belowGuarantee('fifo');
  assert.ok(Math.abs(fifo.b - 9900 / 11_000) < 0.01, `fifo: b below its guarantee ${fifo.b}`);
  assert.equal(fifo.a, 0);
  // tide reclaims at its next quantum (360 s): b is owed GPUs for at most 260 s.
  const tide = belowGuarantee('tide');
  assert.ok(tide.b > 0 && tide.b < 300 / 10_000, `tide: b below its guarantee ${tide.b}`);
});
