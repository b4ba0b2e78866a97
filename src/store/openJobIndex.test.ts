/** Indexes of a list of open jobs (store/openJobIndex.ts): registered by a store, or built once per list. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Job } from '../api/types.ts';
import { ChangeLog, hasRun, openJobChanges, openJobsById, registerOpenJobs, startedJobs } from './openJobIndex.ts';

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

test('the changes between two lists of one log: merged in order; null once the log no longer holds them or after a full read', () => {
  const job = (id: string, attempt = 0) => ({ id, attempt }) as unknown as Job;
  const log = new ChangeLog();
  const lists: Job[][] = [];
  const register = (list: Job[], seq: number): Job[] => (registerOpenJobs(list, new Map(), [], { log, seq }), lists.push(list), list);
  const l0 = register([job('1'), job('2')], log.restart());
  const l1 = register([job('1', 1), job('2'), job('3')], log.add({ upserts: [job('1', 1), job('3')], removed: [] }));
  const l2 = register([job('1', 1), job('3')], log.add({ upserts: [], removed: ['2'] }));
  const l3 = register([job('1', 1), job('2', 5)], log.add({ upserts: [job('2', 5)], removed: ['3'] }));
  const c = openJobChanges(l3, l0);
  assert.deepEqual(c?.upserts.map((j) => `${j.id}/${j.attempt}`).sort(), ['1/1', '2/5'], 'job 3 came and went; job 2 left and came back');
  assert.deepEqual(c?.removed, ['3']);
  assert.deepEqual(openJobChanges(l2, l2), { upserts: [], removed: [] });
  assert.equal(openJobChanges(l1, [job('1')]), null, 'a list from elsewhere');
  for (let i = 0; i < ChangeLog.KEPT; i++) register([], log.add({ upserts: [], removed: [] }));
  assert.equal(openJobChanges(lists.at(-1) as Job[], l1), null, 'older than the log holds');
  const full = register([job('9')], log.restart());
  assert.equal(openJobChanges(full, lists.at(-2) as Job[]), null, 'across a full read');
});
