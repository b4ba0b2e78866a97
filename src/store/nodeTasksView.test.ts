/**
 * The quiet heartbeats' view of the nodes (store/nodeTasksView.ts): once read, a quiet heartbeat
 * reads no task; this server's binds, stops and expiries are read before the next answer; another
 * server's reach it within the view's age.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { parseJobSpec, type JobSpec } from '../api/spec.ts';
import { NodeTasksView } from './nodeTasksView.ts';
import type { SqlDb } from './sqlDb.ts';
import { openStore, type SqlStore } from './sqlStore.ts';
import type { Store } from './store.ts';
import { storeFactories } from './testing.ts';

function spec(): JobSpec {
  const r = parseJobSpec({ name: 'train', tasks: [{ replicas: 1, gpus: 1, command: 'true' }] });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
}

const node = (id: string) => ({ id, address: 'http://127.0.0.1:1', cpuMilli: 32_000, memoryMib: 256_000, gpus: [{ index: 0, model: 'H100', memoryMib: 80_000, uuid: `u-${id}` }], simulated: true });
/** Statements so far that read one node's tasks. */
const nodeReads = (s: Store): number => [...(s as SqlStore).sqlStats.bySql].filter(([sql]) => /^\s*SELECT/i.test(sql) && /node_id = (n\.id|\$1)/.test(sql)).reduce((n, [, c]) => n + c.statements, 0);
const bind = (jobId: string, nodeId: string) => ({ binds: [{ jobId, attempt: 0, tasks: [{ index: 0, node: nodeId, gpus: [0], gpuMilli: 1000 }] }], preemptions: [], pending: [] });

