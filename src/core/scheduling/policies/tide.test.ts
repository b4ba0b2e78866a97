import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../rng.ts';
import { gangJob, gpuNodes, schedulable } from '../build.ts';
import type { JobProgress, JobSpec, QueueConfig } from '../model.ts';
import type { PendingJob, RunningJob, SchedulerSnapshot } from '../scheduler.ts';
import { tide } from './tide.ts';

const fresh: JobProgress = { stepsDone: 0, attainedGpuSeconds: 0, runSeconds: 0, preemptions: 0 };
const nodes = schedulable([...gpuNodes('H100', 1, 4), ...gpuNodes('K80', 1, 4)]);

function running(spec: JobSpec, model: string, node: number, devices: number[], startTime = 0, progress: JobProgress = fresh): RunningJob {
  return {
    spec,
    progress,
    model,
    startTime,
    lastCheckpointTime: startTime,
    gpus: devices.length,
    bindings: devices.map((d, index) => ({ group: 'worker', index, nodeId: nodes[node]!.spec.id, placement: { node, gpus: [d], gpuMilli: 1000, cpuMilli: 1000, memoryMib: 1024 } })),
  };
}
const pending = (spec: JobSpec, progress = fresh): PendingJob => ({ spec, progress });
const snap = (s: Partial<SchedulerSnapshot>): SchedulerSnapshot => ({ now: 0, nodes, running: [], pending: [], queues: [], ...s });

test('a job gets the model where it runs fastest, and a job indifferent to speed takes the slow one', () => {
  const picky = gangJob({ id: 'picky', gpus: 4, throughput: { H100: 10, K80: 1 }, totalSteps: 1e6, submitTime: 1 });
  const easy = gangJob({ id: 'easy', gpus: 4, throughput: { H100: 2, K80: 1.9 }, totalSteps: 1e6, submitTime: 0 });
  const plan = tide({ rng: Rng.fromSeed(1) }).cycle(snap({ pending: [pending(easy), pending(picky)] }));
  const model = Object.fromEntries(plan.binds.map((b) => [b.job as string, b.model]));
  assert.deepEqual(model, { picky: 'H100', easy: 'K80' }, 'the swap pass puts the job that gains most on the fast model');
});

test('the job with the least attained service preempts the one that has run longest', () => {
  const old = gangJob({ id: 'old', gpus: 4, throughput: { H100: 1 }, totalSteps: 1e6 });
  const young = gangJob({ id: 'young', gpus: 4, throughput: { H100: 1 }, totalSteps: 1e6, submitTime: 3000 });
  const plan = tide({ rng: Rng.fromSeed(1) }).cycle(snap({ now: 3600, running: [running(old, 'H100', 0, [0, 1, 2, 3], 0)], pending: [pending(young)] }));
  assert.deepEqual(plan.preemptions.map((p) => p.job), ['old']);
  assert.deepEqual(plan.binds.map((b) => b.job), ['young']);
  assert.equal(plan.pending.find((p) => p.job === 'old')?.code, 'lower-priority');
});

test('a queue within its nominal quota reclaims GPUs lent to a borrowing queue of its cohort', () => {
  const queues: QueueConfig[] = [
    { name: 'a', cohort: 'c', nominalQuota: { H100: 2 } },
    { name: 'b', cohort: 'c', nominalQuota: { H100: 2 } },
  ];
  // a holds all 4 H100s (2 borrowed from b); b now asks for its 2.
  const borrower = gangJob({ id: 'a1', gpus: 4, throughput: { H100: 1 }, totalSteps: 1e6, queue: 'a' });
  const owner = gangJob({ id: 'b1', gpus: 2, throughput: { H100: 1 }, totalSteps: 1e6, queue: 'b', submitTime: 10 });
  const plan = tide({ rng: Rng.fromSeed(1) }).cycle(snap({ now: 20, queues, running: [running(borrower, 'H100', 0, [0, 1, 2, 3], 0, { ...fresh })], pending: [pending(owner)] }));
  assert.deepEqual(plan.preemptions.map((p) => p.job), ['a1']);
  assert.deepEqual(plan.binds.map((b) => b.job), ['b1']);
  assert.equal(plan.pending.find((p) => p.job === 'a1')?.code, 'over-quota');
});

