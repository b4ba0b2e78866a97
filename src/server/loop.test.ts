/** The loop's reason filter: only reasons that changed are written, found by map or by binary search alike. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Job } from '../api/types.ts';
import type { AppliedPlan, StoreSnapshot } from '../store/store.ts';
import { changedReasons, openJob } from './loop.ts';

const job = (id: number, reason: string | null, estimatedStart: number | null): Job => ({ id: String(id), reason, estimatedStart }) as unknown as Job;

test('changedReasons keeps the reasons and estimates that changed, whether jobs are looked up in a map or by id', () => {
  const openJobs = Array.from({ length: 100 }, (_, i) => job(i + 1, `r${i + 1}`, i === 4 ? 10_000 : null));
  const snap = { nodes: [], activeTasks: [], queues: [], openJobs } satisfies StoreSnapshot;
  const pending: AppliedPlan['pending'] = [
    { jobId: '2', reason: 'r2', estimatedStart: null },
    { jobId: '3', reason: 'new', estimatedStart: null },
    { jobId: '5', reason: 'r5', estimatedStart: 12_000 },
    { jobId: '5', reason: 'r5', estimatedStart: 16_000 },
    { jobId: '7', reason: 'r7', estimatedStart: 1 },
    { jobId: '999', reason: 'gone', estimatedStart: null },
  ];
  const want = ['3:new', '5:16000', '7:1'];
  const show = (ps: AppliedPlan['pending']): string[] => ps.map((p) => `${p.jobId}:${p.reason === 'new' ? p.reason : String(p.estimatedStart)}`);
  assert.deepEqual(show(changedReasons(pending, snap)), want, 'by binary search (few reasons)');
  assert.deepEqual(show(changedReasons(pending, snap, new Map(openJobs.map((j) => [j.id, j])))), want, 'by map');
  const many = Array.from({ length: 20 }, () => pending).flat();
  assert.equal(changedReasons(many, snap).length, 60, 'by a map built for many reasons');
  assert.equal(openJob(snap, '64')?.id, '64');
  assert.equal(openJob(snap, '0'), undefined);
  assert.equal(openJob({ ...snap, openJobs: [...openJobs].reverse() }, '17')?.id, '17', 'found out of order too');
});
