import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../rng.ts';
import { gangJob, gpuNodes, schedulable } from './build.ts';
import { borrowedRuns, cohortLoans, effectiveQueues, reclaimVictims, usageByQueue, withLending } from './lending.ts';
import type { JobId, JobProgress, JobSpec, QueueConfig } from './model.ts';
import { tide } from './policies/tide.ts';
import type { PendingJob, Reservation, RunningJob, SchedulerSnapshot } from './scheduler.ts';

const fresh: JobProgress = { stepsDone: 0, attainedGpuSeconds: 0, runSeconds: 0, preemptions: 0 };
const nodes = schedulable(gpuNodes('H100', 2, 4));

/** A run of `spec` on node `node`, devices `devices`, started at `start` and last checkpointed at `ckpt`. */
function run(spec: JobSpec, node: number, devices: number[], start = 0, ckpt = start, extra: Partial<RunningJob> = {}): RunningJob {
  return {
    spec,
    progress: fresh,
    model: 'H100',
    startTime: start,
    lastCheckpointTime: ckpt,
    gpus: devices.length,
    bindings: devices.map((d, index) => ({ group: 'worker', index, nodeId: nodes[node]!.spec.id, placement: { node, gpus: [d], gpuMilli: 1000, cpuMilli: 1000, memoryMib: 1024 } })),
    ...extra,
  };
}
const job = (id: string, queue: string, gpus = 1, extra: Partial<Parameters<typeof gangJob>[0]> = {}): JobSpec => gangJob({ id, gpus, throughput: { H100: 1 }, totalSteps: 1e9, queue, ...extra });
const queues: QueueConfig[] = [
  { name: 'serve', cohort: 'tidal', nominalQuota: { '*': 8 } },
  { name: 'train', cohort: 'tidal', nominalQuota: { '*': 0 } },
];
const reservation = (keepGpus: number, replicas: string[], urgent = false): Reservation => ({ service: '7', queue: 'serve', keepGpus, replicas: replicas as JobId[], urgent, reason: 'rate 1.0/s' });

test('a reserved queue lends what its services do not keep; other queues are left as they are', () => {
  const replicas = [run(job('r1', 'serve'), 0, [0]), run(job('r2', 'serve'), 0, [1])];
  const eff = effectiveQueues(queues, [reservation(3, ['r1', 'r2'])], replicas);
  assert.deepEqual(eff[0]?.lendingLimit, { '*': 5 }, '8 nominal − 3 kept');
  assert.equal(eff[1], queues[1], 'the borrowing queue is the same object');
  // Another job of the service's queue (not a replica) uses quota the service cannot lend either.
  const other = run(job('o1', 'serve', 2), 1, [0, 1]);
  assert.deepEqual(effectiveQueues(queues, [reservation(3, ['r1', 'r2'])], [...replicas, other])[0]?.lendingLimit, { '*': 3 });
  // A configured lending limit stays the ceiling.
  const capped = effectiveQueues([{ ...queues[0]!, lendingLimit: { '*': 2 } }, queues[1]!], [reservation(1, [])], [])[0];
  assert.deepEqual(capped?.lendingLimit, { '*': 2 });
});

test('when the kept GPUs rise, the borrowers that lose the least work are reclaimed, planned unless urgent', () => {
  const replicas = [run(job('r1', 'serve'), 0, [0]), run(job('r2', 'serve'), 0, [1])];
  // Six borrowed GPUs: b1 checkpointed just now, b2 an hour ago, b3 (2 GPUs) ten minutes ago, b4 and b5 recently.
  const borrowers = [
    run(job('b1', 'train'), 0, [2], 0, 3590),
    run(job('b2', 'train'), 0, [3], 0, 0),
    run(job('b3', 'train', 2), 1, [0, 1], 0, 3000),
    run(job('b4', 'train'), 1, [2], 0, 3500),
    run(job('b5', 'train'), 1, [3], 0, 3550),
  ];
  const running = [...replicas, ...borrowers];
  const now = 3600;
  const calm = reservation(2, ['r1', 'r2']);
  assert.deepEqual(reclaimVictims(effectiveQueues(queues, [calm], running), [calm], running, now), [], 'keeping 2 of 8: 6 lendable, 6 borrowed');
  const rise = reservation(4, ['r1', 'r2']);
  const planned = reclaimVictims(effectiveQueues(queues, [rise], running), [rise], running, now);
  assert.deepEqual(planned.map((p) => p.job), ['b1', 'b5'], 'the two with the least unsaved work');
  assert.ok(planned.every((p) => p.reclaim === 'planned'));
  assert.match(planned[0]?.reason ?? '', /service 7 \(rate 1\.0\/s\): planned: checkpoint, then stop/);
  const urgent = reservation(4, ['r1', 'r2'], true);
  const now1 = reclaimVictims(effectiveQueues(queues, [urgent], running), [urgent], running, now);
  assert.deepEqual(now1.map((p) => [p.job, p.reclaim]), [['b1', 'immediate'], ['b5', 'immediate']]);
  // Runs already stopping count as gone: nothing more is reclaimed for them.
  const stopping = running.map((r) => (r.spec.id === 'b1' || r.spec.id === 'b5' ? { ...r, stopping: true } : r));
  assert.deepEqual(reclaimVictims(effectiveQueues(queues, [rise], stopping), [rise], stopping, now), []);
  // A non-preemptible borrower is never a victim.
  const pinned = running.map((r) => (r.spec.id === 'b1' ? { ...r, spec: { ...r.spec, preemptible: false } } : r));
  assert.deepEqual(reclaimVictims(effectiveQueues(queues, [rise], pinned), [rise], pinned, now).map((p) => p.job), ['b5', 'b4']);
});

