/**
 * Batch arrays over real HTTP (store/migrations/018_arrays.sql, 019_array_ranges.sql): a POST
 * answers one array with its counts, its waiting elements are one job until placed one by one,
 * its jobs are paged by GET /v1/jobs?array=ID, GET /v1/arrays/:id counts the elements, and
 * POST /v1/arrays/:id/cancel cancels them together, waking the agent of an element that runs.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { RunningServer } from './server.ts';
import { httpCall, memoryServer } from './testing.ts';

const ADMIN = 'arr-admin-token';
const AGENT = 'arr-agent-token';
const ALICE = 'arr-alice-token';

let server: RunningServer;
const call = (method: string, path: string, token: string | null, body?: unknown) => httpCall(server.url, method, path, token, body);
const sweep = (over: Record<string, unknown> = {}) => ({ name: 'sweep', kind: 'batch', array: 5, tasks: [{ gpus: 1, command: 'true' }], ...over });

before(async () => {
  server = await memoryServer({ adminToken: ADMIN, agentToken: AGENT, scheduler: 'fifo', tickMs: 60_000, tenants: { alice: [ALICE] } });
});
after(async () => server.close());

test('an array is answered as one, its elements paged by array, a retry answers the same array and a changed spec is a 409 naming it', async () => {
  const posted = await call('POST', '/v1/jobs', ALICE, { ...sweep(), clientKey: 'sweep-1' });
  assert.equal(posted.status, 201, posted.text);
  const { array } = posted.json;
  assert.deepEqual(posted.json.jobs, []);
  assert.deepEqual([array.name, array.size, array.tenant, array.queue, array.counts.pending, array.unfinished], ['sweep', 5, 'alice', 'default', 5, 5]);
  assert.deepEqual((await call('GET', `/v1/arrays/${array.id}`, ALICE)).json.array, array);

  // Its waiting elements are one job (migration 019), as squeue shows 7_[0-4].
  const page = await call('GET', `/v1/jobs?array=${array.id}`, ALICE);
  assert.deepEqual(page.json.jobs.map((j: { name: string; arrayId: string; arrayIndex: number; arrayCount: number }) => [j.name, j.arrayId, j.arrayIndex, j.arrayCount]), [['sweep-[0-4]', array.id, 0, 5]]);
  assert.equal(page.json.jobs[0].id, array.firstJobId);

  const retry = await call('POST', '/v1/jobs', ALICE, { ...sweep(), clientKey: 'sweep-1' });
  assert.equal(retry.status, 200);
  assert.equal(retry.json.array.id, array.id);
  const changed = await call('POST', '/v1/jobs', ALICE, { ...sweep({ array: 6 }), clientKey: 'sweep-1' });
  assert.equal(changed.status, 409);
  assert.match(changed.json.error.message, new RegExp(`idempotency key "sweep-1" was used for a different job spec \\(array ${array.id}\\)`));

  const one = await call('POST', '/v1/jobs', ALICE, { name: 'alone', tasks: [{ gpus: 0, command: 'true' }] });
  assert.deepEqual([one.json.jobs.length, one.json.jobs[0].arrayId, one.json.array], [1, null, undefined]);
  await call('POST', `/v1/arrays/${array.id}/cancel`, ALICE);
  await call('POST', `/v1/jobs/${one.json.jobs[0].id}/cancel`, ALICE);
});

test("an element by its index (Slurm's 123_5), and a cancel of some elements by index ranges", async () => {
  const { array } = (await call('POST', '/v1/jobs', ALICE, sweep({ name: 'part', array: 12 }))).json;
  const fifth = await call('GET', `/v1/arrays/${array.id}/elements/5`, ALICE);
  assert.deepEqual([fifth.status, fifth.json.job.name, fifth.json.job.arrayId, fifth.json.job.arrayIndex, fifth.json.job.arrayCount], [200, 'part-[0-11]', array.id, 0, 12], 'the waiting rest it is one of');
  const past = await call('GET', `/v1/arrays/${array.id}/elements/12`, ALICE);
  assert.deepEqual([past.status, past.json.error.fields], [400, [{ path: 'index', message: 'must be an element index from 0 to 11, got "12"' }]]);
  const some = await call('POST', `/v1/arrays/${array.id}/cancel`, ALICE, { elements: '2-4,9' });
  assert.equal(some.status, 200, some.text);
  assert.deepEqual([some.json.cancelled, some.json.array.counts.cancelled, some.json.array.unfinished], [4, 4, 8]);
  const names = async (state: string) => (await call('GET', `/v1/jobs?array=${array.id}&state=${state}`, ALICE)).json.jobs.map((j: { name: string }) => j.name);
  // The waiting rest split where the cancel starts and stops covering it.
  assert.deepEqual(await names('cancelled'), ['part-[2-4]', 'part-9']);
  assert.deepEqual(await names('pending'), ['part-[0-1]', 'part-[5-8]', 'part-[10-11]']);
  assert.equal((await call('GET', `/v1/arrays/${array.id}/elements/9`, ALICE)).json.job.state, 'cancelled');
  assert.equal((await call('GET', `/v1/arrays/${array.id}/elements/6`, ALICE)).json.job.name, 'part-[5-8]');
  for (const [elements, message] of [['4-2', 'elements: 4-2 runs backwards'], ['11-12', "elements: 12 is past the array's last element (11)"], ['x', 'elements: must be element indexes such as "0-9,12"']]) {
    const bad = await call('POST', `/v1/arrays/${array.id}/cancel`, ALICE, { elements });
    assert.deepEqual([bad.status, bad.json.error.message], [400, message]);
  }
  assert.equal((await call('POST', `/v1/arrays/${array.id}/cancel`, ALICE, { elements: '0-11', more: 1 })).status, 400, 'an unknown field');
  assert.equal((await call('POST', `/v1/arrays/${array.id}/cancel`, ALICE)).json.cancelled, 8, 'the rest, with no body');
});

test('bad and unknown array ids are a 400 naming the field and a 404', async () => {
  const bad = await call('GET', '/v1/arrays/x1', ALICE);
  assert.equal(bad.status, 400);
  assert.deepEqual(bad.json.error.fields, [{ path: 'id', message: 'must be an array id (a positive integer), got "x1"' }]);
  assert.equal((await call('GET', '/v1/arrays/987654', ALICE)).status, 404);
  assert.equal((await call('POST', '/v1/arrays/987654/cancel', ALICE)).status, 404);
  const list = await call('GET', '/v1/jobs?array=-3', ALICE);
  assert.equal(list.status, 400);
  assert.match(list.json.error.message, /array: must be an array id/);
});

test("cancelling an array cancels every unfinished element, wakes the agent of one that runs, and a second cancel is a 409 with the counts", async () => {
  const registered = await call('POST', '/v1/agent/register', AGENT, { id: 'arr-n1', address: 'http://127.0.0.1:9', cpuMilli: 8_000, memoryMib: 65_536, gpus: [{ index: 0, model: 'H100', memoryMib: 81_920, uuid: 'GPU-arr-0' }], simulated: true });
  assert.equal(registered.status, 200, registered.text);
  const node = registered.json.nodeToken as string;
  const { array } = (await call('POST', '/v1/jobs', ALICE, sweep({ name: 'grid', array: 3 }))).json;
  // The loop runs on a submission: the first element takes the node's one GPU.
  let shown = array;
  for (let i = 0; i < 200 && shown.counts.admitted === 0; i++) {
    await new Promise((r) => setTimeout(r, 25));
    shown = (await call('GET', `/v1/arrays/${array.id}`, ALICE)).json.array;
  }
  assert.deepEqual([shown.counts.admitted, shown.counts.pending], [1, 2]);
  const beat = await call('POST', '/v1/agent/heartbeat', node, { node: 'arr-n1', reports: [], telemetry: [] });
  assert.equal(beat.json.tasks.length, 1);
  const waiting = call('POST', '/v1/agent/wait', node, { node: 'arr-n1', after: beat.json.wakeSeq, timeoutMs: 20_000 });
  const began = Date.now();
  const cancelled = await call('POST', `/v1/arrays/${array.id}/cancel`, ALICE);
  assert.equal(cancelled.status, 200, cancelled.text);
  assert.deepEqual([cancelled.json.cancelled, cancelled.json.array.counts.cancelled, cancelled.json.array.unfinished], [3, 3, 0]);
  const woke = await waiting;
  assert.equal(woke.json.woke, true);
  assert.ok(Date.now() - began < 10_000, 'woken by the cancel, not at the end of its wait');
  const told = await call('POST', '/v1/agent/heartbeat', node, { node: 'arr-n1', reports: [], telemetry: [] });
  assert.deepEqual(told.json.tasks.filter((t: { action: string }) => t.action === 'run'), [], 'its run is no longer desired (the agent stops what it is not told to run)');
  const again = await call('POST', `/v1/arrays/${array.id}/cancel`, ALICE);
  assert.equal(again.status, 409);
  assert.equal(again.json.error.message, `array ${array.id} has no unfinished element (3 cancelled)`);
});
