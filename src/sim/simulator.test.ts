import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../core/rng.ts';
import { gangJob, gpuNodes } from '../core/scheduling/build.ts';
import { getJobScheduler } from '../core/scheduling/policies/index.ts';
import type { JobScheduler, SchedulePlan } from '../core/scheduling/scheduler.ts';
import { arraySource, InvariantError, simulate, type SimEvent } from './simulator.ts';

function fifo(): JobScheduler {
  const f = getJobScheduler('fifo');
  assert.ok(f);
  return f({ rng: Rng.fromSeed(1) });
}

test('jobs run at their GPU model\'s speed, in FIFO order, and finish at the computed times', () => {
  const nodes = gpuNodes('V100', 1, 2);
  const jobs = [
    gangJob({ id: 'a', gpus: 2, throughput: { V100: 10 }, totalSteps: 1000, submitTime: 0 }),
    gangJob({ id: 'b', gpus: 1, throughput: { V100: 5 }, totalSteps: 500, submitTime: 10 }),
    gangJob({ id: 'c', gpus: 1, throughput: { V100: 5 }, totalSteps: 50, submitTime: 20 }),
  ];
  const sim = simulate({ nodes, scheduler: fifo(), jobs: arraySource(jobs) });
  const finish = Object.fromEntries(sim.finishedJobs.map((f) => [f.spec.id, f.finishTime]));
  assert.deepEqual(finish, { a: 100, c: 110, b: 200 });
  assert.equal(sim.allocated, 0);
  assert.equal(sim.pendingCount + sim.runningCount, 0);
});

test('a preempted job loses the work since its last checkpoint and pays its restart cost', () => {
  const nodes = gpuNodes('V100', 1, 1);
  const job = gangJob({ id: 'x', gpus: 1, throughput: { V100: 1 }, totalSteps: 100, checkpointIntervalSeconds: 30, restartCostSeconds: 5 });
  let calls = 0;
  const inner = fifo();
  // Preempts x once at t = 50 (woken by wakeAt), then lets FIFO restart it.
  const scheduler: JobScheduler = {
    name: 'preempt-once',
    cycle(s): SchedulePlan {
      calls++;
      if (s.now === 50 && s.running.length === 1) {
        return { binds: [], preemptions: [{ job: job.id, reason: 'test' }], pending: [{ job: job.id, code: 'lower-priority', message: 'test' }], wakeAt: 60 };
      }
      const plan = inner.cycle(s);
      return s.now === 0 ? { ...plan, wakeAt: 50 } : plan;
    },
  };
  const events: SimEvent[] = [];
  const sim = simulate({ nodes, scheduler, jobs: arraySource([job]), onEvent: (e) => events.push(e) });
  const pre = events.find((e) => e.type === 'job:preempted');
  assert.ok(pre && pre.type === 'job:preempted');
  assert.equal(pre.lostSteps, 20, 'checkpoint at 30 s, preempted at 50 s');
  // Restarted at 60 from step 30: 5 s restart cost, then 70 steps at 1/s.
  assert.equal(sim.finishedJobs[0]?.finishTime, 60 + 5 + 70);
  assert.equal(sim.finishedJobs[0]?.progress.preemptions, 1);
  assert.ok(calls >= 3);
});

test('a plan that over-allocates a GPU fails the run with an invariant error', () => {
  const nodes = gpuNodes('V100', 1, 1);
  const jobs = [gangJob({ id: 'a', gpus: 1, throughput: { V100: 1 }, totalSteps: 10 }), gangJob({ id: 'b', gpus: 1, throughput: { V100: 1 }, totalSteps: 10 })];
  const greedy: JobScheduler = {
    name: 'greedy',
    cycle: (s) => ({
      binds: s.pending.map((p, i) => ({ job: p.spec.id, model: 'V100', bindings: [{ group: 'worker', index: 0, nodeId: nodes[0]!.id, placement: { node: 0, gpus: [0], gpuMilli: 1000, cpuMilli: 1000 + i, memoryMib: 1024 } }] })),
      preemptions: [],
      pending: [],
    }),
  };
  assert.throws(() => simulate({ nodes, scheduler: greedy, jobs: arraySource(jobs) }), (e: unknown) => e instanceof InvariantError && /GPU 0 cannot take this task/.test(e.message));
});

