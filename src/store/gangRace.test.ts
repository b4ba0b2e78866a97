/**
 * Found by the fault soak on PostgreSQL: the two tasks of a gang, on two nodes, end at the same
 * moment; each node's heartbeat records its own task and judges the job. Under READ COMMITTED
 * each transaction saw the other's task still running, so the job stayed `running` for ever.
 * Runs on every adapter (PostgreSQL is where the transactions overlap).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseJobSpec } from '../api/spec.ts';
import { storeFactories } from './testing.ts';

const node = (id: string) => ({
  id, address: 'http://127.0.0.1:9', cpuMilli: 64000, memoryMib: 512 * 1024, simulated: true,
  gpus: Array.from({ length: 8 }, (_, i) => ({ index: i, model: 'H100', memoryMib: 81920, uuid: `GPU-${id}-${i}` })),
});

for (const factory of storeFactories()) {
  test(`${factory.name}: gangs whose tasks end at once on two nodes all finish`, { skip: factory.skip ?? false }, async () => {
    const { store, cleanup } = await factory.open();
    try {
      await store.registerNode(node('a'), 1);
      await store.registerNode(node('b'), 1);
      const parsed = parseJobSpec({ name: 'gang', tasks: [{ replicas: 2, gpus: 1, command: 'true' }] });
      if (!parsed.ok) throw new Error('spec');
      const ids: string[] = [];
      for (let round = 0; round < 8; round++) {
        const { jobs } = await store.submit('ml', parsed.spec, null, 10 + round);
        const id = jobs[0]?.id ?? '';
        ids.push(id);
        assert.equal(await store.applyPlan({ binds: [{ jobId: id, attempt: 0, tasks: [{ index: 0, node: 'a', gpus: [0], gpuMilli: 1000 }, { index: 1, node: 'b', gpus: [0], gpuMilli: 1000 }] }], preemptions: [], pending: [] }, 20 + round), true);
        const [ra, rb] = await Promise.all(['a', 'b'].map(async (n) => ((await store.heartbeat(n, [], [], 30 + round)) ?? []).find((d) => d.jobId === id)?.runId ?? ''));
        await store.heartbeat('a', [], [{ runId: ra ?? '', state: 'running', pid: 1, exitCode: null }], 40 + round);
        await store.heartbeat('b', [], [{ runId: rb ?? '', state: 'running', pid: 2, exitCode: null }], 40 + round);
        // Both ends reported at the same moment, from the two nodes.
        await Promise.all([
          store.heartbeat('a', [], [{ runId: ra ?? '', state: 'exited', pid: 1, exitCode: 0 }], 50 + round),
          store.heartbeat('b', [], [{ runId: rb ?? '', state: 'exited', pid: 2, exitCode: 0 }], 50 + round),
        ]);
      }
      const states = await Promise.all(ids.map(async (id) => (await store.getJob(id))?.state));
      assert.deepEqual(states, ids.map(() => 'succeeded'));
    } finally {
      await cleanup();
    }
  });
}