test('a gang that has waited over a day is served first and holds its model against longer jobs', () => {
  const now = 30 * 3600;
  const starving = gangJob({ id: 'big', gpus: 4, throughput: { H100: 1 }, totalSteps: 1e6, submitTime: 0 });
  const small = gangJob({ id: 'small', gpus: 1, throughput: { H100: 1 }, totalSteps: 1e6, submitTime: now - 10, timeLimitSeconds: 1e6 });
  const blocker = gangJob({ id: 'blocker', gpus: 1, throughput: { H100: 1 }, totalSteps: 1e6, submitTime: 0, preemptible: false, timeLimitSeconds: 1800 });
  const plan = tide({ rng: Rng.fromSeed(1) }).cycle(snap({ now, running: [running(blocker, 'H100', 0, [0], now - 600)], pending: [pending(starving), pending(small)] }));
  assert.equal(plan.binds.find((b) => b.job === 'small')?.model ?? 'none', 'none', 'small may not take an H100 the starving gang waits for');
  const big = plan.pending.find((p) => p.job === 'big');
  assert.equal(big?.code, 'waiting-for-resources');
  assert.equal(plan.pending.find((p) => p.job === 'small')?.code, 'reserved-for-another-job');
  assert.equal(plan.pending.find((p) => p.job === 'small')?.blockedBy, 'big', 'the job it names, for the server to show only to its owner');
  assert.ok(big?.estimatedStart !== undefined && big.estimatedStart <= now + 1200, `estimated start ${big?.estimatedStart}`);
});

test('of two fresh jobs the one that declares the shorter limit goes first', () => {
  const long = gangJob({ id: 'long', gpus: 4, throughput: { H100: 1 }, totalSteps: 1e6, submitTime: 0, timeLimitSeconds: 100 * 3600 });
  const short = gangJob({ id: 'short', gpus: 4, throughput: { H100: 1 }, totalSteps: 1e6, submitTime: 10, timeLimitSeconds: 3600 });
  const k80less = schedulable(gpuNodes('H100', 1, 4));
  const plan = tide({ rng: Rng.fromSeed(1) }).cycle(snap({ now: 20, nodes: k80less, pending: [pending(long), pending(short)] }));
  assert.deepEqual(plan.binds.map((b) => b.job), ['short']);
  assert.equal(plan.pending.find((p) => p.job === 'long')?.code, 'lower-priority');
});

test('a better-ranked job takes free GPUs on a slower model rather than displace a running job from the fast one', () => {
  // The running job has an hour of unsaved work; the newcomer is smaller, so no swap can undo a displacement.
  const runner = gangJob({ id: 'runner', gpus: 4, throughput: { H100: 4, K80: 1 }, totalSteps: 1e9, submitTime: 0, timeLimitSeconds: 1e6, checkpointIntervalSeconds: 7200, restartCostSeconds: 60 });
  const newcomer = gangJob({ id: 'newcomer', gpus: 2, throughput: { H100: 4, K80: 1 }, totalSteps: 1e6, submitTime: 3500, timeLimitSeconds: 600 });
  const at = (sticky: number) => tide({ rng: Rng.fromSeed(1), options: { sticky } }).cycle(snap({ now: 3600, running: [running(runner, 'H100', 0, [0, 1, 2, 3], 0)], pending: [pending(newcomer)] }));
  const plan = at(1);
  assert.deepEqual(plan.preemptions, []);
  assert.deepEqual(plan.binds.map((b) => [b.job, b.model]), [['newcomer', 'K80']]);
  // Without it, the newcomer takes the H100 and the runner moves to the K80, losing its hour.
  const greedy = at(0);
  assert.deepEqual(greedy.preemptions.map((p) => p.job), ['runner']);
  assert.deepEqual(Object.fromEntries(greedy.binds.map((b) => [b.job, b.model])), { newcomer: 'H100', runner: 'K80' });
});

test('between replans an arrival fills free GPUs, and a job not looked at keeps its reason and estimate', () => {
  const k80less = schedulable(gpuNodes('H100', 1, 4));
  const holder = gangJob({ id: 'holder', gpus: 3, throughput: { H100: 1 }, totalSteps: 1e6, submitTime: 0, preemptible: false, timeLimitSeconds: 7200 });
  const big = gangJob({ id: 'big', gpus: 4, throughput: { H100: 1 }, totalSteps: 1e6, submitTime: 5, timeLimitSeconds: 3600 });
  const small = gangJob({ id: 'small', gpus: 1, throughput: { H100: 1 }, totalSteps: 1e3, submitTime: 100, timeLimitSeconds: 600 });
  const scheduler = tide({ rng: Rng.fromSeed(1) });
  const run = [running(holder, 'H100', 0, [0, 1, 2], 0)];
  const waitingBig = pending(big);
  const first = scheduler.cycle(snap({ now: 10, nodes: k80less, running: run, pending: [waitingBig] }));
  const reason = first.pending.find((p) => p.job === 'big');
  assert.equal(reason?.estimatedStart, 7200, 'big starts when the holder’s declared limit runs out');
  // 90 s later (before the next replan at 370 s) a 1-GPU job arrives and takes the free GPU.
  const second = scheduler.cycle(snap({ now: 100, nodes: k80less, running: run, pending: [waitingBig, pending(small)] }));
  assert.deepEqual(second.binds.map((b) => b.job), ['small']);
  assert.equal(second.pending.find((p) => p.job === 'big'), reason, 'the same reason object, estimate included');
  assert.equal(second.wakeAt, 370);
});

