/**
 * The energy stages' facts in the store (migration 011), on every adapter: node power states move
 * only along Slurm's power-saving transitions, never suspending a node with an active task; a
 * suspended or resuming node takes no bind whatever the plan says; a bind's power cap is kept on
 * the job, handed to the agent with its tasks and cleared for an attempt that runs without one.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseJobSpec } from '../api/spec.ts';
import type { Store } from './store.ts';
import { storeFactories } from './testing.ts';

const node = (id: string) => ({ id, address: 'http://127.0.0.2:9100', cpuMilli: 16000, memoryMib: 65536, gpus: [0, 1].map((i) => ({ index: i, model: 'H100', memoryMib: 81920, uuid: `GPU-${id}-${i}` })), simulated: true });
const spec = (input: Record<string, unknown>) => {
  const r = parseJobSpec(input);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
};

for (const factory of storeFactories()) {
  describe(`node power and power caps: ${factory.name}`, { skip: factory.skip }, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    before(async () => {
      ({ store, cleanup } = await factory.open());
      await store.ensureTenant('ml', 1);
      for (const id of ['p1', 'p2']) await store.registerNode(node(id), 1);
    });
    after(async () => cleanup());
    const stateOf = async (id: string) => (await store.getNode(id))?.state;

    test('suspend, resume and back, each only from where it may come, with an event each', async () => {
      assert.equal(await store.setNodePower('p1', 'resuming', 10, 'x'), false, 'a ready node is not resumed');
      assert.equal(await store.setNodePower('p1', 'lost', 10, 'x'), false, 'only a resuming node is marked down this way');
      assert.equal(await store.setNodePower('p1', 'suspended', 100, 'empty: suspended (dry run)'), true);
      const asleep = await store.getNode('p1');
      assert.deepEqual([asleep?.state, asleep?.powerAt], ['suspended', 100]);
      assert.equal(await store.setNodePower('p1', 'suspended', 101, 'again'), false);
      assert.equal(await store.setNodePower('p1', 'resuming', 200, 'work needs it'), true);
      assert.deepEqual([await stateOf('p1'), (await store.getNode('p1'))?.powerAt], ['resuming', 200]);
      assert.equal(await store.setNodePower('p1', 'ready', 300, 'back after 1.0 s'), true);
      const back = await store.getNode('p1');
      assert.deepEqual([back?.state, back?.powerAt], ['ready', undefined]);
      const events = (await store.listEvents({ limit: 1000 })).filter((e) => e.nodeId === 'p1').map((e) => [e.type, e.message]);
      assert.deepEqual(events.slice(-3), [['node:suspended', 'empty: suspended (dry run)'], ['node:resuming', 'work needs it'], ['node:ready', 'back after 1.0 s']]);
      // A node that never came back is down, and its next heartbeat makes it ready like any lost node.
      await store.setNodePower('p1', 'suspended', 400, 's');
      await store.setNodePower('p1', 'resuming', 500, 'r');
      assert.equal(await store.setNodePower('p1', 'lost', 600, 'did not come back'), true);
      assert.equal(await stateOf('p1'), 'lost');
      await store.heartbeat('p1', [], [], 700);
      assert.equal(await stateOf('p1'), 'ready');
      // A suspended node's silence does not make it lost (it is powered down).
      await store.setNodePower('p1', 'suspended', 800, 's');
      assert.deepEqual(await store.expireNodes(10_000, 10_000), ['p2']);
      assert.equal(await stateOf('p1'), 'suspended');
      await store.heartbeat('p2', [], [], 10_001);
      await store.setNodePower('p1', 'resuming', 10_002, 'r');
      await store.setNodePower('p1', 'ready', 10_003, 'b');
    });

    test('a node with an active task is never suspended, and an asleep node takes no bind', async () => {
      const job = (await store.submit('ml', spec({ name: 'one', tasks: [{ gpus: 1, command: 'x' }] }), null, 20_000)).jobs[0];
      assert.ok(job);
      assert.ok(await store.setNodePower('p2', 'suspended', 20_001, 's'));
      // The plan (from a stale snapshot, say) binds to the suspended node: refused, with the reason.
      assert.ok(await store.applyPlan({ binds: [{ jobId: job.id, attempt: 0, tasks: [{ index: 0, node: 'p2', gpus: [0], gpuMilli: 1000 }] }], preemptions: [], pending: [] }, 20_002));
      const refused = await store.getJob(job.id);
      assert.equal(refused?.state, 'pending');
      assert.match(refused?.reason ?? '', /^waiting-for-node-power-up: node p2 is powered down/);
      assert.ok(await store.applyPlan({ binds: [{ jobId: job.id, attempt: 0, tasks: [{ index: 0, node: 'p1', gpus: [0], gpuMilli: 1000 }], powerCapWatts: 533 }], preemptions: [], pending: [] }, 20_003));
      assert.equal(await store.setNodePower('p1', 'suspended', 20_004, 's'), false, 'its task keeps p1 up');
      assert.equal(await stateOf('p1'), 'ready');
    });

    test("a bind's power cap is the job's, goes to the agent with its tasks, and an uncapped attempt clears it", async () => {
      const [job] = await store.listJobs({ states: ['admitted'], limit: 10 });
      assert.ok(job);
      assert.equal(job.powerCapWatts, 533);
      const assigned = await store.heartbeat('p1', [], [], 20_010);
      assert.equal(assigned?.find((a) => a.jobId === job.id)?.powerCapWatts, 533);
      const events = await store.listEvents({ jobId: job.id, limit: 10 });
      assert.match(events.find((e) => e.type === 'job:admitted')?.message ?? '', /placed 0→p1\[0\], power cap 533 W per GPU/);
      // Preempted and placed again without a cap: the earlier attempt's does not carry over.
      assert.ok(await store.applyPlan({ binds: [], preemptions: [{ jobId: job.id, reason: 'test' }], pending: [] }, 20_020));
      await store.heartbeat('p1', [], [{ runId: assigned?.find((a) => a.jobId === job.id)?.runId as string, state: 'exited', pid: null, exitCode: 143 }], 20_021);
      const requeued = await store.getJob(job.id);
      assert.equal(requeued?.state, 'pending');
      assert.ok(await store.applyPlan({ binds: [{ jobId: job.id, attempt: 1, tasks: [{ index: 0, node: 'p1', gpus: [1], gpuMilli: 1000 }], powerCapWatts: null }], preemptions: [], pending: [] }, 20_030));
      const again = await store.getJob(job.id);
      assert.deepEqual([again?.state, again?.powerCapWatts], ['admitted', undefined]);
      assert.equal((await store.heartbeat('p1', [], [], 20_031))?.find((a) => a.jobId === job.id)?.powerCapWatts, undefined);
    });
  });
}
