/**
 * The idle monitor's rows (store/idleGpus.ts) go in and out in batches: more rows than one
 * statement takes, a key given twice (the later record wins), and deletions, on every store.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { IdleGpuRecord } from './store.ts';
import { storeFactories } from './testing.ts';

const record = (job: number, gpu: number, since: number): IdleGpuRecord => ({ jobId: String(job), task: 0, attempt: 1, gpu, node: `n${job % 7}`, tenant: job % 2 ? 'a' : 'b', gpuMilli: 1000, since, lastAt: since + 10, crossedAt: gpu === 0 ? since + 5 : null });

for (const factory of storeFactories()) {
  test(`idle GPU rows are saved and removed in batches: ${factory.name}`, { ...(factory.skip !== undefined ? { skip: factory.skip } : {}) }, async () => {
    const { store, cleanup } = await factory.open();
    try {
      // 125 jobs × 2 GPUs: 250 rows, over two statements' worth; job 3's GPU 1 twice, the later wins.
      const rows = Array.from({ length: 125 }, (_, j) => [record(j + 1, 0, 1000), record(j + 1, 1, 1000)]).flat();
      await store.saveIdleGpus([...rows, record(3, 1, 4000)], [], [{ type: 'job:idle', jobId: '3', message: 'idle' }], 5000);
      const saved = await store.listIdleGpus();
      assert.equal(saved.length, 250);
      assert.equal(saved.find((r) => r.jobId === '3' && r.gpu === 1)?.since, 4000, 'the later record of a key wins');
      assert.deepEqual(saved.find((r) => r.jobId === '7' && r.gpu === 0), record(7, 0, 1000));
      assert.equal((await store.listIdleGpus({ tenant: 'a' })).length, 126);
      // Remove 150 (jobs 1-75) and update the rest in one save.
      const gone = rows.filter((r) => Number(r.jobId) <= 75);
      const kept = rows.filter((r) => Number(r.jobId) > 75).map((r) => ({ ...r, lastAt: 9000 }));
      await store.saveIdleGpus(kept, gone, [], 9000);
      const after = await store.listIdleGpus();
      assert.equal(after.length, 100);
      assert.ok(after.every((r) => Number(r.jobId) > 75 && r.lastAt === 9000));
      assert.equal((await store.listEvents({ jobId: '3' })).filter((e) => e.type === 'job:idle').length, 1, 'the event is written with the rows');
    } finally {
      await cleanup();
    }
  });
}
