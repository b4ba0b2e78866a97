/**
 * The token lifecycle and node credentials in the store, on every adapter (memory, SQLite,
 * PostgreSQL): public ids, expiry, revocation (sticky across a config re-apply), last use at
 * most once a minute, one live credential per node, and the admin reset.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createHash } from 'node:crypto';
import type { Store } from './store.ts';
import { storeFactories } from './testing.ts';

/** Any stable digest will do: the store keeps whatever hash the server hands it. */
const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex');

const node = (id: string) => ({ id, address: `http://127.0.0.1:1/${id}`, cpuMilli: 8000, memoryMib: 65536, gpus: [{ index: 0, model: 'H100', memoryMib: 81920, uuid: `GPU-${id}` }], simulated: true });

for (const factory of storeFactories()) {
  if (factory.skip !== undefined) {
    test(`store tokens: ${factory.name}`, { skip: factory.skip }, () => {});
    continue;
  }
  describe(`store tokens: ${factory.name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    before(async () => {
      const opened = await factory.open();
      store = opened.store;
      cleanup = opened.cleanup;
    });
    after(async () => cleanup());

    test('a token has a public id, an expiry, a revocation that a config re-apply keeps, and never lists its hash', async () => {
      const h = hashToken('tenant-secret-1');
      await store.ensureTenant('ml', 1);
      await store.putToken(h, { role: 'tenant', tenant: 'ml' }, 10, 5000);
      const t = await store.findToken(h);
      assert.deepEqual(t, { id: h.slice(0, 12), role: 'tenant', tenant: 'ml', node: null, createdAt: 10, expiresAt: 5000, revokedAt: null, lastUsedAt: null });
      const revoked = await store.revokeToken(h.slice(0, 12), 20);
      assert.equal(revoked?.revokedAt, 20);
      assert.equal((await store.revokeToken(h.slice(0, 12), 30))?.revokedAt, 20, 'a second revocation keeps the first time');
      await store.putToken(h, { role: 'tenant', tenant: 'ml' }, 40); // the server re-applies its config at start
      assert.equal((await store.findToken(h))?.revokedAt, 20, 'still revoked');
      assert.equal(await store.revokeToken('000000000000', 50), null);
      const listed = await store.listTokens();
      assert.ok(listed.some((x) => x.id === h.slice(0, 12)));
      assert.ok(!JSON.stringify(listed).includes(h), 'no hash in the list');
    });

    test('last use is written at most once a minute', async () => {
      const h = hashToken('touch-me');
      await store.putToken(h, { role: 'tenant', tenant: 'ml' }, 0);
      await store.touchToken(h, 1_000);
      await store.touchToken(h, 30_000);
      assert.equal((await store.findToken(h))?.lastUsedAt, 1_000);
      await store.touchToken(h, 61_000);
      assert.equal((await store.findToken(h))?.lastUsedAt, 61_000);
    });

    test('a replaced admin or agent token is revoked; the kept one and other roles are not', async () => {
      const [a1, a2, t] = [hashToken('admin-1'), hashToken('admin-2'), hashToken('tenant-x')];
      await store.putToken(a1, { role: 'admin', tenant: null }, 1);
      await store.putToken(t, { role: 'tenant', tenant: 'ml' }, 1);
      await store.putToken(a2, { role: 'admin', tenant: null }, 2);
      assert.deepEqual(await store.revokeRoleExcept('admin', [a2], 3), [a1.slice(0, 12)]);
      assert.equal((await store.findToken(a2))?.revokedAt, null);
      assert.equal((await store.findToken(t))?.revokedAt, null);
      assert.deepEqual(await store.revokeRoleExcept('admin', [a2], 4), []);
    });

    test('a node gets one live credential at bootstrap; a second bootstrap is refused until an admin reset', async () => {
      const [k1, k2, k3] = [hashToken('node-a-1'), hashToken('node-a-2'), hashToken('node-a-3')];
      assert.equal(await store.nodeHasCredential('a'), false);
      assert.equal(await store.bootstrapNode(node('a'), k1, 100), 'registered');
      assert.equal((await store.getNode('a'))?.address, 'http://127.0.0.1:1/a');
      assert.deepEqual(await store.findToken(k1), { id: k1.slice(0, 12), role: 'node', tenant: null, node: 'a', createdAt: 100, expiresAt: null, revokedAt: null, lastUsedAt: null });
      assert.equal(await store.bootstrapNode({ ...node('a'), address: 'http://evil:1' }, k2, 110), 'has-credential');
      assert.equal((await store.getNode('a'))?.address, 'http://127.0.0.1:1/a', 'the refused registration changed nothing');
      assert.equal(await store.findToken(k2), null, 'and stored no token');
      // An offered hash that is already a token's (here a tenant's) takes nothing over.
      const tenantHash = hashToken('touch-me');
      assert.equal(await store.bootstrapNode(node('c'), tenantHash, 115), 'token-taken');
      assert.equal((await store.findToken(tenantHash))?.role, 'tenant');
      assert.equal(await store.getNode('c'), null);
      // Two bootstrap registrations at once: one wins.
      const raced = await Promise.all([store.bootstrapNode(node('b'), hashToken('b1'), 120), store.bootstrapNode(node('b'), hashToken('b2'), 120)]);
      assert.deepEqual([...raced].sort(), ['has-credential', 'registered']);
      assert.deepEqual(await store.resetNodeCredential('a', 130), [k1.slice(0, 12)]);
      assert.deepEqual(await store.resetNodeCredential('a', 131), []);
      assert.equal((await store.findToken(k1))?.revokedAt, 130);
      assert.equal(await store.bootstrapNode(node('a'), k3, 140), 'registered');
      assert.equal(await store.nodeHasCredential('a'), true);
      const types = (await store.listEvents({})).filter((e) => e.nodeId === 'a').map((e) => e.type);
      assert.deepEqual(types, ['node:registered', 'node:credential', 'node:credential-reset', 'node:reregistered', 'node:credential']);
    });
  });
}
