/** Indexes of a list of open jobs (store/openJobIndex.ts): registered by a store, or built once per list. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Job } from '../api/types.ts';
import { hasRun, openJobsById, registerOpenJobs, startedJobs } from './openJobIndex.ts';

const job = (id: string, state: Job['state'], attempt = 0, runSeconds = 0): Job => ({ id, state, attempt, runSeconds }) as Job;

test('an unregistered list is indexed on first use and the index is kept with it; a new list gets its own', () => {
  const list = [job('1', 'pending'), job('2', 'running'), job('3', 'pending', 1, 40), job('4', 'preempted')];
  const byId = openJobsById(list);
  assert.deepEqual([...byId.keys()], ['1', '2', '3', '4']);
  assert.equal(openJobsById(list), byId, 'built once per list');
  // Started: running, preempted, and a pending job requeued after it ran; not the one that never ran.
  assert.deepEqual(startedJobs(list).map((j) => j.id), ['2', '3', '4']);
  assert.equal(hasRun(job('5', 'pending')), false);
  const other = list.slice(1);
  assert.equal(openJobsById(other).has('1'), false, 'a filtered copy is not read through the first list index');
});

test('a registered index is what a list answers, as the store keeps it', () => {
  const list = [job('7', 'pending'), job('8', 'running')];
  const byId = new Map(list.map((j) => [j.id, j]));
  const started = [list[1] as Job];
  registerOpenJobs(list, byId, started);
  assert.equal(openJobsById(list), byId);
  assert.equal(startedJobs(list), started);
});
