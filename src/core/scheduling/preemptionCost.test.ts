import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gangJob } from './build.ts';
import { mayPreempt, NO_PREEMPTION_LIMITS, preemptionBudget, preemptionCostSeconds, preemptionPays, preemptionSettings, unsavedSeconds } from './preemptionCost.ts';

const job = gangJob({ id: 'j', gpus: 1, throughput: { V100: 1 }, totalSteps: 1e6, checkpointIntervalSeconds: 1800, restartCostSeconds: 60 });
const first = { preemptions: 0 };
const again = { preemptions: 1 };

test('unsaved work counts from the last checkpoint, checkpoints from when work begins (after the restart)', () => {
  const run = { startTime: 1000, lastCheckpointTime: 1000 };
  assert.equal(unsavedSeconds(job, first, run, 1000 + 100), 100);
  assert.equal(unsavedSeconds(job, first, run, 1000 + 1800 + 100), 100, 'checkpoint at 1800 s of work');
  // A restart: 60 s load, work from 1060, first checkpoint at 2860.
  assert.equal(unsavedSeconds(job, again, run, 1030), 0, 'still loading its checkpoint: nothing new to lose');
  assert.equal(unsavedSeconds(job, again, run, 2860 + 5), 5);
  assert.equal(unsavedSeconds(job, again, run, 2859), 1799);
  // A later checkpoint the caller knows of (a progress report) counts too.
  assert.equal(unsavedSeconds(job, first, { startTime: 1000, lastCheckpointTime: 1500 }, 1600), 100);
});

test('without a checkpoint interval progress is saved continuously; with an infinite one only reported checkpoints count', () => {
  const continuous = gangJob({ id: 'c', gpus: 1, throughput: { V100: 1 }, totalSteps: 1e6 });
  assert.equal(unsavedSeconds(continuous, first, { startTime: 0, lastCheckpointTime: 0 }, 5000), 0);
  const never = { ...continuous, checkpointIntervalSeconds: Infinity };
  assert.equal(unsavedSeconds(never, first, { startTime: 0, lastCheckpointTime: 0 }, 5000), 5000);
  assert.equal(unsavedSeconds(never, first, { startTime: 0, lastCheckpointTime: 4000 }, 5000), 1000);
});

test('the price is the restart plus the unsaved work; the scheduler default restart applies to jobs that declare none', () => {
  const run = { startTime: 0, lastCheckpointTime: 0 };
  assert.equal(preemptionCostSeconds(job, first, run, 600, NO_PREEMPTION_LIMITS), 60 + 600);
  const bare = gangJob({ id: 'b', gpus: 1, throughput: { V100: 1 }, totalSteps: 1e6 });
  assert.equal(preemptionCostSeconds(bare, first, run, 600, { ...NO_PREEMPTION_LIMITS, restartSeconds: 90 }), 90);
});

test('a job may be preempted only past its minimum run and within its budget (its own first)', () => {
  const settings = preemptionSettings({ minRunSeconds: 300, maxPreemptions: 2 });
  const run = { startTime: 1000 };
  assert.equal(mayPreempt(job, first, run, 1299, settings), false, 'younger than minRunSeconds');
  assert.equal(mayPreempt(job, first, run, 1300, settings), true);
  assert.equal(mayPreempt(job, { preemptions: 2 }, run, 5000, settings), false, 'at the scheduler budget');
  const ownBudget = { ...job, maxPreemptions: 5 };
  assert.equal(preemptionBudget(ownBudget, settings), 5);
  assert.equal(mayPreempt(ownBudget, { preemptions: 2 }, run, 5000, settings), true, "the job's own budget overrides");
  assert.equal(mayPreempt({ ...job, maxPreemptions: 0 }, first, run, 5000, settings), false);
  assert.equal(mayPreempt({ ...job, preemptible: false }, first, run, 5000, settings), false);
});

test('preempting pays only when the gain exceeds the price times the margin', () => {
  assert.equal(preemptionPays(100, 60), true);
  assert.equal(preemptionPays(100, 100), false);
  assert.equal(preemptionPays(100, 60, 2), false);
  assert.equal(preemptionPays(130, 60, 2), true);
});

test('settings: defaults for keys not given, numeric strings accepted, a bad value named', () => {
  assert.deepEqual(preemptionSettings(undefined), NO_PREEMPTION_LIMITS);
  assert.deepEqual(preemptionSettings({ restartSeconds: '30' }, { restartSeconds: 0, minRunSeconds: 10, maxPreemptions: 4 }), { restartSeconds: 30, minRunSeconds: 10, maxPreemptions: 4 });
  assert.throws(() => preemptionSettings({ maxPreemptions: -1 }), /maxPreemptions: must be a number ≥ 0, got -1/);
  assert.throws(() => preemptionSettings({ minRunSeconds: 'soon' }), /minRunSeconds/);
});
