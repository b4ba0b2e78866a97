import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../core/rng.ts';
import { gangJob, gpuNodes } from '../core/scheduling/build.ts';
import type { JobSpec } from '../core/scheduling/model.ts';
import { getJobScheduler } from '../core/scheduling/policies/index.ts';
import { unsavedSeconds } from '../core/scheduling/preemptionCost.ts';
import type { JobScheduler, SchedulePlan } from '../core/scheduling/scheduler.ts';
import { MetricsCollector } from './metrics.ts';
import { arraySource, simulate, type SimEvent } from './simulator.ts';

function fifo(): JobScheduler {
  const f = getJobScheduler('fifo');
  assert.ok(f);
  return f({ rng: Rng.fromSeed(1) });
}

/** FIFO, except that the one running job is preempted at each time in `at` (FIFO restarts it at the next wake-up, 10 s later). */
function preemptingAt(job: JobSpec, at: readonly number[], unsavedSeen: number[] = []): JobScheduler {
  const inner = fifo();
  return {
    name: 'preempt-at',
    cycle(s): SchedulePlan {
      const r = s.running[0];
      if (at.includes(s.now) && r) {
        unsavedSeen.push(unsavedSeconds(r.spec, r.progress, r, s.now));
        return { binds: [], preemptions: [{ job: job.id, reason: 'test' }], pending: [{ job: job.id, code: 'lower-priority', message: 'test' }], wakeAt: s.now + 10 };
      }
      const plan = inner.cycle(s);
      const next = at.find((t) => t > s.now);
      return next === undefined ? plan : { ...plan, wakeAt: next };
    },
  };
}

test('each preemption delays the finish by exactly the wait, the restart and the work since the last checkpoint', () => {
  const nodes = gpuNodes('V100', 1, 1);
  const job = gangJob({ id: 'x', gpus: 1, throughput: { V100: 1 }, totalSteps: 100, checkpointIntervalSeconds: 30, restartCostSeconds: 5 });
  const alone = simulate({ nodes, scheduler: fifo(), jobs: arraySource([job]) });
  assert.equal(alone.finishedJobs[0]?.finishTime, 100, 'unpreempted: 100 steps at 1 step/s');

  const events: SimEvent[] = [];
  const unsaved: number[] = [];
  const sim = simulate({ nodes, scheduler: preemptingAt(job, [50, 105], unsaved), jobs: arraySource([job]), onEvent: (e) => events.push(e) });
  const lost = events.flatMap((e) => (e.type === 'job:preempted' ? [e.lostSteps] : []));
  // t=50: checkpoint at 30, 20 steps lost. Restart at 60, work from 65 (restart 5 s); t=105: 40 s
  // of work since 65, checkpoint at 95 (30 s of work), 10 steps lost.
  assert.deepEqual(lost, [20, 10]);
  assert.deepEqual(unsaved, [20, 10], 'the core cost model sees the same unsaved work as the simulator loses');
  // 100 + waits (10 + 10) + restarts (5 + 5) + lost work (20 + 10).
  assert.equal(sim.finishedJobs[0]?.finishTime, 100 + 20 + 10 + 30);
  assert.equal(sim.finishedJobs[0]?.progress.preemptions, 2);
});

test('a job whose running time over all attempts reaches its limit ends timed out, counted apart', () => {
  const nodes = gpuNodes('V100', 1, 1);
  const job = gangJob({ id: 'x', gpus: 1, throughput: { V100: 1 }, totalSteps: 100, timeLimitSeconds: 50 });
  const events: SimEvent[] = [];
  const metrics = new MetricsCollector(1);
  // Runs 0–30, preempted, restarted at 40: 30 s used, 20 s left of its limit.
  const sim = simulate({
    nodes,
    scheduler: preemptingAt(job, [30]),
    jobs: arraySource([job]),
    onEvent: (e) => {
      events.push(e);
      metrics.onEvent(e);
    },
  });
  const end = events.find((e) => e.type === 'job:timedout');
  assert.ok(end && end.type === 'job:timedout');
  assert.equal(end.time, 60);
  assert.equal(events.some((e) => e.type === 'job:finished'), false);
  assert.equal(sim.timedOut, 1);
  assert.equal(sim.finishedJobs[0]?.timedOut, true);
  assert.equal(sim.finishedJobs[0]?.progress.runSeconds, 50);
  const summary = metrics.summary();
  assert.equal(summary.timedOut, 1);
  assert.equal(summary.jobs, 0, 'not among the finished jobs');
  assert.equal(metrics.ended, 1);
});

test("with limits marked as estimates the same job runs to its end", () => {
  const nodes = gpuNodes('V100', 1, 1);
  const job = gangJob({ id: 'x', gpus: 1, throughput: { V100: 1 }, totalSteps: 100, timeLimitSeconds: 50 });
  const sim = simulate({ nodes, scheduler: fifo(), jobs: arraySource([job]), timeLimits: 'estimate' });
  assert.equal(sim.timedOut, 0);
  assert.equal(sim.finishedJobs[0]?.finishTime, 100);
  assert.equal(sim.finishedJobs[0]?.timedOut, undefined);
});

test('preemptions per job are reported as p50, p99 and max over the measured jobs', () => {
  const nodes = gpuNodes('V100', 1, 1);
  const x = gangJob({ id: 'x', gpus: 1, throughput: { V100: 1 }, totalSteps: 100 });
  const metrics = new MetricsCollector(1);
  simulate({ nodes, scheduler: preemptingAt(x, [10, 30, 50]), jobs: arraySource([x]), onEvent: metrics.onEvent });
  const s = metrics.summary();
  assert.deepEqual(s.preemptionsPerJob, { p50: 3, p99: 3, max: 3 });
  assert.deepEqual(s.preemptionCounts, { '3': 1 });
});

test('a job that never checkpoints loses its whole attempt when stopped', () => {
  const nodes = gpuNodes('V100', 1, 1);
  const job = { ...gangJob({ id: 'x', gpus: 1, throughput: { V100: 1 }, totalSteps: 100, restartCostSeconds: 5 }), checkpointIntervalSeconds: Infinity };
  const unsaved: number[] = [];
  const sim = simulate({ nodes, scheduler: preemptingAt(job, [50], unsaved), jobs: arraySource([job]) });
  assert.deepEqual(unsaved, [50]);
  // Restarted at 60 from step 0: 5 s restart, then 100 steps.
  assert.equal(sim.finishedJobs[0]?.finishTime, 60 + 5 + 100);
});
