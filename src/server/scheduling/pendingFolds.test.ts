import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gangJob } from '../../core/scheduling/build.ts';
import { jobId, type JobProgress } from '../../core/scheduling/model.ts';
import type { PendingJob, PendingReason, SchedulePlan, SchedulerSnapshot } from '../../core/scheduling/scheduler.ts';
import { PendingFolds, type FoldablePending } from './pendingFolds.ts';

const fresh: JobProgress = { stepsDone: 0, attainedGpuSeconds: 0, runSeconds: 0, preemptions: 0 };
/** A pending job as the adapter makes it. */
const job = (id: number, o: { gpus?: number; submitTime?: number; progress?: JobProgress } = {}): FoldablePending => ({
  spec: gangJob({ id: String(id), gpus: o.gpus ?? 1, throughput: { H100: 1 }, totalSteps: Infinity, submitTime: o.submitTime ?? 5, jobType: 'arr' }),
  progress: o.progress ?? fresh,
  foldPrev: null,
  foldSame: false,
  lastReason: undefined,
});
const snapshot = (pending: readonly PendingJob[]): SchedulerSnapshot => ({ now: 10, nodes: [], running: [], pending, queues: [] });
/** Binds `job` or `job#member`. */
const plan = (binds: readonly string[], pending: readonly PendingReason[]): SchedulePlan => ({
  binds: binds.map((j) => {
    const [job, member] = j.split('#');
    return { job: jobId(job as string), model: 'H100', bindings: [], ...(member !== undefined ? { member: Number(member) } : {}) };
  }),
  preemptions: [],
  pending,
});

test('adjacent jobs the core cannot tell apart fold into one entry; others, and jobs that differ, stay as they are', () => {
  const folds = new PendingFolds();
  const list = [job(1, { submitTime: 1 }), job(2), job(3), job(4), job(5, { gpus: 2 }), job(6, { progress: { ...fresh, preemptions: 1 } }), job(7)];
  const s = folds.fold(snapshot(list));
  assert.deepEqual(
    s.pending.map((p) => `${p.spec.id}x${p.count ?? 1}`),
    ['1x1', '2x3', '5x1', '6x1', '7x1'],
  );
  assert.equal(s.pending[0], list[0], 'a job that folds with none is passed as it is');
  assert.equal(s.pending[1]?.spec, list[1]?.spec, "the entry is the first job's shape");
  // The same list: the same snapshot's entries; a new list of the same jobs: the same entry object.
  assert.equal(folds.fold(snapshot(list)).pending, s.pending);
  assert.equal(folds.fold(snapshot([...list])).pending[1], s.pending[1]);
  // The first job of the run starts: a new entry for the rest.
  const after = folds.fold(snapshot([list[0], ...list.slice(2)] as PendingJob[])).pending;
  assert.deepEqual(after.map((p) => `${p.spec.id}x${p.count ?? 1}`), ['1x1', '3x2', '5x1', '6x1', '7x1']);
  // Nothing folds: the snapshot itself.
  const alone = [job(1, { submitTime: 1 }), job(2, { submitTime: 2 })];
  const sn = snapshot(alone);
  assert.equal(folds.fold(sn), sn);
});

test("an entry's binds go to its jobs in id order and its reason to each job left, the estimate to the first", () => {
  const folds = new PendingFolds();
  const list = [job(10), job(11), job(12), job(13)];
  folds.fold(snapshot(list));
  const reason: PendingReason = { job: jobId('10'), code: 'waiting-for-resources', message: 'needs 1 GPUs of one model; no model has that many free', estimatedStart: 99 };
  const out = folds.unfold(plan(['10', '7', '10'], [reason]));
  assert.deepEqual(out.binds.map((b) => b.job), ['10', '7', '11']);
  assert.deepEqual(
    out.pending.map((r) => [r.job, r.code, r.estimatedStart]),
    [
      ['12', 'waiting-for-resources', 99],
      ['13', 'waiting-for-resources', undefined],
    ],
  );
  assert.throws(() => folds.unfold(plan(['10', '10', '10', '10', '10'], [])), /bound job 4 of entry 10 \(4 jobs\)/);
  assert.throws(() => folds.unfold(plan(['10#1', '10#1'], [])), /bound job 1 of entry 10 \(4 jobs\) twice/);
  // The jobs a bind names; a bind whose placement failed leaves a gap, and the reason goes to each job left.
  const gap = folds.unfold(plan(['10#2', '10#0'], [reason]));
  assert.deepEqual(gap.binds.map((b) => [b.job, b.member]), [['12', undefined], ['10', undefined]]);
  assert.deepEqual(gap.pending.map((r) => r.job), ['11', '13']);
  // A second reason for the entry (a stage's) is not spread again.
  assert.equal(folds.unfold(plan([], [reason, { ...reason, code: 'waiting-for-node-power-up' }])).pending.length, 4);
});

test('the jobs behind the first of an entry keep the reason they show while it tells the same kind of wait, so nothing is rewritten', () => {
  const folds = new PendingFolds();
  const list = [job(20), job(21), job(22), job(23)];
  folds.fold(snapshot(list));
  const first = folds.unfold(plan([], [{ job: jobId('20'), code: 'lower-priority', message: 'needs 1 GPUs of one model; no model has that many free' }])).pending;
  // The next cycle the entry is new (its first job started), and tide's fill passed over it: other words, another code, the same wait.
  folds.fold(snapshot(list.slice(1)));
  const second = folds.unfold(plan([], [{ job: jobId('21'), code: 'waiting-for-resources', message: 'no model has enough GPUs free for it' }])).pending;
  assert.notEqual(second[0], first[1], 'the next job takes the new words');
  assert.equal(second[0]?.message, 'no model has enough GPUs free for it');
  assert.equal(second[1], first[2], 'the jobs behind it keep theirs: the same objects, which the adapter passes over');
  assert.equal(second[2], first[3]);
  // Another kind of wait is written to every job.
  folds.fold(snapshot(list.slice(1)));
  const third = folds.unfold(plan([], [{ job: jobId('21'), code: 'over-quota', message: 'queue a is at its quota' }])).pending;
  assert.deepEqual(third.map((r) => `${r.job} ${r.code}`), ['21 over-quota', '22 over-quota', '23 over-quota']);
});
