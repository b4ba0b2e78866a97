/**
 * A node joining whose name sorts before the others shifts every node's index: running jobs
 * cached from the previous cycle must not keep their old indices (found by test/fuzz/agent.test.ts:
 * registering node "NaN" beside n1 made every later cycle fail, "does not fit where it runs").
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startServer } from '../server.ts';

test('a node joining ahead of the others in name order does not stall the scheduling loop', async () => {
  const logged: string[] = [];
  const server = await startServer({ log: (l) => logged.push(l), dataDir: '/nonexistent', databaseUrl: 'memory:', port: 0, adminToken: 'admin-token-123', agentToken: 'agent-token-123', tickMs: 3_600_000, nodeLeaseMs: 3_600_000 });
  try {
    await server.loop.stop();
    const node = (id: string, gpus: number) => ({ id, address: `http://127.0.0.1:1/${id}`, cpuMilli: 8000, memoryMib: 65536, gpus: Array.from({ length: gpus }, (_, index) => ({ index, model: 'H100', memoryMib: 1, uuid: `${id}-${index}` })), simulated: true });
    await server.store.registerNode(node('n1', 2), 1);
    const jobs = [];
    for (const name of ['a', 'b']) jobs.push((await server.store.submit('default', { name, queue: 'default', priority: 0, kind: 'batch', preemptible: true, checkpoint: false, array: 1, gracePeriodSeconds: 1, groups: [{ name: 'main', replicas: 1, gpuCount: 1, gpuMilli: 1000, gpuModels: [], cpuMilli: 4000, memoryMib: 1024, command: ['true'], env: {} }] }, null, 2)).jobs[0]?.id ?? '');
    await server.loop.tick();
    assert.deepEqual(await Promise.all(jobs.map(async (id) => (await server.store.getJob(id))?.state)), ['admitted', 'admitted']);
    await server.store.submit('default', { name: 'waits', queue: 'default', priority: 0, kind: 'batch', preemptible: true, checkpoint: false, array: 1, gracePeriodSeconds: 1, groups: [{ name: 'main', replicas: 1, gpuCount: 2, gpuMilli: 1000, gpuModels: [], cpuMilli: 1000, memoryMib: 1024, command: ['true'], env: {} }] }, null, 3);
    await server.loop.tick();
    await server.store.registerNode(node('A', 1), 4); // sorts before n1: n1's index moves
    await server.loop.tick();
    await server.loop.tick();
    assert.deepEqual(logged.filter((l) => l.startsWith('scheduling loop')), []);
  } finally {
    await server.close();
  }
});
