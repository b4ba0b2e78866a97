import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { MAX_WAITS_PER_NODE, NodeWakeups } from './nodeWakeups.ts';
import { startServer } from './server.ts';

test('a wait is answered by a wake of its node, not of another; at once when behind; at its timeout otherwise', async () => {
  const w = new NodeWakeups();
  const a = w.wait('a', 0, 10_000);
  const b = w.wait('b', 0, 50);
  w.wake(['a', 'a', 'c']);
  assert.deepEqual(await a, { seq: 1, woke: true }, 'one wake per call, however often the node is named');
  assert.deepEqual(await b, { seq: 0, woke: false });
  assert.deepEqual(await w.wait('a', 0, 10_000), { seq: 1, woke: true }, 'a wake missed between waits is not lost');
  assert.deepEqual(await w.wait('c', 7, 10_000), { seq: 1, woke: true }, "a counter ahead of this server's");
  assert.equal(w.waiting, 0);
});

test('one node holds at most a few waits: a newer one answers the oldest', async () => {
  const w = new NodeWakeups();
  const held = Array.from({ length: MAX_WAITS_PER_NODE + 1 }, () => w.wait('a', 0, 10_000));
  assert.deepEqual(await held[0], { seq: 0, woke: false });
  assert.equal(w.waiting, MAX_WAITS_PER_NODE);
  w.close();
  for (const p of held) assert.equal((await p).woke, false);
  assert.deepEqual(await w.wait('a', 0, 10_000), { seq: 0, woke: false }, 'closed: answered at once');
});

test('a server closes without waiting out the waits its agents hold', async () => {
  const server = await startServer({ log: () => {}, dataDir: '/nonexistent', databaseUrl: 'memory:', port: 0, adminToken: 'admin-token-123', agentToken: 'agent-token-123', tickMs: 3_600_000 });
  const nodeToken = 'tide_node_wait_test_token';
  const call = (path: string, body: object, token: string) => fetch(`${server.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const reg = await call('/v1/agent/register', { id: 'n1', address: 'http://127.0.0.1:1', cpuMilli: 1000, memoryMib: 1024, gpus: [], nodeTokenHash: createHash('sha256').update(nodeToken).digest('hex') }, 'agent-token-123');
  assert.equal(reg.status, 200);
  const held = call('/v1/agent/wait', { node: 'n1', after: 0, timeoutMs: 60_000 }, nodeToken);
  await new Promise((ok) => setTimeout(ok, 200));
  const t0 = performance.now();
  await server.close();
  assert.ok(performance.now() - t0 < 10_000, `closed in ${Math.round(performance.now() - t0)} ms`);
  const answer = await held;
  assert.equal(answer.status, 200);
  assert.deepEqual(await answer.json(), { seq: 0, woke: false });
});