for (const factory of storeFactories()) {
  const skip = factory.skip !== undefined ? { skip: factory.skip } : {};

  test(`quiet heartbeats share one read of the nodes; this server's binds, stops and expiry are read before the next answer: ${factory.name}`, skip, async () => {
    const { store, cleanup } = await factory.open();
    const view = (store as SqlStore).nodeTasks;
    try {
      await store.registerNode(node('v1'), 1000);
      await store.registerNode(node('v2'), 1000);
      const [a, b] = [(await store.submit('default', spec(), null, 1000)).jobs[0]?.id ?? '', (await store.submit('default', spec(), null, 1000)).jobs[0]?.id ?? ''];
      await store.applyPlan(bind(a, 'v1'), 1000);
      const run = (await store.heartbeat('v1', [], [], 1001))?.[0]?.runId ?? '';
      assert.ok(run, 'the bound task is answered');
      await store.heartbeat('v1', [], [{ runId: run, state: 'running', pid: 1, exitCode: null }], 1002); // its start: the full path
      assert.deepEqual(await store.heartbeat('v2', [], [], 1002), []);
      const reads = nodeReads(store);
      const viewReads = view.counts.reads;
      const began = performance.now();
      for (let i = 0; i < 20; i++) {
        assert.deepEqual((await store.heartbeat('v1', [], [{ runId: run, state: 'running', pid: 1, exitCode: null }], 1003 + i))?.map((t) => [t.runId, t.action]), [[run, 'run']]);
        assert.deepEqual(await store.heartbeat('v2', [], [], 1003 + i), []);
      }
      assert.equal(nodeReads(store), reads, "40 quiet heartbeats read no node's tasks");
      const allowed = 1 + Math.floor((performance.now() - began) / 250); // one shared read each time the view's age passes
      assert.ok(view.counts.reads - viewReads <= allowed, `${view.counts.reads - viewReads} shared reads, at most ${allowed}`);
      // A bind of this server is answered at once.
      await store.applyPlan(bind(b, 'v2'), 1100);
      assert.deepEqual((await store.heartbeat('v2', [], [], 1101))?.map((t) => [t.jobId, t.action]), [[b, 'run']]);
      // So is a cancel.
      await store.cancel(a, 'alice', 1102);
      assert.deepEqual((await store.heartbeat('v1', [], [{ runId: run, state: 'running', pid: 1, exitCode: null }], 1103))?.map((t) => [t.runId, t.action]), [[run, 'stop']]);
      // A node this server wrote off takes the full path at once: its run is not answered, and it stays lost while it holds it.
      await store.heartbeat('v2', [], [], 30_000);
      assert.deepEqual(await store.expireNodes(20_000, 30_001), ['v1']);
      const after = (await store.heartbeat('v1', [], [{ runId: run, state: 'running', pid: 1, exitCode: null }], 30_002)) ?? [];
      assert.equal(after.some((t) => t.runId === run && t.action === 'run'), false);
      assert.equal((await store.getNode('v1'))?.state, 'lost');
      assert.equal(await store.heartbeat('ghost', [], [], 30_003), null, 'an unknown node');
    } finally {
      await cleanup();
    }
  });

  test(`a heartbeat's reports and a plan's binds hold back only their own nodes' answers (and the gang peers stopped): ${factory.name}`, skip, async () => {
    const { store, cleanup } = await factory.open();
    const view = (store as SqlStore).nodeTasks;
    const gang = parseJobSpec({ name: 'pair', tasks: [{ replicas: 2, gpus: 1, command: 'true' }] });
    if (!gang.ok) throw new Error(JSON.stringify(gang.errors));
    try {
      for (const id of ['g1', 'g2', 'g3']) await store.registerNode(node(id), 1000);
      const [single] = (await store.submit('default', spec(), null, 1000)).jobs;
      const [pair] = (await store.submit('default', gang.spec, null, 1000)).jobs;
      await store.applyPlan({ binds: [{ jobId: single?.id ?? '', attempt: 0, tasks: [{ index: 0, node: 'g1', gpus: [0], gpuMilli: 1000 }] }, { jobId: pair?.id ?? '', attempt: 0, tasks: [{ index: 0, node: 'g2', gpus: [0], gpuMilli: 1000 }, { index: 1, node: 'g3', gpus: [0], gpuMilli: 1000 }] }], preemptions: [], pending: [] }, 1000);
      const runOn = async (id: string, at: number): Promise<string> => (await store.heartbeat(id, [], [], at))?.[0]?.runId ?? '';
      const [r1, r2, r3] = [await runOn('g1', 1001), await runOn('g2', 1001), await runOn('g3', 1001)];
      const running = (runId: string) => [{ runId, state: 'running' as const, pid: 1, exitCode: null }];
      for (const [id, run] of [['g1', r1], ['g2', r2], ['g3', r3]] as const) await store.heartbeat(id, [], running(run), 1002);
      // g1's task ends (the full path): g2's and g3's next quiet answers need no read after it.
      await store.heartbeat('g1', [], [{ runId: r1, state: 'exited', pid: 1, exitCode: 0 }], 1003);
      const waited = view.counts.waited;
      assert.deepEqual((await store.heartbeat('g2', [], running(r2), 1004))?.map((t) => t.action), ['run']);
      assert.deepEqual((await store.heartbeat('g3', [], running(r3), 1004))?.map((t) => t.action), ['run']);
      assert.equal(view.counts.waited, waited, "another node's report did not hold back their answers");
      // g1's own next answer does wait for a read after its report: its ended run is gone.
      assert.deepEqual(await store.heartbeat('g1', [], [], 1005), []);
      assert.equal(view.counts.waited, waited + 1);
      // A plan binding on g1 alone holds back g1's next answer, not g3's.
      const [later] = (await store.submit('default', spec(), null, 1005)).jobs;
      await store.applyPlan(bind(later?.id ?? '', 'g1'), 1005);
      assert.deepEqual((await store.heartbeat('g3', [], running(r3), 1005))?.map((t) => t.action), ['run']);
      assert.equal(view.counts.waited, waited + 1, 'a bind on g1 did not hold back g3');
      assert.deepEqual((await store.heartbeat('g1', [], [], 1005))?.map((t) => t.jobId), [later?.id]);
      assert.equal(view.counts.waited, waited + 2);
      // The gang's task on g2 fails: settle stops its peer on g3, whose next answer must say so.
      await store.heartbeat('g2', [], [{ runId: r2, state: 'exited', pid: 1, exitCode: 3 }], 1006);
      assert.deepEqual((await store.heartbeat('g3', [], running(r3), 1007))?.map((t) => [t.runId, t.action]), [[r3, 'stop']]);
    } finally {
      await cleanup();
    }
  });

  test(`a read that takes longer than the view's age still answers the heartbeats that waited for it: ${factory.name}`, skip, async () => {
    const { store, cleanup } = await factory.open();
    const db = (store as unknown as { db: SqlDb }).db;
    try {
      await store.registerNode(node('s1'), 1000);
      // Every look at the clock is 1.1 s later: each read takes longer than the view's age (1 s) by the time it ends.
      let t = 0;
      const view = new NodeTasksView(250, () => (t += 1100));
      for (let i = 0; i < 3; i++) assert.deepEqual(await view.of(db, 's1'), { state: 'ready', address: node('s1').address, tasks: [] });
      assert.equal(await view.of(db, 'ghost'), null);
      assert.equal(view.counts.waited, 4);
    } finally {
      await cleanup();
    }
  });

  if (factory.name === 'memory') continue; // one process's private database: no second server
  test(`another server's binds and expiry reach this server's quiet heartbeats within a second: ${factory.name}`, skip, async () => {
    const { store, url, cleanup } = await factory.open();
    const other = await openStore(url);
    try {
      await store.registerNode(node('w1'), 1000);
      assert.deepEqual(await store.heartbeat('w1', [], [], 1001), []);
      // A node registered at the other server is known here at once (read for itself).
      await other.registerNode(node('w2'), 1001);
      assert.deepEqual(await store.heartbeat('w2', [], [], 1002), []);
      const [job] = (await other.submit('default', spec(), null, 1002)).jobs;
      await other.applyPlan(bind(job?.id ?? '', 'w1'), 1003);
      await sleep(1100); // past the age at which the view is read before an answer (1 s)
      const run = (await store.heartbeat('w1', [], [], 1004))?.[0]?.runId ?? '';
      assert.ok(run, "the other server's bind is answered");
      await store.heartbeat('w1', [], [{ runId: run, state: 'running', pid: 1, exitCode: null }], 1005);
      assert.equal((await other.getJob(job?.id ?? ''))?.state, 'running');
      // The other server writes the node off; once the view's age passed, the run is no longer answered.
      await store.heartbeat('w2', [], [], 40_000);
      await (store as SqlStore).heartbeatWrites.flush();
      assert.deepEqual(await other.expireNodes(20_000, 40_001), ['w1']);
      await sleep(1100);
      const after = (await store.heartbeat('w1', [], [{ runId: run, state: 'running', pid: 1, exitCode: null }], 40_002)) ?? [];
      assert.equal(after.some((t) => t.runId === run && t.action === 'run'), false, 'the written-off run is not answered');
      assert.equal((await other.getNode('w1'))?.state, 'lost', 'and the node stays lost while it holds it');
    } finally {
      await other.close();
      await cleanup();
    }
  });
}
