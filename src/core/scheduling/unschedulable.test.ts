/**
 * Scenario: a job that no schedulable node could run even empty never holds back its queue,
 * under fifo (the live default) and tide; its reason names the resource.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nodeId, type NodeSpec } from '../model.ts';
import { Rng } from '../rng.ts';
import { jobId, type JobProgress, type JobSpec, type TaskGroupSpec } from './model.ts';
import { getJobScheduler } from './policies/index.ts';
import { PENDING_REASONS } from './reasons.ts';
import type { NodeState, PendingJob, RunningJob, SchedulePlan, SchedulerSnapshot } from './scheduler.ts';

const fresh: JobProgress = { stepsDone: 0, attainedGpuSeconds: 0, runSeconds: 0, preemptions: 0 };
const node = (id: string, gpus: number): NodeSpec => ({ id: nodeId(id), cpuMilli: 64_000, memoryMib: 512 * 1024, gpus: Array.from({ length: gpus }, () => 'H100') });
/** One 8-GPU node, and a 16-GPU node that is drained unless `bigUp`. */
const cluster = (bigUp = false): NodeState[] => [
  { spec: node('n8', 8), schedulable: true },
  { spec: node('n16', 16), schedulable: bigUp },
];

function job(id: string, submitTime: number, task: Partial<TaskGroupSpec['task']>, extra: Partial<JobSpec> = {}): JobSpec {
  return {
    id: jobId(id),
    tenant: 'a',
    queue: 'default',
    priorityClass: 'normal',
    priority: 100,
    submitTime,
    groups: [{ name: 'worker', replicas: 1, task: { cpuMilli: 1000, memoryMib: 1024, gpuCount: 1, gpuMilli: 1000, allowedModels: [], ...task } }],
    totalSteps: 100,
    throughput: { H100: 1 },
    preemptible: true,
    timeLimitSeconds: 3600,
    ...extra,
  };
}

/** Submitted in this order into one queue: four jobs no schedulable node can run, then a 1-GPU job. */
const unrunnable = [
  // Short: tide ranks it first, so without the check its pass would hand it all 8 free GPUs.
  job('cpu', 1, { gpuCount: 8, cpuMilli: 10_000_000 }, { timeLimitSeconds: 60 }),
  job('nine', 2, { gpuCount: 9 }),
  job('mem', 3, { memoryMib: 600 * 1024 }),
  job('b200', 4, { allowedModels: ['B200'] }, { throughput: {} }),
];
const small = job('small', 5, {});
const pending = (jobs: readonly JobSpec[]): PendingJob[] => [...jobs].sort((a, b) => (a.id < b.id ? -1 : 1)).map((spec) => ({ spec, progress: fresh }));
const snap = (s: Partial<SchedulerSnapshot>): SchedulerSnapshot => ({ now: 100, nodes: cluster(), running: [], pending: [], queues: [], ...s });
const reasons = (plan: SchedulePlan) => new Map(plan.pending.map((r) => [r.job as string, r]));

function scheduler(name: string) {
  const f = getJobScheduler(name);
  assert.ok(f);
  return f({ rng: Rng.fromSeed(1) });
}

for (const name of ['fifo', 'tide']) {
  test(`${name}: jobs no schedulable node could run wait as unschedulable, naming the resource, and the 1-GPU job behind them starts`, () => {
    const plan = scheduler(name).cycle(snap({ pending: pending([...unrunnable, small]) }));
    assert.deepEqual(plan.binds.map((b) => b.job), ['small']);
    const r = reasons(plan);
    const expected: Record<string, RegExp> = {
      cpu: /^10000 cores, the largest schedulable node has 64$/,
      nine: /^9 GPUs on one node, but the largest schedulable node has 8 \(H100\)$/,
      mem: /^600Gi of memory, the largest schedulable node has 512Gi$/,
      b200: /no schedulable node has a B200 GPU/,
    };
    for (const [id, message] of Object.entries(expected)) {
      assert.equal(r.get(id)?.code, 'unschedulable', id);
      assert.match(r.get(id)?.message ?? '', message);
      assert.equal(r.get(id)?.estimatedStart, undefined, `${id}: no estimated start for a job that cannot start`);
    }
  });

  test(`${name}: a job that fits only a drained node does not hold back its queue, and starts when the node is back`, () => {
    const s = scheduler(name);
    const jobs = pending([job('nine', 1, { gpuCount: 9 }), small]);
    const first = s.cycle(snap({ pending: jobs }));
    assert.deepEqual(first.binds.map((b) => b.job), ['small']);
    assert.equal(reasons(first).get('nine')?.code, 'unschedulable');
    const back = s.cycle(snap({ now: 500, nodes: cluster(true), pending: jobs.filter((p) => p.spec.id === 'nine') }));
    assert.deepEqual(back.binds.map((b) => b.job), ['nine']);
  });

  test(`${name}: with no node at all, a job waits with "no node registered yet"`, () => {
    const plan = scheduler(name).cycle(snap({ nodes: [], pending: pending([small]) }));
    assert.deepEqual(plan.binds, []);
    assert.deepEqual([reasons(plan).get('small')?.code, reasons(plan).get('small')?.message], ['unschedulable', 'no node registered yet']);
  });
}

