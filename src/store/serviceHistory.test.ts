/**
 * What the store keeps of services' imported rate histories (migration 013), on every adapter:
 * a PUT replaces the points and bumps the revision, summaries come without points, only an open
 * service has one, and the import is an event on the service.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseJobSpec, type JobSpec } from '../api/spec.ts';
import type { Store } from './store.ts';
import { storeFactories } from './testing.ts';

const spec = (input: Record<string, unknown>): JobSpec => {
  const r = parseJobSpec(input);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
};

for (const factory of storeFactories()) {
  describe(`service history: ${factory.name}`, { skip: factory.skip }, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    before(async () => {
      ({ store, cleanup } = await factory.open());
      await store.ensureTenant('ml', 1);
    });
    after(async () => cleanup());

    test('a history is put, replaced with a new revision, summarised without its points, and read back exactly', async () => {
      const svc = (await store.submit('ml', spec({ name: 'chat', kind: 'service', service: { maxReplicas: 4 }, tasks: [{ gpus: 1, command: 'serve' }] }), null, 1000)).jobs[0];
      const other = (await store.submit('ml', spec({ name: 'train', tasks: [{ gpus: 1, command: 'train' }] }), null, 1000)).jobs[0];
      assert.ok(svc && other);
      assert.equal((await store.serviceHistorySummaries([svc.id])).size, 0);
      assert.equal(await store.serviceHistory(svc.id), null);
      const points: [number, number][] = [[1733400000.5, 0.25], [1733400060, 1.125], [1733400120, 0]];
      const first = await store.putServiceHistory(svc.id, points, 'tenant:ml', 1100);
      assert.deepEqual(first, { points: 3, fromSeconds: 1733400000.5, toSeconds: 1733400120, revision: 1, updatedAt: 1100, updatedBy: 'tenant:ml' });
      assert.deepEqual((await store.serviceHistory(svc.id))?.points, points);
      const second = await store.putServiceHistory(svc.id, [[10, 1], [20, 2]], 'admin', 1200);
      assert.deepEqual([second?.revision, second?.points, second?.fromSeconds], [2, 2, 10]);
      const summaries = await store.serviceHistorySummaries([svc.id, other.id, 'x']);
      assert.deepEqual([...summaries.keys()], [svc.id]);
      assert.equal(summaries.get(svc.id)?.revision, 2);
      assert.deepEqual((await store.serviceHistory(svc.id))?.points, [[10, 1], [20, 2]]);
      const events = (await store.listEvents({ jobId: svc.id })).filter((e) => e.type === 'service:history');
      assert.equal(events.length, 2);
      assert.match(events[0]?.message ?? '', /imported by tenant:ml: 3 points over 0\.0 h \(revision 1\)/);
      assert.equal(await store.putServiceHistory(other.id, points, 'tenant:ml', 1300), null, 'not a service');
      assert.equal(await store.putServiceHistory('nope', points, 'tenant:ml', 1300), null);
      await store.cancel(svc.id, 'tenant:ml', 1400);
      assert.equal(await store.putServiceHistory(svc.id, points, 'tenant:ml', 1500), null, 'no longer open');
    });
  });
}
