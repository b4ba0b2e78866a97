import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gangJob } from './build.ts';
import { RuntimeHistory } from './runtimeHistory.ts';
import type { FinishedJob } from './scheduler.ts';

const done = (id: string, runSeconds: number, limit: number | undefined, jobType?: string): FinishedJob => ({
  spec: gangJob({ id, gpus: 1, throughput: { V100: 2 }, totalSteps: 2 * runSeconds, ...(limit === undefined ? {} : { timeLimitSeconds: limit }), ...(jobType ? { jobType } : {}) }),
  finishTime: runSeconds,
  progress: { stepsDone: 2 * runSeconds, attainedGpuSeconds: runSeconds, runSeconds, preemptions: 0 },
  model: 'V100',
});
const best = (): number => 2;

test('before any history a job is expected to use half its declared limit', () => {
  const h = new RuntimeHistory();
  assert.equal(h.expectedSeconds(gangJob({ id: 'a', gpus: 1, throughput: { V100: 1 }, totalSteps: 1, timeLimitSeconds: 1000 })), 500);
  assert.equal(h.expectedSeconds(gangJob({ id: 'b', gpus: 1, throughput: { V100: 1 }, totalSteps: 1 })), undefined);
});

test('finished jobs teach how much users over-declare, and how long a job type runs', () => {
  const h = new RuntimeHistory();
  h.learn([done('a', 100, 400, 'bert'), done('b', 300, 1200, 'bert'), done('c', 50, undefined, 'resnet')], best);
  assert.equal(h.expectedSeconds(gangJob({ id: 'x', gpus: 1, throughput: { V100: 1 }, totalSteps: 1, timeLimitSeconds: 2000 })), 500);
  assert.equal(h.expectedSeconds(gangJob({ id: 'y', gpus: 1, throughput: { V100: 1 }, totalSteps: 1, jobType: 'bert' })), 200);
  assert.equal(h.expectedSeconds(gangJob({ id: 'z', gpus: 1, throughput: { V100: 1 }, totalSteps: 1, jobType: 'resnet' })), 50);
});