/** A running job on n8 holding `gpus` GPUs, `cores` cores and `memGi` of memory. */
function holder(gpus: number, cores: number, memGi = 1): RunningJob {
  const spec = job('held', 0, { gpuCount: gpus, cpuMilli: cores * 1000, memoryMib: memGi * 1024 });
  return {
    spec,
    progress: fresh,
    model: 'H100',
    startTime: 0,
    lastCheckpointTime: 0,
    gpus,
    bindings: [{ group: 'worker', index: 0, nodeId: nodeId('n8'), placement: { node: 0, gpus: Array.from({ length: gpus }, (_, i) => i), gpuMilli: 1000, cpuMilli: cores * 1000, memoryMib: memGi * 1024 } }],
  };
}

test('fifo: free GPUs without the CPU or memory to use them is a CPU or memory shortage, not fragmentation', () => {
  const plan = scheduler('fifo').cycle(snap({ running: [holder(1, 60)], pending: pending([job('c', 1, { cpuMilli: 8000 })]) }));
  const r = reasons(plan).get('c');
  assert.equal(r?.code, 'waiting-for-resources');
  assert.match(r?.message ?? '', /not enough free CPU on the nodes with free H100 GPUs/);
  const mem = scheduler('fifo').cycle(snap({ running: [holder(1, 1, 500)], pending: pending([job('m', 1, { memoryMib: 20 * 1024 })]) }));
  assert.equal(reasons(mem).get('m')?.code, 'waiting-for-resources');
  assert.match(reasons(mem).get('m')?.message ?? '', /not enough free memory on the nodes with free H100 GPUs/);
});

test('fifo: a job waiting behind another names it in blockedBy (the server shows the id only to its owner)', () => {
  const plan = scheduler('fifo').cycle(snap({ running: [holder(4, 4)], pending: pending([job('head', 1, { gpuCount: 8 }), job('next', 2, {}, { tenant: 'b' })]) }));
  const r = reasons(plan);
  assert.equal(r.get('head')?.code, 'waiting-for-resources');
  assert.equal(r.get('next')?.code, 'lower-priority');
  assert.equal(r.get('next')?.blockedBy, 'head');
  for (const p of plan.pending) assert.ok(Object.hasOwn(PENDING_REASONS, p.code), `${p.code} is a documented code`);
});

test('tide: a starving job no schedulable node could run takes no boost, so the next starving job still reserves its GPUs', () => {
  const now = 30 * 3600;
  const nine = job('nine', 0, { gpuCount: 9 });
  const eight = job('eight', 10, { gpuCount: 8 });
  // Arrived just now, with a limit that ends after the running job: it may not take the GPUs 'eight' waits for.
  const late = job('late', now - 10, {}, { timeLimitSeconds: 100_000 });
  const running: RunningJob = { ...holder(1, 1), spec: { ...holder(1, 1).spec, preemptible: false, timeLimitSeconds: 2 * 3600 }, startTime: now - 600, lastCheckpointTime: now - 600 };
  const plan = scheduler('tide').cycle(snap({ now, running: [running], pending: pending([nine, eight, late]) }));
  assert.deepEqual(plan.binds.map((b) => b.job), []);
  const r = reasons(plan);
  assert.equal(r.get('nine')?.code, 'unschedulable');
  assert.equal(r.get('late')?.code, 'reserved-for-another-job');
  assert.equal(r.get('late')?.blockedBy, 'eight');
});
