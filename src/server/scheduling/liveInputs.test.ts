/**
 * The live core gets what the simulator gives it: speeds per GPU model, declared limits and job
 * types, finished jobs (once each), tenants with weights and decayed usage, recent task shapes,
 * progress and checkpoints, per-model quotas in cohorts, and the same PendingJob objects while
 * a job is unchanged. Each input is read off the core's snapshot as the adapter builds it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseJobSpec } from '../../api/spec.ts';
import type { Job } from '../../api/types.ts';
import { openStore, type SqlStore } from '../../store/sqlStore.ts';
import type { Store, StoreSnapshot } from '../../store/store.ts';
import { node, runJob } from '../../store/liveTesting.ts';
import { CoreSchedulerAdapter, coreQueues } from './coreAdapter.ts';
import { DEFAULT_GPU_SPEEDS, gpuSpeed, speedIn } from './gpuSpeeds.ts';
import { decayedUsage } from './liveInputs.ts';

const H = 3_600_000;

async function cluster(): Promise<Store> {
  const store = await openStore('memory:');
  await store.registerNode(node('n1', 'A100', 4), 0);
  await store.registerNode(node('n2', 'H100', 4), 0);
  return store;
}

async function submit(store: Store, tenant: string, over: Record<string, unknown>, at = 1000): Promise<Job> {
  const r = parseJobSpec({ name: 'train', tasks: [{ gpus: 1, command: 'x' }], ...over });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  const job = (await store.submit(tenant, r.spec, null, at)).jobs[0];
  assert.ok(job);
  return job;
}

test('the built-in speeds cover the common models, match names as nvidia-smi gives them, and A10 is not A100', () => {
  for (const m of ['H200', 'H100', 'A100', 'A10', 'L40S', 'V100', 'T4', 'P100']) assert.ok((DEFAULT_GPU_SPEEDS[m] ?? 0) > 0, m);
  assert.equal(DEFAULT_GPU_SPEEDS['H100'], 1);
  assert.equal(speedIn(DEFAULT_GPU_SPEEDS, 'NVIDIA H100 80GB HBM3'), 1);
  assert.equal(speedIn(DEFAULT_GPU_SPEEDS, 'NVIDIA A100-SXM4-80GB'), DEFAULT_GPU_SPEEDS['A100']);
  assert.equal(speedIn(DEFAULT_GPU_SPEEDS, 'NVIDIA A10'), DEFAULT_GPU_SPEEDS['A10']);
  assert.equal(speedIn(DEFAULT_GPU_SPEEDS, 'MI300X'), undefined);
  assert.equal(gpuSpeed('MI300X', undefined), 1, 'a model nobody names gets 1');
  assert.equal(gpuSpeed('A100', { A100: 0.6 }), 0.6, 'the cluster table over the built-in one');
  assert.equal(gpuSpeed('A100', { A100: 0.6 }, { A100: 0.9 }), 0.9, "the job's own over both");
});

test('speeds, declared limits and job types reach the core; a model of speed 0 cannot run the job', async () => {
  const store = await cluster();
  const plain = await submit(store, 't', { name: 'plain' });
  const limited = await submit(store, 't', { name: 'limited', timeLimit: '2h', jobType: 'bert', gpuSpeeds: { A100: 0 } });
  const adapter = new CoreSchedulerAdapter('tide', 'tide', {}, undefined, 42, { gpuSpeeds: { A100: 0.6 } });
  const snap = adapter.translate(await store.snapshot(), 10_000);
  const spec = (id: string) => snap.pending.find((p) => p.spec.id === id)?.spec;
  assert.deepEqual(spec(plain.id)?.throughput, { A100: 0.6, H100: 1 });
  assert.equal(spec(plain.id)?.jobType, 'plain', 'the name when no jobType');
  assert.equal(spec(plain.id)?.timeLimitSeconds, undefined);
  assert.equal(spec(plain.id)?.totalSteps, Infinity, 'unknown work is not invented');
  assert.deepEqual(spec(limited.id)?.throughput, { A100: 0, H100: 1 });
  assert.equal(spec(limited.id)?.timeLimitSeconds, 7200);
  assert.equal(spec(limited.id)?.jobType, 'bert');
  // An array's elements are of its job type (the array's name, or its own jobType): siblings teach each other's limits.
  const sweep = parseJobSpec({ name: 'sweep', array: 3, tasks: [{ gpus: 1, command: 'x' }] });
  const typed = parseJobSpec({ name: 'typed', array: 2, jobType: 'resnet', tasks: [{ gpus: 1, command: 'x' }] });
  if (!sweep.ok || !typed.ok) throw new Error('bad spec');
  const elements = [...(await store.submit('t', sweep.spec, null, 1000)).jobs, ...(await store.submit('t', typed.spec, null, 1000)).jobs];
  const arrays = adapter.translate(await store.snapshot(), 10_000).pending;
  // Each array's waiting elements are one entry of their count.
  assert.deepEqual(elements.map((e) => [e.name, arrays.find((p) => p.spec.id === e.id)?.spec.jobType, arrays.find((p) => p.spec.id === e.id)?.count]), [['sweep-[0-2]', 'sweep', 3], ['typed-[0-1]', 'resnet', 2]]);
  for (const e of elements) await store.cancel(e.id, 't', 1100);
  // tide puts the job on the H100 node (the faster), and never the speed-0 one on A100.
  const plan = adapter.plan(await store.snapshot(), 10_000);
  const where = new Map(plan.binds.map((b) => [b.jobId, b.tasks[0]?.node]));
  assert.equal(where.get(limited.id), 'n2');
  assert.equal(where.get(plain.id), 'n2', 'the faster model while it has GPUs free');
  // fifo takes models in the cluster's order: the plain job lands on the A100 node.
  const fifo = new CoreSchedulerAdapter('fifo', 'bestfit', {}, undefined, 42, { gpuSpeeds: { A100: 0.6 } }).plan(await store.snapshot(), 10_000);
  assert.equal(fifo.binds.find((b) => b.jobId === plain.id)?.tasks[0]?.node, 'n1');
  await store.close();
});

test('a finished job reaches the core once, with its work as run time × speed where it ran', async () => {
  const store = await cluster();
  await runJob(store, 'team-a', { name: 'done', timeLimit: 3600, jobType: 'bert' }, 2 * H, 2 * H + 600_000);
  const adapter = new CoreSchedulerAdapter('tide', 'tide', {}, undefined, 42, { gpuSpeeds: { A100: 0.5 } });
  await adapter.refresh(store, 3 * H);
  const first = adapter.translate(await store.snapshot(), 3 * H);
  assert.equal(first.finished?.length, 1);
  const f = first.finished?.[0];
  assert.equal(f?.model, 'A100');
  assert.equal(f?.spec.timeLimitSeconds, 3600);
  assert.equal(f?.spec.jobType, 'bert');
  // 600 s on an A100 of speed 0.5: 300 s of work at speed 1 (the core's history divides by the best speed, 1).
  assert.equal(f?.spec.totalSteps, 300);
  assert.equal(f?.progress.runSeconds, 600);
  await adapter.refresh(store, 3 * H + 1000);
  assert.deepEqual(adapter.translate(await store.snapshot(), 3 * H + 1000).finished, [], 'told once');
  await store.close();
});

test('finished jobs that pile up between cycles are read in pages of 2,000, every one told to the core once', async () => {
  const store = await cluster();
  await runJob(store, 'team-a', { name: 'first' }, 2 * H, 2 * H + 1000);
  const adapter = new CoreSchedulerAdapter('tide', 'tide', {}, undefined, 42, {});
  await adapter.refresh(store, 3 * H);
  assert.equal(adapter.translate(await store.snapshot(), 3 * H).finished?.length, 1);
  // 2,600 short CPU-only jobs run and end between two cycles (jobs of their own: an array's
  // elements bound to one node together would be one job).
  const one = parseJobSpec({ name: 'short', tasks: [{ gpus: 0, cpu: '10m', command: 'x' }] });
  if (!one.ok) throw new Error(JSON.stringify(one.errors));
  const jobs = await Promise.all(Array.from({ length: 2600 }, async () => (await store.submit('team-a', one.spec, null, 3 * H)).jobs[0]?.id as string));
  assert.ok(await store.applyPlan({ binds: jobs.map((jobId) => ({ jobId, attempt: 0, tasks: [{ index: 0, node: 'n2', gpus: [], gpuMilli: 0 }] })), preemptions: [], pending: [] }, 3 * H + 1));
  const runs = ((await store.heartbeat('n2', [], [], 3 * H + 2)) ?? []).map((d) => d.runId);
  assert.equal(runs.length, 2600);
  await store.heartbeat('n2', [], runs.map((runId) => ({ runId, state: 'exited' as const, pid: 1, exitCode: 0, startedAt: 3 * H + 3 })), 3 * H + 4);
  const pages = (): number => [...(store as SqlStore).sqlStats.bySql].filter(([sql]) => sql.includes('ORDER BY finished_at, id LIMIT')).reduce((n, [, c]) => n + c.statements, 0);
  const before = pages();
  await adapter.refresh(store, 4 * H);
  assert.equal(adapter.translate(await store.snapshot(), 4 * H).finished?.length, 2600);
  assert.equal(pages() - before, 2, 'two pages, 2,000 and 600');
  await adapter.refresh(store, 4 * H + 1000);
  assert.deepEqual(adapter.translate(await store.snapshot(), 4 * H + 1000).finished, [], 'told once');
  await store.close();
});

test("tenants' weights and decayed usage reach the core: ended tasks from the store, running ones from the snapshot", async () => {
  const store = await cluster();
  await runJob(store, 'team-a', { name: 'done' }, 2 * H, 2 * H + 1_800_000); // 2 GPUs for half an hour, ending in hour 2
  const adapter = new CoreSchedulerAdapter('tide', 'tide', {}, undefined, 42, { tenants: [{ name: 'team-a', weight: 2 }, { name: 'team-b' }], usageHalfLifeHours: 1 });
  const now = 2 * H + H / 2 + H; // an hour after the middle of the hour it ended in
  await adapter.refresh(store, now);
  const snap = adapter.translate(await store.snapshot(), now);
  assert.deepEqual(snap.tenants, [{ name: 'team-a', weight: 2 }, { name: 'team-b', weight: 1 }]);
  const a = snap.tenantUsage?.find((u) => u.name === 'team-a');
  // 3,600 GPU-seconds, one half-life ago.
  assert.ok(a && Math.abs(a.gpuSeconds - 1800) < 1e-6, JSON.stringify(snap.tenantUsage));
  // A running task: 1 GPU since `now − 1 h` at a half-life of 1 h is ∫ 2^(−t/h) dt over one half-life = h / (2 ln 2).
  const active = [{ jobId: '9', index: 0, node: 'n1', gpus: [0], gpuMilli: 1000, cpuMilli: 0, memoryMib: 0, state: 'running' as const, startedAt: now - H }];
  const usage = decayedUsage([], active, () => 'team-b', now, 3600);
  assert.ok(Math.abs((usage[0]?.gpuSeconds ?? 0) - 3600 / (2 * Math.LN2)) < 1e-6, JSON.stringify(usage));
  await store.close();
});

test("recent submissions' task shapes reach placement as one array, the same while they do not change", async () => {
  const store = await cluster();
  await submit(store, 't', { name: 'a', tasks: [{ replicas: 3, gpus: 2, cpu: 4, command: 'x' }] });
  await submit(store, 't', { name: 'b', tasks: [{ gpus: 1, gpuModels: ['H100'], command: 'x' }] });
  const adapter = new CoreSchedulerAdapter('tide', 'tide');
  await adapter.refresh(store, 1000, true);
  const one = adapter.translate(await store.snapshot(), 1000).targetTasks;
  assert.equal(one?.length, 4, 'one entry per task');
  assert.deepEqual(one?.[0], { cpuMilli: 1000, memoryMib: 1024, gpuCount: 1, gpuMilli: 1000, allowedModels: ['H100'] });
  assert.equal(one?.[1]?.cpuMilli, 4000);
  await adapter.refresh(store, 2000, true);
  assert.equal(adapter.translate(await store.snapshot(), 2000).targetTasks, one, 'the same array');
  await submit(store, 't', { name: 'c', tasks: [{ gpus: 4, command: 'x' }] });
  await adapter.refresh(store, 3000, true);
  assert.notEqual(adapter.translate(await store.snapshot(), 3000).targetTasks, one, 'a new shape: a new array');
  // Placement runs with the shapes as its target workload (tide and fgd read it).
  for (const placement of ['tide', 'fgd']) {
    const withShapes = new CoreSchedulerAdapter('tide', placement);
    await withShapes.refresh(store, 3000, true);
    const plan = withShapes.plan(await store.snapshot(), 3000);
    assert.equal(plan.binds.length + plan.pending.length, 3, `${placement}: every job bound or explained`);
  }
  await store.close();
});

test('an unchanged pending job is the same PendingJob object cycle after cycle; a new attempt or progress makes a new one', async () => {
  const store = await cluster();
  const job = await submit(store, 't', { name: 'waits', tasks: [{ gpus: 8, command: 'x' }] }); // never fits: stays pending
  const other = await submit(store, 't', { name: 'other', tasks: [{ gpus: 8, command: 'x' }] });
  const adapter = new CoreSchedulerAdapter('tide', 'tide');
  const s1 = await store.snapshot();
  const first = adapter.translate(s1, 1000).pending;
  const second = adapter.translate(await store.snapshot(), 2000).pending;
  assert.equal(first.length, 2);
  assert.equal(second[0], first[0], 'same object');
  assert.equal(second[1], first[1], 'same object');
  const bumped: StoreSnapshot = { ...s1, openJobs: s1.openJobs.map((j) => (j.id === job.id ? { ...j, attempt: 1, runSeconds: 100 } : j)) };
  const third = adapter.translate(bumped, 3000).pending;
  const mine = third.find((p) => p.spec.id === job.id);
  assert.notEqual(mine, first.find((p) => p.spec.id === job.id), 'a new attempt: a new object');
  assert.equal(mine?.progress.preemptions, 1);
  assert.equal(mine?.progress.runSeconds, 100);
  // 100 s run, best speed 1, nothing reported: all of it counts as done.
  assert.equal(mine?.progress.stepsDone, 100);
  assert.equal(third.find((p) => p.spec.id === other.id), first.find((p) => p.spec.id === other.id), 'the other is untouched');
  const reported: StoreSnapshot = { ...bumped, openJobs: bumped.openJobs.map((j) => (j.id === job.id ? { ...j, progress: { step: 100, totalSteps: 1000, checkpointStep: 40, checkpointAt: 2500, at: 2600 } } : j)) };
  const fourth = adapter.translate(reported, 4000).pending.find((p) => p.spec.id === job.id);
  assert.notEqual(fourth, mine);
  assert.equal(fourth?.spec.totalSteps, 1000, "the job's own total");
  assert.equal(fourth?.progress.stepsDone, 40, 'only the checkpointed share of its run counts as done');
  await store.close();
});

test("a running job's start is its attempt's, its last checkpoint the one it reported (else the start)", async () => {
  const store = await cluster();
  const job = await submit(store, 't', { name: 'runs' });
  assert.ok(await store.applyPlan({ binds: [{ jobId: job.id, attempt: 0, tasks: [{ index: 0, node: 'n2', gpus: [0], gpuMilli: 1000 }] }], preemptions: [], pending: [] }, 2000));
  const runId = ((await store.heartbeat('n2', [], [], 3000)) ?? [])[0]?.runId ?? '';
  await store.heartbeat('n2', [], [{ runId, state: 'running', pid: 1, exitCode: null }], 5000);
  const adapter = new CoreSchedulerAdapter('tide', 'tide');
  const s = await store.snapshot();
  const r1 = adapter.translate(s, 10_000).running[0];
  assert.equal(r1?.startTime, 5);
  assert.equal(r1?.lastCheckpointTime, 5);
  assert.equal(r1?.model, 'H100');
  const usage = adapter.translate(s, 10_000).tenantUsage?.find((u) => u.name === 't')?.gpuSeconds ?? 0;
  assert.ok(Math.abs(usage - 5) < 0.01, `its tenant has used about 5 GPU-seconds, got ${usage}`);
  assert.equal(adapter.translate(s, 11_000).running[0], r1, 'the same object while nothing changed');
  const withCheckpoint: StoreSnapshot = { ...s, openJobs: s.openJobs.map((j) => ({ ...j, progress: { step: 50, totalSteps: null, checkpointStep: 40, checkpointAt: 8000, at: 9000 } })) };
  const r2 = adapter.translate(withCheckpoint, 12_000).running[0];
  assert.equal(r2?.lastCheckpointTime, 8);
  assert.equal(r2?.startTime, 5);
  await store.close();
});

test('queues become the core\'s ClusterQueues: cohorts, per-model nominal quotas, borrowing and lending limits', () => {
  assert.deepEqual(coreQueues([{ name: 'a', gpuQuota: null, borrowingLimit: null }]), [], 'no quota anywhere: none enforced');
  assert.deepEqual(
    coreQueues([
      { name: 'a', gpuQuota: 12, borrowingLimit: null, cohort: 'lab', nominalQuota: { H100: 8, A100: 4 }, borrowingLimits: { H100: 2 }, lendingLimits: { '*': 3 } },
      { name: 'b', gpuQuota: 4, borrowingLimit: 1 },
      { name: 'c', gpuQuota: null, borrowingLimit: null },
    ]),
    [
      { name: 'a', cohort: 'lab', nominalQuota: { H100: 8, A100: 4 }, borrowingLimit: { H100: 2 }, lendingLimit: { '*': 3 } },
      { name: 'b', cohort: 'cluster', nominalQuota: { '*': 4 }, borrowingLimit: { '*': 1 } },
      { name: 'c', cohort: 'cluster', nominalQuota: { '*': 1_000_000 }, lendingLimit: { '*': 0 } },
    ],
  );
});

test('an admitted job whose tasks have not started keeps one RunningJob until they do; a new attempt starts from its own progress', async () => {
  const store = await cluster();
  const job = await submit(store, 't', { name: 'admitted' });
  assert.ok(await store.applyPlan({ binds: [{ jobId: job.id, attempt: 0, tasks: [{ index: 0, node: 'n2', gpus: [0], gpuMilli: 1000 }] }], preemptions: [], pending: [] }, 2000));
  const adapter = new CoreSchedulerAdapter('tide', 'tide');
  const s = await store.snapshot();
  const first = adapter.translate(s, 3000).running[0];
  assert.equal(first?.startTime, 3, 'when first seen admitted');
  assert.equal(adapter.translate(s, 4000).running[0], first, 'the same object a cycle later');
  const again: StoreSnapshot = { ...s, openJobs: s.openJobs.map((j) => ({ ...j, attempt: 1, runSeconds: 50 })) };
  const second = adapter.translate(again, 5000).running[0];
  assert.notEqual(second, first);
  assert.equal(second?.progress.runSeconds, 50, "the new attempt's own progress, not the old run's");
  assert.equal(second?.progress.preemptions, 1);
  await store.close();
});
