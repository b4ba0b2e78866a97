import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../rng.ts';
import { DEFAULT_PRICES, simulationPrices } from '../../energy/pricing.ts';
import { gangJob, gpuNodes, schedulable } from '../build.ts';
import type { JobSpec } from '../model.ts';
import { getJobScheduler } from '../policies/index.ts';
import type { PendingJob, SchedulerSnapshot } from '../scheduler.ts';
import { arraySource, simulate } from '../../../sim/simulator.ts';
import { withStages } from './stage.ts';
import { latestStart, timeshiftStage } from './timeshift.ts';

const H = 3600;
const prices = simulationPrices(DEFAULT_PRICES);
const fresh = { stepsDone: 0, attainedGpuSeconds: 0, runSeconds: 0, preemptions: 0 };
const withoutLimit = (j: JobSpec): JobSpec => {
  const copy: { -readonly [K in keyof JobSpec]?: JobSpec[K] } = { ...j };
  delete copy.timeLimitSeconds;
  return copy as JobSpec;
};
const job = (id: string, submitTime: number, extra: Partial<JobSpec> = {}): JobSpec => ({ ...gangJob({ id, gpus: 1, throughput: { V100: 1 }, totalSteps: H, submitTime, timeLimitSeconds: H }), ...extra });

test('the latest start leaves the declared remaining run and the slack before the deadline', () => {
  const p: PendingJob = { spec: job('a', 0, { deferrable: true, deadline: 30 * H, restartCostSeconds: 60 }), progress: { ...fresh, runSeconds: 1000 } };
  assert.equal(latestStart(p, H, 12 * H), 30 * H - (H - 1000) - 60 - H);
  assert.equal(latestStart({ spec: job('b', 5 * H, { deferrable: true }), progress: fresh }, H, 12 * H), 17 * H);
  assert.equal(latestStart({ spec: withoutLimit(job('c', 0, { deferrable: true, deadline: 30 * H })), progress: fresh }, H, 12 * H), undefined);
  assert.equal(latestStart({ spec: job('d', 0), progress: fresh }, H, 12 * H), undefined);
});

test('at the 10:00 peak a deferrable job waits for the 00:00 valley; others, and jobs that cannot wait, do not', () => {
  const now = 10 * H;
  const specs = [
    job('defer', now, { deferrable: true, deadline: now + 24 * H }),
    job('plain', now),
    job('tight', now, { deferrable: true, deadline: now + 2 * H }),
    withoutLimit(job('no-limit', now, { deferrable: true, deadline: now + 24 * H })),
  ].sort((a, b) => (a.id < b.id ? -1 : 1));
  const snapshot: SchedulerSnapshot = { now, nodes: schedulable(gpuNodes('V100', 1, 1)), running: [], pending: specs.map((spec) => ({ spec, progress: fresh })), queues: [] };
  const r = timeshiftStage({ prices }).before?.(snapshot);
  assert.ok(r);
  assert.deepEqual(r.snapshot.pending.map((p) => p.spec.id), ['no-limit', 'plain', 'tight']);
  assert.deepEqual(r.held?.map((h) => [h.job, h.code, h.estimatedStart]), [['defer', 'deferred-to-cheaper-hours', 24 * H]]);
  assert.equal(r.wakeAt, 24 * H);
  assert.match(r.held?.[0]?.message ?? '', /deferred to 00:00/);
  // In the valley itself nothing is cheaper: the same job runs at once.
  const night = timeshiftStage({ prices }).before?.({ ...snapshot, now: 25 * H });
  assert.equal(night?.held, undefined);
  assert.equal(night?.snapshot.pending.length, 4);
});

test('in the simulator the deferred job starts in the valley and meets its deadline; the other starts at once', () => {
  const fifo = (getJobScheduler('fifo') as NonNullable<ReturnType<typeof getJobScheduler>>)({ rng: Rng.fromSeed(1) });
  const sim = simulate({
    nodes: gpuNodes('V100', 2, 1),
    scheduler: withStages(fifo, [timeshiftStage({ prices })]),
    jobs: arraySource([job('d', 14 * H, { deferrable: true, deadline: 40 * H }), job('n', 14 * H)]),
  });
  const at = Object.fromEntries(sim.finishedJobs.map((f) => [f.spec.id, [f.progress.firstStartTime, f.finishTime]]));
  assert.deepEqual(at, { d: [24 * H, 25 * H], n: [14 * H, 15 * H] });
});
