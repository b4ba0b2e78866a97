import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReadCache } from './readCache.ts';
import { storeFactories } from './testing.ts';
import { SqlStore } from './sqlStore.ts';

test('ReadCache keeps a value for its TTL, drops it on invalidate, and keeps no read that began before an invalidation', async () => {
  const c = new ReadCache<number>(60_000);
  let reads = 0;
  const read = async (): Promise<number> => ++reads;
  assert.equal(await c.get(read), 1);
  assert.equal(await c.get(read), 1);
  c.invalidate();
  assert.equal(await c.get(read), 2);
  c.invalidate();
  let release!: () => void;
  const slow = c.get(() => new Promise<number>((r) => (release = () => r(99))));
  c.invalidate();
  release();
  assert.equal(await slow, 99);
  assert.equal(await c.get(read), 3, 'the read that straddled the invalidation was not kept');
  assert.equal(await new ReadCache<number>(0).get(read), 4);
});

test('ReadCache: callers that miss while a read is under way share it, but not across an invalidation', async () => {
  const c = new ReadCache<number>(60_000);
  let reads = 0;
  const releases: (() => void)[] = [];
  const read = (): Promise<number> => {
    const n = ++reads;
    return new Promise<number>((r) => releases.push(() => r(n)));
  };
  const together = [c.get(read), c.get(read), c.get(read)];
  assert.equal(reads, 1, 'one read for three callers');
  c.invalidate();
  const after = c.get(read);
  assert.equal(reads, 2, 'a caller after the invalidation does not join the older read');
  for (const r of releases) r();
  assert.deepEqual(await Promise.all(together), [1, 1, 1]);
  assert.equal(await after, 2);
  assert.equal(await c.get(read), 2, 'the newer read is kept');
  assert.equal(reads, 2);
  // A failed read is not kept and not shared with the next caller.
  const failing = new ReadCache<number>(60_000);
  await assert.rejects(failing.get(() => Promise.reject(new Error('down'))), /down/);
  assert.equal(await failing.get(async () => 7), 7);
});

test('the store reads queues, tenants and the nodes version once, and again after its own change', async () => {
  const sqlite = storeFactories().find((f) => f.name === 'memory');
  if (!sqlite) throw new Error('no memory factory');
  const { store, cleanup } = await sqlite.open();
  const statements = (): number => (store as SqlStore).sqlStats.totals().statements;
  try {
    await store.putQueue({ name: 'a', gpuQuota: 1, borrowingLimit: null }, 1);
    await store.ensureTenant('t1', 1);
    const names = async (): Promise<string> => `${(await store.listQueues()).map((q) => q.name).join()}|${(await store.listTenants()).join()}|${await store.nodesVersion()}`;
    assert.equal(await names(), 'a|t1|0/0/0');
    const n = statements();
    assert.equal(await names(), 'a|t1|0/0/0');
    assert.equal(statements(), n, 'answered from the caches');
    (await store.listQueues()).pop();
    assert.equal((await store.listQueues()).length, 1, 'a caller changing its list changes no cache');
    await store.putQueue({ name: 'b', gpuQuota: 1, borrowingLimit: null }, 2);
    await store.ensureTenant('t2', 2);
    await store.registerNode({ id: 'n1', address: 'http://127.0.0.1:1', cpuMilli: 1000, memoryMib: 1000, gpus: [], simulated: true }, 5);
    assert.equal(await names(), 'a,b|t1,t2|1/5/0');
    await store.expireNodes(10, 11);
    assert.equal((await store.nodesVersion()).endsWith('/1'), true, 'a node lost');
    await store.heartbeat('n1', [], [], 12);
    assert.equal((await store.nodesVersion()).endsWith('/0'), true, 'and back');
  } finally {
    await cleanup();
  }
});