test('a starving job its quota holds back reserves nothing: a queue within its quota still starts', () => {
  const k80less = schedulable(gpuNodes('H100', 1, 4));
  const queues: QueueConfig[] = [
    { name: 'a', cohort: 'c', nominalQuota: { H100: 2 }, borrowingLimit: { H100: 0 } },
    { name: 'b', cohort: 'c', nominalQuota: { H100: 2 } },
  ];
  const now = 30 * 3600;
  // a's gang has starved for a day, but needs 4 GPUs on a 2-GPU quota that may not borrow.
  const starving = gangJob({ id: 'a-big', gpus: 4, throughput: { H100: 1 }, totalSteps: 1e6, submitTime: 0, queue: 'a' });
  const within = gangJob({ id: 'b-small', gpus: 2, throughput: { H100: 1 }, totalSteps: 1e6, submitTime: now - 10, queue: 'b', timeLimitSeconds: 1e6 });
  const plan = tide({ rng: Rng.fromSeed(1) }).cycle(snap({ now, nodes: k80less, queues, pending: [pending(starving), pending(within)] }));
  assert.deepEqual(plan.binds.map((b) => b.job), ['b-small']);
  assert.equal(plan.pending.find((p) => p.job === 'a-big')?.code, 'over-quota');
});

test('a job at its preemption budget, or younger than the minimum run, keeps its GPUs', () => {
  const old = gangJob({ id: 'old', gpus: 4, throughput: { H100: 1 }, totalSteps: 1e6 });
  const young = gangJob({ id: 'young', gpus: 4, throughput: { H100: 1 }, totalSteps: 1e6, submitTime: 3000 });
  const atBudget = tide({ rng: Rng.fromSeed(1), options: { maxPreemptions: 2 } }).cycle(snap({ now: 3600, running: [running(old, 'H100', 0, [0, 1, 2, 3], 0, { ...fresh, preemptions: 2 })], pending: [pending(young)] }));
  assert.deepEqual(atBudget.preemptions, []);
  const ownBudget = tide({ rng: Rng.fromSeed(1), options: { maxPreemptions: 2 } }).cycle(snap({ now: 3600, running: [running({ ...old, maxPreemptions: 3 }, 'H100', 0, [0, 1, 2, 3], 0, { ...fresh, preemptions: 2 })], pending: [pending(young)] }));
  assert.deepEqual(ownBudget.preemptions.map((p) => p.job), ['old'], "the job's own budget is not spent yet");
  const tooYoung = tide({ rng: Rng.fromSeed(1), options: { minRunSeconds: 7200 } }).cycle(snap({ now: 3600, running: [running(old, 'H100', 0, [0, 1, 2, 3], 0)], pending: [pending(young)] }));
  assert.deepEqual(tooYoung.preemptions, []);
});

test('a job whose preemptions cost nothing has the larger default budget; one that pays for them, the smaller; an explicit budget holds for both', () => {
  const old = gangJob({ id: 'old', gpus: 4, throughput: { H100: 1 }, totalSteps: 1e6 });
  const young = gangJob({ id: 'young', gpus: 4, throughput: { H100: 1 }, totalSteps: 1e6, submitTime: 3000 });
  const after = (spec: JobSpec, preemptions: number, options?: Record<string, number>): string[] =>
    tide({ rng: Rng.fromSeed(1), ...(options ? { options } : {}) })
      .cycle(snap({ now: 3600, running: [running(spec, 'H100', 0, [0, 1, 2, 3], 0, { ...fresh, preemptions })], pending: [pending(young)] }))
      .preemptions.map((p) => p.job);
  assert.deepEqual(after(old, 5, { preemptGrowth: 1 }), ['old'], 'free: 5 stops taken, 20 allowed');
  assert.deepEqual(after(old, 20, { preemptGrowth: 1 }), [], 'free: the budget of 20 is spent');
  const paying = { ...old, restartCostSeconds: 1 };
  assert.deepEqual(after(paying, 4, { preemptGrowth: 1 }), ['old'], 'priced: 4 of 5 taken');
  assert.deepEqual(after(paying, 5, { preemptGrowth: 1 }), [], 'priced: the budget of 5 is spent');
  assert.deepEqual(after(old, 5, { preemptGrowth: 1, maxPreemptions: 5 }), [], 'an explicit budget applies to free preemptions too');
});

