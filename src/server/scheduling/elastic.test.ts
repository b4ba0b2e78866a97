/**
 * Elastic gangs live: the core may start a group with `minReplicas` of its replicas; the store
 * binds just those, the run's gang (WORLD_SIZE, peers) is the tasks bound, and the job runs and
 * succeeds with them (the unbound tasks are no part of that attempt).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseJobSpec } from '../../api/spec.ts';
import { CoreSchedulerAdapter } from './coreAdapter.ts';
import { judgeJob } from '../../store/lifecycle.ts';
import { node } from '../../store/liveTesting.ts';
import { openStore } from '../../store/sqlStore.ts';

test('a pending task beside bound ones is no part of the run: the job runs, succeeds or fails by the bound ones', () => {
  assert.equal(judgeJob('admitted', ['running', 'running', 'pending']).state, 'running');
  assert.equal(judgeJob('running', ['succeeded', 'succeeded', 'pending']).state, 'succeeded');
  assert.equal(judgeJob('running', ['failed', 'running', 'pending']).state, 'failed');
  assert.equal(judgeJob('admitted', ['running', 'assigned', 'pending']).state, 'admitted');
});

test('an elastic job on too few GPUs for all its replicas starts with what fits, as a gang of that size, and succeeds', async () => {
  const store = await openStore('memory:');
  await store.registerNode(node('n1', 'H100', 2), 0);
  const r = parseJobSpec({ name: 'elastic', tasks: [{ replicas: 4, minReplicas: 2, gpus: 1, command: 'x' }] });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  const job = (await store.submit('t', r.spec, null, 1000)).jobs[0];
  assert.ok(job);
  const plan = new CoreSchedulerAdapter('tide', 'tide').plan(await store.snapshot(), 2000);
  const bind = plan.binds.find((b) => b.jobId === job.id);
  assert.deepEqual(bind?.tasks.map((t) => t.index), [0, 1], 'the two that fit');
  assert.ok(await store.applyPlan(plan, 2000));
  const desired = (await store.heartbeat('n1', [], [], 3000)) ?? [];
  assert.deepEqual(desired.map((d) => [d.taskIndex, d.gangSize, d.peers.length]), [[0, 2, 2], [1, 2, 2]]);
  await store.heartbeat('n1', [], desired.map((d) => ({ runId: d.runId, state: 'running' as const, pid: 1, exitCode: null })), 4000);
  assert.equal((await store.getJob(job.id))?.state, 'running');
  await store.heartbeat('n1', [], desired.map((d) => ({ runId: d.runId, state: 'exited' as const, pid: 1, exitCode: 0 })), 5000);
  assert.equal((await store.getJob(job.id))?.state, 'succeeded');
  await store.close();
});