test('a node failure stops its jobs, which restart elsewhere', () => {
  const nodes = [...gpuNodes('V100', 2, 1)];
  const job = gangJob({ id: 'x', gpus: 1, throughput: { V100: 1 }, totalSteps: 100 });
  const events: SimEvent[] = [];
  const sim = simulate({ nodes, scheduler: fifo(), jobs: arraySource([job]), outages: [{ node: nodes[0]!.id, at: 40, repairedAt: 1000 }], onEvent: (e) => events.push(e) });
  assert.deepEqual(events.filter((e) => e.type === 'job:started').map((e) => e.type === 'job:started' && e.time), [0, 40]);
  assert.equal(sim.finishedJobs[0]?.finishTime, 100, 'continuous checkpointing: nothing lost');
});

test('tenants see their decayed GPU, CPU and memory usage (for dominant resource fairness)', () => {
  const nodes = gpuNodes('V100', 1, 2);
  // 'a' holds 2 GPUs (2 tasks × 1 core, 1 GiB) for 100 s; with a 7-day half-life decay is tiny.
  const jobs = [gangJob({ id: 'a', gpus: 2, throughput: { V100: 1 }, totalSteps: 100, tenant: 'a' }), gangJob({ id: 'b', gpus: 1, throughput: { V100: 1 }, totalSteps: 10, submitTime: 200, tenant: 'b' })];
  const inner = fifo();
  let seen: readonly { name: string; gpuSeconds: number; cpuSeconds?: number; memoryMibSeconds?: number }[] = [];
  const scheduler: JobScheduler = { name: 'spy', cycle: (s) => ((seen = s.tenantUsage ?? []), inner.cycle(s)) };
  simulate({ nodes, scheduler, jobs: arraySource(jobs) });
  const a = seen.find((u) => u.name === 'a');
  assert.ok(a, 'tenant a has a usage record at t = 200');
  assert.ok(Math.abs(a.gpuSeconds - 200) < 0.1, `gpuSeconds ${a.gpuSeconds}`);
  assert.ok(Math.abs((a.cpuSeconds ?? 0) - 200) < 0.1, `cpuSeconds ${a.cpuSeconds}`);
  assert.ok(Math.abs((a.memoryMibSeconds ?? 0) - 2 * 1024 * 100) < 200, `memoryMibSeconds ${a.memoryMibSeconds}`);
});

test('an elastic job starts at its minimum when GPUs are short and grows to full size when they free up', () => {
  const nodes = gpuNodes('V100', 1, 4);
  const blocker = gangJob({ id: 'blocker', gpus: 2, throughput: { V100: 1 }, totalSteps: 1000, preemptible: false });
  const base = gangJob({ id: 'elastic', gpus: 4, throughput: { V100: 4 }, totalSteps: 8000, submitTime: 10 });
  const elastic = { ...base, groups: base.groups.map((g) => ({ ...g, minReplicas: 2 })) };
  const tide = getJobScheduler('tide');
  assert.ok(tide);
  const sizes: number[] = [];
  const sim = simulate({ nodes, scheduler: tide({ rng: Rng.fromSeed(1) }), jobs: arraySource([blocker, elastic]), onEvent: (e) => void (e.type === 'job:started' && e.job.id === 'elastic' && sizes.push(e.gpus)) });
  assert.deepEqual(sizes, [2, 4], 'starts with 2 GPUs, regrows to 4');
  const finish = sim.finishedJobs.find((f) => f.spec.id === 'elastic')?.finishTime ?? NaN;
  // 2 steps/s from t = 10; the blocker ends at 1000; tide re-plans every 360 s, so at 1080 the
  // job grows (restart cost 0) and runs at 4 steps/s: 1080 + (8000 − 2·1070) / 4 = 2545.
  assert.ok(Math.abs(finish - 2545) < 1e-6, `finished at ${finish}`);
  assert.equal(sim.allocated, 0);
});

test('a run that begins and ends between two snapshots is in neither list of the next running delta', () => {
  const nodes = gpuNodes('V100', 1, 1);
  const job = gangJob({ id: 'quick', gpus: 1, throughput: { V100: 1 }, totalSteps: 10 });
  const inner = fifo();
  const deltas: { running: number; started: number; stopped: number }[] = [];
  const scheduler: JobScheduler = {
    name: 'recording',
    cycle(s) {
      deltas.push({ running: s.running.length, started: s.runningDelta?.started.length ?? -1, stopped: s.runningDelta?.stopped.length ?? -1 });
      return inner.cycle(s);
    },
  };
  // Started by the cycle at 0 (whose snapshot came before it), finished at 10 before the next snapshot.
  simulate({ nodes, scheduler, jobs: arraySource([job]) });
  assert.deepEqual(deltas, [
    { running: 0, started: 0, stopped: 0 },
    { running: 0, started: 0, stopped: 0 },
  ]);
});