test('borrowed runs are the newest of a queue above its quota; loans attribute the cohort\'s borrowing to its lenders', () => {
  const runs = [run(job('r1', 'serve'), 0, [0]), run(job('b1', 'train'), 0, [1], 10), run(job('b2', 'train', 2), 0, [2, 3], 20)];
  assert.deepEqual([...borrowedRuns(queues, runs)].sort(), ['b1', 'b2']);
  const mixed: QueueConfig[] = [{ name: 'serve', cohort: 'tidal', nominalQuota: { '*': 8 } }, { name: 'train', cohort: 'tidal', nominalQuota: { '*': 2 } }];
  assert.deepEqual([...borrowedRuns(mixed, runs)], ['b2'], 'b1 started first: it is within train\'s own 2');
  const loans = cohortLoans(queues, usageByQueue(runs));
  assert.deepEqual(loans.get('serve'), { lent: 3, borrowed: 0 });
  assert.deepEqual(loans.get('train'), { lent: 0, borrowed: 3 });
});

test('withLending: a borrower fills what the service lends, stops at what it keeps, and is reclaimed when the service rises', () => {
  const at = (now: number, s: Partial<SchedulerSnapshot>): SchedulerSnapshot => ({ now, nodes, running: [], pending: [], queues, ...s });
  const sched = withLending(tide({ rng: Rng.fromSeed(1), options: { quantumSeconds: 1e9 } }));
  const replicas = [run(job('r1', 'serve', 1, { priorityClass: 'high', preemptible: false }), 0, [0]), run(job('r2', 'serve', 1, { priorityClass: 'high', preemptible: false }), 0, [1])];
  const pendingTrain: PendingJob[] = Array.from({ length: 8 }, (_, i) => ({ spec: job(`t${i}`, 'train', 1, { submitTime: i }), progress: fresh }));
  // Keep 3 of 8: five of the six free GPUs are lent.
  const first = sched.cycle(at(0, { running: replicas, pending: pendingTrain, reservations: [reservation(3, ['r1', 'r2'])] }));
  assert.equal(first.binds.length, 5, `binds: ${first.binds.map((b) => b.job).join(',')}`);
  assert.deepEqual(first.preemptions, []);
  const lent = first.binds.map((b, i) => run(job(b.job, 'train', 1, { submitTime: Number(b.job.slice(1)) }), Math.floor((i + 2) / 4), [(i + 2) % 4], 0, 0));
  // The service rises to 6 now (urgent): three borrowers are stopped at once.
  const rise = sched.cycle(at(60, { running: [...replicas, ...lent], pending: pendingTrain.filter((p) => !first.binds.some((b) => b.job === p.spec.id)), reservations: [reservation(6, ['r1', 'r2'], true)] }));
  assert.equal(rise.preemptions.length, 3);
  assert.ok(rise.preemptions.every((p) => p.reclaim === 'immediate'));
  assert.equal(rise.binds.length, 0, 'nothing borrows what the service now keeps');
  for (const p of rise.preemptions) assert.equal(rise.pending.filter((r) => r.job === p.job).length, 1, 'one reason per evicted job');
  // Without reservations the inner scheduler runs alone.
  const plain = withLending(tide({ rng: Rng.fromSeed(1) })).cycle(at(0, { running: replicas, pending: pendingTrain }));
  assert.equal(plain.binds.length, 6);
});
