/**
 * Tokens' last uses written together (store/tokenUses.ts): many uses go out in a few statements,
 * this server sees them at once, another server once written.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { openStore, type SqlStore } from './sqlStore.ts';
import { storeFactories } from './testing.ts';
import { TokenUses } from './tokenUses.ts';

test('TokenUses: a use within a minute of a waiting one is not kept; a flush writes them all; a failed write is dropped', async () => {
  const writes: (readonly (readonly [string, number])[])[] = [];
  let fail = false;
  const uses = new TokenUses(async (u) => {
    if (fail) throw new Error('database gone');
    writes.push(u);
  }, (h) => h.slice(0, 2), 10_000);
  uses.add('aa-1', 1_000);
  uses.add('aa-1', 30_000);
  uses.add('bb-2', 5_000);
  assert.equal(uses.of('aa-1'), 1_000);
  assert.equal(uses.waitingById().get('bb'), 5_000);
  uses.add('aa-1', 61_000);
  await uses.flush();
  assert.deepEqual(writes, [[['aa-1', 61_000], ['bb-2', 5_000]]]);
  assert.equal(uses.of('aa-1'), undefined, 'written: no longer waiting');
  fail = true;
  uses.add('cc-3', 1);
  await uses.flush();
  assert.equal(uses.written, 2);
  fail = false;
  uses.add('cc-3', 2);
  await uses.flush();
  assert.deepEqual(writes.at(-1), [['cc-3', 2]], 'the next use after a failure is written');
});

for (const factory of storeFactories()) {
  if (factory.name === 'memory') continue; // another server reads what was written
  test(`250 tokens' uses go out in 3 statements, seen here at once and by another server once written: ${factory.name}`, factory.skip !== undefined ? { skip: factory.skip } : {}, async () => {
    const { store, url, cleanup } = await factory.open();
    const other = await openStore(url);
    try {
      const hashes = Array.from({ length: 250 }, (_, i) => `hash-${String(i).padStart(4, '0')}-use`);
      for (const h of hashes) await store.putToken(h, { role: 'tenant', tenant: 'ml' }, 1);
      for (const h of hashes) await store.touchToken(h, 70_000);
      assert.equal((await store.findToken(hashes[7] as string))?.lastUsedAt, 70_000, 'this server sees the use at once');
      assert.ok((await store.listTokens()).every((t) => t.lastUsedAt === 70_000));
      await sleep(400); // past the write window (200 ms)
      const stats = (store as SqlStore).sqlStats;
      const statements = [...stats.bySql].filter(([sql]) => /UPDATE tokens SET last_used_at/.test(sql)).reduce((n, [, c]) => n + c.statements, 0);
      assert.equal(statements, 3);
      assert.ok((await other.listTokens()).every((t) => t.lastUsedAt === 70_000), 'written');
      // Within the minute a use writes nothing; a minute on it does.
      await store.touchToken(hashes[0] as string, 100_000);
      await store.touchToken(hashes[1] as string, 130_000);
      await sleep(400);
      const after = new Map((await other.listTokens()).map((t) => [t.id, t.lastUsedAt]));
      assert.deepEqual([after.get((hashes[0] as string).slice(0, 12)), after.get((hashes[1] as string).slice(0, 12))], [70_000, 130_000], 'the later one written');
    } finally {
      await other.close();
      await cleanup();
    }
  });
}
