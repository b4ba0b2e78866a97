/**
 * Queues with cohorts and per-GPU-model quotas over the API (PUT and GET /v1/queues) and in
 * `tide queues`: what is put is what is listed and what the scheduler gets; a bad quota is a 400
 * naming the field.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { queuesTable } from '../cli/format.ts';
import type { RunningServer } from './server.ts';
import { httpCall, memoryServer } from './testing.ts';

const ADMIN = 'admin-token-quotas';
const TIDE = fileURLToPath(new URL('../../bin/tide.js', import.meta.url));
const execFileAsync = promisify(execFile);
let server: RunningServer;
before(async () => {
  server = await memoryServer({ adminToken: ADMIN, agentToken: 'agent-token-quotas', tickMs: 3_600_000, tenants: { alice: ['alice-token-quotas'] } });
});
after(async () => server.close());

test('a queue put with a cohort and per-model quotas is listed with them, and the store has them for the scheduler', async () => {
  const put = await httpCall(server.url, 'PUT', '/v1/queues/lab', ADMIN, { nominalQuota: { H100: 8, A100: 4 }, borrowingLimit: { H100: 2 }, lendingLimit: 3, cohort: 'research', tenants: ['alice'] });
  assert.equal(put.status, 200, put.text);
  const queues = (await httpCall(server.url, 'GET', '/v1/queues', ADMIN)).json.queues;
  const lab = queues.find((q: { name: string }) => q.name === 'lab');
  assert.deepEqual(
    { gpuQuota: lab.gpuQuota, borrowingLimit: lab.borrowingLimit, cohort: lab.cohort, nominalQuota: lab.nominalQuota, borrowingLimits: lab.borrowingLimits, lendingLimits: lab.lendingLimits, used: lab.usedGpuMilliByModel },
    { gpuQuota: 12, borrowingLimit: null, cohort: 'research', nominalQuota: { H100: 8, A100: 4 }, borrowingLimits: { H100: 2 }, lendingLimits: { '*': 3 }, used: {} },
  );
  const snap = await server.store.snapshot();
  assert.equal(snap.queues.find((q) => q.name === 'lab')?.cohort, 'research');
  const table = queuesTable(queues);
  assert.match(table, /^QUEUE +COHORT +QUOTA +USED +BORROWED +BORROW-LIMIT +LEND-LIMIT +PENDING +RUNNING/);
  assert.match(table, /\nlab +research +H100:8,A100:4 +H100:0,A100:0 +0 +H100:2 +\*:3 +0 +0/);
  assert.match(table, /\ndefault +cluster +unlimited +0 +0 +- +- +0 +0/);
  // A plain number still works, as before.
  assert.equal((await httpCall(server.url, 'PUT', '/v1/queues/plain', ADMIN, { gpuQuota: 4, borrowingLimit: 1 })).status, 200);
  const plain = (await httpCall(server.url, 'GET', '/v1/queues', ADMIN)).json.queues.find((q: { name: string }) => q.name === 'plain');
  assert.deepEqual([plain.gpuQuota, plain.borrowingLimit, plain.cohort, plain.nominalQuota, plain.lendingLimits], [4, 1, 'cluster', null, null]);
});

test('a bad quota is a 400 naming each field', async () => {
  const bad = await httpCall(server.url, 'PUT', '/v1/queues/lab', ADMIN, { nominalQuota: { H100: -1 }, gpuQuota: 2, lendingLimit: 'lots', cohort: 'a b' });
  assert.equal(bad.status, 400);
  assert.deepEqual(bad.json.error.fields.map((f: { path: string }) => f.path).sort(), ['cohort', 'lendingLimit', 'nominalQuota', 'nominalQuota.H100']);
});

test('tide queue put takes per-model quotas and a cohort; tide queues shows them', async () => {
  const cli = (...args: string[]) => execFileAsync(process.execPath, [TIDE, ...args, '--server', server.url, '--token', ADMIN]);
  const put = await cli('queue', 'put', 'cli-q', '--quota', 'H100=4,A100=2', '--lending-limit', '1', '--cohort', 'lab');
  assert.equal(put.stdout.trim(), 'Queue cli-q: quota H100=4,A100=2, borrowing limit unlimited, lending limit 1, cohort lab');
  const q = (await server.store.listQueues()).find((x) => x.name === 'cli-q');
  assert.deepEqual([q?.nominalQuota, q?.lendingLimits, q?.cohort, q?.gpuQuota], [{ H100: 4, A100: 2 }, { '*': 1 }, 'lab', 6]);
  assert.match((await cli('queues')).stdout, /\ncli-q +lab +H100:4,A100:2 +H100:0,A100:0 +0 +unlimited +\*:1 +0 +0/);
  await assert.rejects(cli('queue', 'put', 'cli-q', '--quota', 'H100=lots'), (e: { code?: number; stderr?: string }) => e.code === 2 && /--quota: expected a number of GPUs, MODEL=GPUS/.test(e.stderr ?? '') && !/\n\s+at /.test(e.stderr ?? ''));
});
