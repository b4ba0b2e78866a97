/**
 * Time limits against a real (in-memory SQLite) store: a job is timed out once its running time
 * over all attempts reaches its limit — not before, and only once — with a reason that says how
 * long it ran over how many attempts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseJobSpec } from '../api/spec.ts';
import { openStore } from '../store/sqlStore.ts';
import type { Store } from '../store/store.ts';
import { shortDuration, TimeLimits, timeLimitReason } from './timeLimits.ts';

const node = { id: 'n1', address: 'http://127.0.0.1:9', cpuMilli: 8000, memoryMib: 65536, gpus: [0, 1].map((i) => ({ index: i, model: 'H100', memoryMib: 81920, uuid: `G${i}` })), simulated: true };

async function startedJob(store: Store, limit: string | number, at: number, id?: string, attempt = 0): Promise<string> {
  let jobId = id;
  if (jobId === undefined) {
    const r = parseJobSpec({ name: 'limited', timeLimit: limit, tasks: [{ gpus: 1, command: 'sleep 100' }] });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    jobId = (await store.submit('ml', r.spec, null, at)).jobs[0]?.id ?? '';
  }
  await store.applyPlan({ binds: [{ jobId, attempt, tasks: [{ index: 0, node: 'n1', gpus: [attempt % 2], gpuMilli: 1000 }] }], preemptions: [], pending: [] }, at);
  await store.heartbeat('n1', [], [{ runId: `${jobId}.0.${attempt}`, state: 'running', pid: 5, exitCode: null, startedAt: at }], at);
  return jobId;
}

test('durations and reasons read as people write them', () => {
  assert.deepEqual([0, 3, 60, 1802, 5400, 90_061].map(shortDuration), ['0s', '3s', '1m', '30m 2s', '1h 30m', '1d 1h 1m 1s']);
  assert.equal(timeLimitReason(1800, 1802.4, 2), 'time limit 30m reached (ran 30m 2s over 2 attempts)');
  assert.equal(timeLimitReason(3, 3, 1), 'time limit 3s reached (ran 3s over 1 attempt)');
});

test('a job is timed out when its running time reaches the limit, once; a job without a limit never is', async () => {
  const store = await openStore('memory:');
  try {
    await store.ensureTenant('ml', 0);
    await store.registerNode(node, 0);
    const limits = new TimeLimits(store);
    const id = await startedJob(store, '1m', 1000);
    const free = parseJobSpec({ name: 'free', tasks: [{ gpus: 0, command: 'sleep 100' }] });
    if (!free.ok) throw new Error('spec');
    await store.submit('ml', free.spec, null, 1000);
    assert.deepEqual(await limits.enforce(await store.snapshot(), 60_999), []);
    assert.deepEqual(await limits.enforce(await store.snapshot(), 61_000), [id]);
    assert.deepEqual(await limits.enforce(await store.snapshot(), 62_000), [], 'asked once');
    const job = await store.getJob(id);
    assert.deepEqual([job?.state, job?.reason], ['running', 'time limit 1m reached (ran 1m over 1 attempt)']);
    assert.equal((await store.heartbeat('n1', [], [{ runId: `${id}.0.0`, state: 'running', pid: 5, exitCode: null }], 62_000))?.[0]?.action, 'stop');
  } finally {
    await store.close();
  }
});

test('the limit counts across attempts: a requeued job keeps its earlier running time', async () => {
  const store = await openStore('memory:');
  try {
    await store.ensureTenant('ml', 0);
    await store.registerNode(node, 0);
    const limits = new TimeLimits(store);
    const id = await startedJob(store, 10, 0);
    await store.preempt(id, 'make room', 6000);
    await store.heartbeat('n1', [], [{ runId: `${id}.0.0`, state: 'exited', pid: 5, exitCode: 143 }], 6000);
    assert.deepEqual([(await store.getJob(id))?.state, (await store.getJob(id))?.runSeconds], ['pending', 6]);
    assert.deepEqual(await limits.enforce(await store.snapshot(), 50_000), [], 'waiting does not count');
    await startedJob(store, 10, 50_000, id, 1);
    assert.deepEqual(await limits.enforce(await store.snapshot(), 53_999), []);
    assert.deepEqual(await limits.enforce(await store.snapshot(), 54_000), [id]);
    assert.equal((await store.getJob(id))?.reason, 'time limit 10s reached (ran 10s over 2 attempts)');
  } finally {
    await store.close();
  }
});