test('a waiting job displaces a running one only when what it gains outweighs the price', () => {
  // Equal remaining work but for a little: free restarts let the younger one in; an hour of unsaved work does not.
  const runningJob = gangJob({ id: 'r', gpus: 4, throughput: { H100: 1 }, totalSteps: 1e6, submitTime: 0, timeLimitSeconds: 20_000 });
  const waiting = gangJob({ id: 'w', gpus: 4, throughput: { H100: 1 }, totalSteps: 1e6, submitTime: 10, timeLimitSeconds: 20_000 });
  const at = (spec: JobSpec): SchedulerSnapshot => snap({ now: 3600, running: [running(spec, 'H100', 0, [0, 1, 2, 3], 0)], pending: [pending(waiting)] });
  const free = tide({ rng: Rng.fromSeed(1) }).cycle(at(runningJob));
  assert.deepEqual(free.preemptions.map((p) => p.job), [], 'it has run an hour: less left than the newcomer');
  const shorter = gangJob({ id: 'w', gpus: 4, throughput: { H100: 1 }, totalSteps: 1e6, submitTime: 10, timeLimitSeconds: 5_000 });
  const cheap = tide({ rng: Rng.fromSeed(1) }).cycle(snap({ now: 3600, running: [running(runningJob, 'H100', 0, [0, 1, 2, 3], 0)], pending: [pending(shorter)] }));
  assert.deepEqual(cheap.preemptions.map((p) => p.job), ['r'], 'much less work left, continuous checkpoints: worth it');
  const costly = tide({ rng: Rng.fromSeed(1) }).cycle(snap({ now: 3600, running: [running({ ...runningJob, checkpointIntervalSeconds: 1e6, restartCostSeconds: 600 }, 'H100', 0, [0, 1, 2, 3], 0)], pending: [pending(shorter)] }));
  assert.deepEqual(costly.preemptions, [], 'an hour of unsaved work and a 10-minute restart cost more than the newcomer gains');
});

test('a waiting job of equal rank never displaces a running one, even one submitted after it', () => {
  // Both ranked at the estimate floor (a minute left each): the earlier submission waits, as a stop would gain nothing.
  const early = gangJob({ id: 'early', gpus: 4, throughput: { H100: 1 }, totalSteps: 1e6, submitTime: 0, timeLimitSeconds: 30 });
  const late = gangJob({ id: 'late', gpus: 4, throughput: { H100: 1 }, totalSteps: 1e6, submitTime: 5, timeLimitSeconds: 30 });
  const plan = tide({ rng: Rng.fromSeed(1) }).cycle(snap({ now: 10, running: [running(late, 'H100', 0, [0, 1, 2, 3], 8)], pending: [pending(early)] }));
  assert.deepEqual(plan.preemptions, []);
  assert.deepEqual(plan.binds, []);
});

test('the more often a job was stopped, the more a stop must gain (preemptGrowth)', () => {
  const runningJob = gangJob({ id: 'r', gpus: 4, throughput: { H100: 1 }, totalSteps: 1e6, submitTime: 0, timeLimitSeconds: 20_000 });
  const shorter = gangJob({ id: 'w', gpus: 4, throughput: { H100: 1 }, totalSteps: 1e6, submitTime: 10, timeLimitSeconds: 5_000 });
  // r: about 6,400 s left, w: about 2,500 s (half their limits, as nothing has finished yet).
  const after = (preemptions: number): string[] =>
    tide({ rng: Rng.fromSeed(1) })
      .cycle(snap({ now: 3600, running: [running(runningJob, 'H100', 0, [0, 1, 2, 3], 0, { ...fresh, preemptions })], pending: [pending(shorter)] }))
      .preemptions.map((p) => p.job);
  assert.deepEqual(after(0), ['r']);
  assert.deepEqual(after(1), ['r'], 'w has less than half of what r has left');
  assert.deepEqual(after(2), [], 'but not less than a quarter');
  assert.throws(() => tide({ rng: Rng.fromSeed(1), options: { preemptGrowth: 0.5 } }), /preemptGrowth: must be a number ≥ 1/);
});
