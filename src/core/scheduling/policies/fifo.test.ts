import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../rng.ts';
import { gangJob, gpuNodes, schedulable } from '../build.ts';
import type { JobProgress, QueueConfig } from '../model.ts';
import type { PendingJob, RunningJob, SchedulerSnapshot } from '../scheduler.ts';
import { getJobScheduler } from './index.ts';

const fresh: JobProgress = { stepsDone: 0, attainedGpuSeconds: 0, runSeconds: 0, preemptions: 0 };
const nodes = schedulable([...gpuNodes('V100', 2, 4), ...gpuNodes('K80', 1, 4)]);
const pending = (j: ReturnType<typeof gangJob>): PendingJob => ({ spec: j, progress: fresh });

function snapshot(p: PendingJob[], extra: Partial<SchedulerSnapshot> = {}): SchedulerSnapshot {
  return { now: 100, nodes, running: [], pending: p, queues: [], ...extra };
}

function scheduler(seed = 1) {
  const f = getJobScheduler('fifo');
  assert.ok(f);
  return f({ rng: Rng.fromSeed(seed) });
}

test('fifo starts whole gangs in submission order and holds back the jobs behind a gang that does not fit', () => {
  const jobs = [
    gangJob({ id: 'a', gpus: 4, throughput: { V100: 1 }, totalSteps: 10, submitTime: 1 }),
    gangJob({ id: 'b', gpus: 8, throughput: { V100: 1 }, totalSteps: 10, submitTime: 2 }),
    gangJob({ id: 'c', gpus: 1, throughput: { V100: 1, K80: 1 }, totalSteps: 10, submitTime: 3 }),
  ];
  const plan = scheduler().cycle(snapshot(jobs.map(pending)));
  assert.deepEqual(plan.binds.map((b) => b.job), ['a']);
  const bound = plan.binds[0];
  assert.equal(bound?.bindings.length, 4);
  assert.equal(new Set(bound?.bindings.map((b) => `${b.placement.node}:${b.placement.gpus.join()}`)).size, 4, 'four distinct GPUs');
  const reasons = new Map(plan.pending.map((r) => [r.job as string, r]));
  assert.equal(reasons.get('b')?.code, 'waiting-for-gang');
  assert.match(reasons.get('b')?.message ?? '', /needs 8 V100 GPUs, 4 free/);
  assert.equal(reasons.get('c')?.code, 'lower-priority');
  assert.equal(plan.preemptions.length, 0);
});

test('fifo puts higher priority first and never binds more GPUs than are free', () => {
  const jobs = Array.from({ length: 10 }, (_, i) =>
    gangJob({ id: `j${i}`, gpus: 2, throughput: { V100: 1, K80: 1 }, totalSteps: 10, submitTime: i, priorityClass: i === 9 ? 'high' : 'normal' }),
  );
  const plan = scheduler().cycle(snapshot(jobs.map(pending)));
  assert.equal(plan.binds[0]?.job, 'j9');
  const gpus = plan.binds.reduce((a, b) => a + b.bindings.length, 0);
  assert.equal(gpus, 12);
  assert.equal(plan.binds.length + plan.pending.length, 10, 'every job is bound or has a reason');
});

test('fifo enforces a queue quota without blocking other queues, and counts running jobs', () => {
  const queues: QueueConfig[] = [
    { name: 'a', nominalQuota: { '*': 4 } },
    { name: 'b', nominalQuota: { '*': 4 } },
  ];
  const running: RunningJob = {
    spec: gangJob({ id: 'r', gpus: 4, throughput: { V100: 1 }, totalSteps: 10, queue: 'a' }),
    progress: fresh,
    model: 'V100',
    startTime: 0,
    lastCheckpointTime: 0,
    gpus: 4,
    bindings: [0, 1, 2, 3].map((d) => ({ group: 'worker', index: d, nodeId: nodes[0]!.spec.id, placement: { node: 0, gpus: [d], gpuMilli: 1000, cpuMilli: 1000, memoryMib: 1024 } })),
  };
  const jobs = [
    gangJob({ id: 'x', gpus: 1, throughput: { V100: 1 }, totalSteps: 10, queue: 'a', submitTime: 1 }),
    gangJob({ id: 'y', gpus: 2, throughput: { V100: 1 }, totalSteps: 10, queue: 'b', submitTime: 2 }),
  ];
  const plan = scheduler().cycle(snapshot(jobs.map(pending), { queues, running: [running] }));
  assert.deepEqual(plan.binds.map((b) => b.job), ['y']);
  assert.ok(plan.binds[0]?.bindings.every((b) => b.placement.node !== 0), 'node 0 is full');
  const x = plan.pending.find((r) => r.job === 'x');
  assert.equal(x?.code, 'over-quota');
  assert.match(x?.message ?? '', /queue 'a' would use 5 GPUs, nominal quota 4/);
});

test('fifo gives the first waiting job an estimated start from declared time limits', () => {
  const running: RunningJob = {
    spec: gangJob({ id: 'r', gpus: 4, throughput: { K80: 1 }, totalSteps: 10, timeLimitSeconds: 1000 }),
    progress: { ...fresh, runSeconds: 300 },
    model: 'K80',
    startTime: 0,
    lastCheckpointTime: 0,
    gpus: 4,
    bindings: [0, 1, 2, 3].map((d) => ({ group: 'worker', index: d, nodeId: nodes[2]!.spec.id, placement: { node: 2, gpus: [d], gpuMilli: 1000, cpuMilli: 1000, memoryMib: 1024 } })),
  };
  const job = gangJob({ id: 'k', gpus: 2, throughput: { K80: 1 }, totalSteps: 10, timeLimitSeconds: 50 });
  const plan = scheduler().cycle(snapshot([pending(job)], { running: [running] }));
  assert.equal(plan.binds.length, 0);
  assert.equal(plan.pending[0]?.code, 'waiting-for-resources');
  assert.equal(plan.pending[0]?.estimatedStart, 100 + 600);
});

test('fifo is deterministic for a seed', () => {
  const jobs = Array.from({ length: 6 }, (_, i) => gangJob({ id: `j${i}`, gpus: 1 + (i % 3), throughput: { V100: 1, K80: 2 }, totalSteps: 10, submitTime: i }));
  const a = scheduler(7).cycle(snapshot(jobs.map(pending)));
  const b = scheduler(7).cycle(snapshot(jobs.map(pending)));
  assert.deepEqual(a, b);
});
