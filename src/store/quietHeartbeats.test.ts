/**
 * Quiet heartbeats (store/heartbeatWrites.ts) and the token cache (store/tokenCache.ts): a
 * heartbeat that changes no task is answered without a transaction of its own and written with
 * others; every reader of this server still sees what was answered, an older waiting write never
 * overwrites a newer one, and a revoked token is refused at once.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pg from 'pg';
import { parseJobSpec, type JobSpec } from '../api/spec.ts';
import { DEFAULT_PRICES } from '../core/energy/pricing.ts';
import { HeartbeatWrites } from './heartbeatWrites.ts';
import { openStore, SqlStore } from './sqlStore.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Store } from './store.ts';
import { storeFactories } from './testing.ts';
import { TokenCache } from './tokenCache.ts';

function spec(): JobSpec {
  const r = parseJobSpec({ name: 'train', tasks: [{ replicas: 1, gpus: 1, command: 'true' }] });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
}

const node = (id: string) => ({ id, address: 'http://127.0.0.1:1', cpuMilli: 32_000, memoryMib: 256_000, gpus: [{ index: 0, model: 'H100', memoryMib: 80_000, uuid: `u-${id}` }], simulated: true });
const tel = (watts: number) => [{ index: 0, utilization: 50, memoryUsedMib: 10, powerWatts: watts }];
/** Reads of one token by its hash. */
const tokenReads = (s: Store): number => [...(s as SqlStore).sqlStats.bySql].filter(([sql]) => /FROM tokens WHERE hash = /.test(sql)).reduce((n, [, c]) => n + c.statements, 0);
/** Transactions other than the quiet heartbeats' shared writes. */
const transactions = (s: Store): number => (s as SqlStore).sqlStats.totals().transactions - (s as SqlStore).heartbeatWrites.flushes;
const written = (s: Store): number => (s as SqlStore).heartbeatWrites.written;

for (const factory of storeFactories()) {
  test(`quiet heartbeats are answered at once and written together: ${factory.name}`, { ...(factory.skip !== undefined ? { skip: factory.skip } : {}) }, async () => {
    const { store, cleanup } = await factory.open();
    try {
      await store.registerNode(node('q1'), 1000);
      await store.registerNode(node('q2'), 1000);
      const [job] = (await store.submit('default', spec(), null, 1000)).jobs;
      await store.applyPlan({ binds: [{ jobId: job?.id ?? '', attempt: 0, tasks: [{ index: 0, node: 'q1', gpus: [0], gpuMilli: 1000 }] }], preemptions: [], pending: [] }, 1000);
      // The first heartbeat that sees the task assigned is quiet (nothing to report yet); the start is not.
      const before = transactions(store);
      const wrote = written(store);
      const desired = (await store.heartbeat('q1', tel(100), [], 1001)) ?? [];
      assert.equal(desired.length, 1);
      const runId = desired[0]?.runId ?? '';
      assert.deepEqual((await store.heartbeat('q2', tel(200), [], 1001)) ?? [], []);
      assert.equal(transactions(store), before, 'no transaction of their own');
      assert.equal((await store.getNode('q1'))?.telemetry[0]?.powerWatts, 100, 'a reader sees what was answered');
      assert.equal((await store.getNode('q2'))?.lastHeartbeat, 1001);
      assert.equal(transactions(store), before + 2, 'the two reads');
      assert.equal(written(store), wrote + 2, 'both heartbeats written (together, unless the window closed between them)');
      await store.heartbeat('q1', tel(110), [{ runId, state: 'running', pid: 3, exitCode: null }], 1002);
      assert.equal((await store.listTasks(job?.id ?? ''))[0]?.state, 'running', 'a start is written in its own transaction');
      // Quiet again: the task runs; the answer still names it.
      const again = (await store.heartbeat('q1', tel(120), [{ runId, state: 'running', pid: 3, exitCode: null }], 1003)) ?? [];
      assert.deepEqual(again.map((d) => [d.runId, d.action]), [[runId, 'run']]);
      // A full heartbeat after a quiet one that waits: the full one stands.
      await store.heartbeat('q1', tel(130), [{ runId, state: 'exited', pid: 3, exitCode: 0 }], 1004);
      const q1 = await store.getNode('q1');
      assert.deepEqual([q1?.telemetry[0]?.powerWatts, q1?.lastHeartbeat], [130, 1004]);
      assert.equal((await store.getJob(job?.id ?? ''))?.state, 'succeeded');
      // A report of a run the node does not hold changes nothing: quiet.
      const t = transactions(store);
      await store.heartbeat('q2', tel(210), [{ runId: `${job?.id ?? ''}.0.0`, state: 'exited', pid: 1, exitCode: 0 }], 1005);
      assert.equal(transactions(store), t);
      assert.equal((await store.getNode('q2'))?.telemetry[0]?.powerWatts, 210);
      // Node expiry reads the quiet heartbeats' times: q1 beat at 1004, q2 at 1005.
      await store.heartbeat('q2', tel(220), [], 1006);
      assert.deepEqual(await store.expireNodes(1006, 20_000), ['q1']);
      // A lost node's heartbeat is never quiet: it comes back in a transaction of its own, with its event.
      await store.heartbeat('q1', tel(130), [], 20_001);
      assert.equal((await store.getNode('q1'))?.state, 'ready');
      assert.ok((await store.listEvents({})).some((e) => e.type === 'node:returned' && e.nodeId === 'q1'));
      assert.equal(await store.heartbeat('ghost', [], [], 20_002), null);
    } finally {
      await cleanup();
    }
  });

  test(`the node list is answered again while only heartbeats changed, never past a drain, a registration or a task's change: ${factory.name}`, { ...(factory.skip !== undefined ? { skip: factory.skip } : {}) }, async () => {
    const { store, cleanup } = await factory.open();
    try {
      await store.registerNode(node('l1'), 1000);
      const t0 = Date.now();
      const first = await store.listNodes();
      await store.heartbeat('l1', tel(300), [], 1001);
      const again = await store.listNodes();
      // Within the second: the same list (its telemetry may be up to 3 s old); a machine too
      // loaded to get here within it reads the list afresh, which is right too.
      if (Date.now() - t0 < 900) assert.equal(again, first, 'a quiet heartbeat alone keeps the list');
      else assert.equal(again[0]?.telemetry[0]?.powerWatts, 300);
      assert.equal((await store.getNode('l1'))?.telemetry[0]?.powerWatts, 300, 'a single node is read afresh');
      await store.setNodeDrained('l1', true, 1002);
      const drained = await store.listNodes();
      assert.notEqual(drained, first);
      assert.equal(drained[0]?.state, 'drained', 'a drain shows at once');
      assert.equal(drained[0]?.telemetry[0]?.powerWatts, 300, 'with the heartbeat written before it');
      await store.setNodeDrained('l1', false, 1003);
      await store.registerNode(node('l2'), 1004);
      assert.deepEqual((await store.listNodes()).map((n) => n.id), ['l1', 'l2'], 'a registration shows at once');
      const [job] = (await store.submit('default', spec(), null, 1005)).jobs;
      await store.applyPlan({ binds: [{ jobId: job?.id ?? '', attempt: 0, tasks: [{ index: 0, node: 'l2', gpus: [0], gpuMilli: 1000 }] }], preemptions: [], pending: [] }, 1005);
      assert.deepEqual((await store.listNodes()).map((n) => n.gpuUsedMilli[0]), [0, 1000], 'a bound task shows at once');
      await store.expireNodes(2000, 2000);
      assert.deepEqual((await store.listNodes()).map((n) => n.state), ['lost', 'lost'], 'lost nodes show at once');
      await store.heartbeat('l1', tel(310), [], 2001);
      assert.equal((await store.listNodes())[0]?.state, 'ready', 'a node back shows at once');
      assert.ok(await store.setNodePower('l1', 'suspended', 2002, 'test'));
      assert.deepEqual((await store.listNodes()).map((n) => [n.state, n.powerAt]), [['suspended', 2002], ['lost', undefined]], 'a suspended node shows at once');
      // A kept list checked beside a snapshot's transaction: both answer (on SQLite a read outside
      // a transaction waits for it, and the snapshot's own read of the active tasks waited for that).
      let timer: NodeJS.Timeout | undefined;
      const stuck = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('listNodes and snapshot wait for each other')), 20_000)));
      try {
        const [snap, list] = await Promise.race([Promise.all([store.snapshot(), store.listNodes(), store.snapshot()]), stuck]);
        assert.equal(snap.nodes.length, 2);
        assert.equal(list.length, 2);
      } finally {
        clearTimeout(timer);
      }
    } finally {
      await cleanup();
    }
  });

  test(`a task's change is answered from the kept node list with the use brought up to date; the unchanged nodes stay the same objects: ${factory.name}`, { ...(factory.skip !== undefined ? { skip: factory.skip } : {}) }, async () => {
    const { store, cleanup } = await factory.open();
    try {
      const counts = (store as SqlStore).nodeListCounts;
      await store.registerNode(node('u1'), 1000);
      await store.registerNode(node('u2'), 1000);
      const t0 = Date.now();
      const first = await store.listNodes();
      const read = counts.read;
      await store.heartbeat('u1', tel(300), [], 1001);
      const [job] = (await store.submit('default', spec(), null, 1002)).jobs;
      await store.applyPlan({ binds: [{ jobId: job?.id ?? '', attempt: 0, tasks: [{ index: 0, node: 'u2', gpus: [0], gpuMilli: 1000 }] }], preemptions: [], pending: [] }, 1002);
      const bound = await store.listNodes();
      assert.deepEqual(bound.map((n) => n.gpuUsedMilli[0]), [0, 1000], 'the bound task shows at once');
      // A machine too loaded to get here within the second reads the list afresh, which is right too.
      if (Date.now() - t0 < 900) {
        assert.equal(counts.read, read, 'no node row was read for it');
        assert.equal(bound[0], first[0], 'the node whose use did not change is the same object');
        assert.notEqual(bound[1], first[1]);
        assert.deepEqual(bound[0]?.telemetry, [], "its heartbeat's telemetry waits for the next read, as a quiet heartbeat's does");
        const statements = (store as SqlStore).sqlStats.totals().statements;
        assert.equal(await store.listNodes(), bound, 'and the list is kept again');
        assert.equal((store as SqlStore).sqlStats.totals().statements, statements, 'without a statement: no task was written since its tasks were read, under a second ago');
      }
    } finally {
      await cleanup();
    }
  });

  test(`an expiry pass that finds no silent node keeps the node list and the heartbeats' view: ${factory.name}`, { ...(factory.skip !== undefined ? { skip: factory.skip } : {}) }, async () => {
    const { store, cleanup } = await factory.open();
    try {
      const sql = store as SqlStore;
      await store.registerNode(node('e1'), 5000);
      await store.heartbeat('e1', tel(300), [], 5001);
      const t0 = Date.now();
      const first = await store.listNodes();
      const views = sql.nodeTasks.counts.reads;
      assert.deepEqual(await store.expireNodes(1000, 6000), [], 'nothing silent since 1000');
      // A machine too loaded to get here within the second reads the list afresh, which is right too.
      if (Date.now() - t0 < 900) assert.equal(await store.listNodes(), first, 'the list is kept');
      await store.heartbeat('e1', tel(300), [], 6001);
      assert.equal(sql.nodeTasks.counts.reads, views, "the quiet heartbeat was answered from the view, not a read of every node's state");
      assert.deepEqual(await store.expireNodes(10_000, 10_000), ['e1']);
      assert.equal((await store.listNodes())[0]?.state, 'lost', 'a node written off shows at once');
    } finally {
      await cleanup();
    }
  });

  test(`past a second the kept node list is answered while it is read again behind the caller; past 3 s it is read first: ${factory.name}`, { ...(factory.skip !== undefined ? { skip: factory.skip } : {}) }, async () => {
    const { store, cleanup } = await factory.open();
    try {
      await store.registerNode(node('s1'), 1000);
      const observed: (readonly unknown[])[] = [];
      store.observeNodeLists((list) => observed.push(list));
      const first = await store.listNodes();
      const t0 = Date.now();
      await store.heartbeat('s1', tel(300), [], 1001);
      await sleep(1100);
      const kept = await store.listNodes();
      // A machine too loaded to get here within 3 s reads the list first, which is right too.
      if (Date.now() - t0 < 2900) assert.equal(kept, first, 'past a second, the kept list is answered');
      let fresh = kept;
      for (let i = 0; i < 100 && fresh[0]?.telemetry[0]?.powerWatts !== 300; i++) {
        await sleep(20);
        fresh = await store.listNodes();
      }
      assert.equal(fresh[0]?.telemetry[0]?.powerWatts, 300, 'the list read behind it is answered next');
      assert.ok(observed.includes(fresh), 'and was shown to the observers as soon as it was read');
      assert.ok(!observed.includes(first), 'a list read before answering is not');
      await store.heartbeat('s1', tel(310), [], 1002);
      await sleep(3100);
      assert.equal((await store.listNodes())[0]?.telemetry[0]?.powerWatts, 310, 'past 3 s the list is read before answering');
    } finally {
      await cleanup();
    }
  });

  test(`a quiet heartbeat's energy counters are committed with the others' before it is answered, and applied once: ${factory.name}`, { ...(factory.skip !== undefined ? { skip: factory.skip } : {}) }, async () => {
    const { store, cleanup } = await factory.open();
    try {
      await store.registerNode(node('e1'), 1000);
      await store.registerNode(node('e2'), 1000);
      const [job] = (await store.submit('default', spec(), null, 1000)).jobs;
      const id = job?.id ?? '';
      await store.applyPlan({ binds: [{ jobId: id, attempt: 0, tasks: [{ index: 0, node: 'e1', gpus: [0], gpuMilli: 1000 }] }], preemptions: [], pending: [] }, 1000);
      const energy = (node: string, seq: number, nodeJ: number, runs: { runId: string; energyJ: number; idleJ: number }[]) => ({ report: { epoch: node, seq, nodeJ, unallocatedJ: nodeJ - runs.reduce((n, r) => n + r.energyJ, 0), runs }, prices: DEFAULT_PRICES });
      // The answer names a run the agent does not have yet: news, so the counters go in a
      // transaction of their own and the answer does not wait for the shared one.
      const news = transactions(store);
      const runId = ((await store.heartbeat('e1', tel(100), [], 1001, energy('e1', 1, 10, []))) ?? [])[0]?.runId ?? '';
      assert.ok(runId);
      assert.equal(transactions(store), news + 1, 'its own transaction');
      assert.equal(await store.recordEnergy('e1', energy('e1', 1, 10, []).report, 1001, DEFAULT_PRICES), false, 'applied before the answer');
      const run = { runId, state: 'running' as const, pid: 3, exitCode: null, startedAt: 1001 };
      await store.heartbeat('e1', tel(100), [run], 1001);
      const before = transactions(store);
      const flushes = (store as SqlStore).heartbeatWrites.flushes;
      // Two nodes' quiet heartbeats with counters at once: neither has a transaction of its own.
      const [a, b] = await Promise.all([store.heartbeat('e1', tel(110), [run], 2000, energy('e1', 2, 150, [{ runId, energyJ: 100, idleJ: 5 }])), store.heartbeat('e2', tel(0), [], 2000, energy('e2', 1, 40, []))]);
      assert.deepEqual([a?.length, b?.length], [1, 0]);
      assert.equal(transactions(store), before, 'no transaction of their own');
      assert.ok((store as SqlStore).heartbeatWrites.flushes > flushes, 'committed before the answers');
      // Answered: applied (the same report again changes nothing).
      assert.equal(await store.recordEnergy('e1', energy('e1', 2, 150, [{ runId, energyJ: 100, idleJ: 5 }]).report, 2500, DEFAULT_PRICES), false);
      assert.equal(await store.recordEnergy('e2', energy('e2', 1, 40, []).report, 2500, DEFAULT_PRICES), false);
      // The same heartbeat resent (its answer was lost), then a newer one: counted once, the newer's difference added.
      await store.heartbeat('e1', tel(110), [run], 2100, energy('e1', 2, 150, [{ runId, energyJ: 100, idleJ: 5 }]));
      await store.heartbeat('e1', tel(120), [run], 3000, energy('e1', 3, 260, [{ runId, energyJ: 180, idleJ: 5 }]));
      // The run's end and its last joules, in the heartbeat's own transaction.
      await store.heartbeat('e1', tel(0), [{ ...run, state: 'exited', exitCode: 0 }], 4000, energy('e1', 4, 300, [{ runId, energyJ: 200, idleJ: 6 }]));
      const [g] = await store.usage({ from: 0, to: 10_000, now: 10_000, by: 'job' });
      assert.equal(g?.key, id);
      assert.equal(g?.energyJ, 200);
      assert.equal(g?.idleJ, 6);
      const nodes = await store.nodeEnergy();
      assert.deepEqual(nodes.map((n) => [n.node, n.energyJ, n.jobsJ]), [['e1', 300, 200], ['e2', 40, 0]]);
    } finally {
      await cleanup();
    }
  });

  test(`a revoked token is refused at once, though known tokens are cached: ${factory.name}`, { ...(factory.skip !== undefined ? { skip: factory.skip } : {}) }, async () => {
    const { store, cleanup } = await factory.open();
    try {
      await store.putToken('hash-a', { role: 'tenant', tenant: 'default' }, 1);
      assert.equal((await store.findToken('hash-a'))?.revokedAt, null);
      const reads = tokenReads(store);
      await store.findToken('hash-a');
      assert.equal(tokenReads(store), reads, 'the second lookup is answered from the cache');
      const id = (await store.findToken('hash-a'))?.id ?? '';
      await store.revokeToken(id, 5);
      assert.equal((await store.findToken('hash-a'))?.revokedAt, 5);
      await store.putToken('hash-n', { role: 'node', tenant: null, node: 'q1' }, 6);
      await store.findToken('hash-n');
      assert.deepEqual(await store.resetNodeCredential('q1', 7), ['hash-n'.slice(0, 12)]);
      assert.equal((await store.findToken('hash-n'))?.revokedAt, 7);
      assert.equal(await store.findToken('unknown'), null);
    } finally {
      await cleanup();
    }
  });
}

describe('HeartbeatWrites', () => {
  test('keeps the latest write per node, writes them together after the window, and counts a failed write', async () => {
    const rows: string[][] = [];
    let fail = false;
    const w = new HeartbeatWrites(
      async (batch) => {
        if (fail) throw new Error('database down');
        rows.push(batch.map((r) => `${r.node}@${r.at}`));
      },
      async () => {},
      20,
    );
    w.add({ node: 'a', at: 1, telemetry: '[]' });
    w.add({ node: 'b', at: 1, telemetry: '[]' });
    w.add({ node: 'a', at: 2, telemetry: '[]' });
    w.add({ node: 'c', at: 2, telemetry: '[]' });
    w.drop('c');
    assert.deepEqual(rows, []);
    // The window's timer writes them (waiting for it at most 5 s: the machine may be busy).
    for (let i = 0; i < 500 && rows.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(rows, [['a@2', 'b@1']]);
    await w.flush();
    assert.deepEqual(rows.length, 1, 'nothing waiting: nothing written');
    fail = true;
    w.add({ node: 'a', at: 3, telemetry: '[]' });
    await w.flush();
    assert.equal(w.failures, 1);
    assert.equal(w.written, 2);
  });

  test('a write with energy counters is answered once committed, every report in order; a failed batch tries each alone', async () => {
    const batches: string[][] = [];
    const alone: string[] = [];
    let failBatch = false;
    const report = (seq: number) => ({ epoch: 'e', seq, nodeJ: seq, unallocatedJ: 0, runs: [] });
    const energy = (node: string, seq: number) => ({ node, at: seq, report: report(seq), prices: DEFAULT_PRICES });
    const w = new HeartbeatWrites(
      async (_rows, e) => {
        if (failBatch) throw new Error('deadlock detected');
        batches.push(e.map((x) => `${x.node}#${x.report.seq}`));
      },
      async (e) => {
        if (e.node === 'bad') throw new Error('cannot apply');
        alone.push(`${e.node}#${e.report.seq}`);
      },
      20,
    );
    let answered = false;
    const first = w.addEnergy({ node: 'a', at: 1, telemetry: '[]' }, energy('a', 1)).then(() => (answered = true));
    const second = w.addEnergy({ node: 'a', at: 2, telemetry: '[]' }, energy('a', 2));
    w.drop('a'); // a full heartbeat of the node: its heartbeat write goes, its reports stay
    await new Promise((r) => setImmediate(r));
    assert.equal(answered, false, 'not answered before the commit');
    await Promise.all([first, second]);
    assert.deepEqual(batches, [['a#1', 'a#2']], 'both reports, in order, in one transaction');
    failBatch = true;
    const good = w.addEnergy({ node: 'b', at: 3, telemetry: '[]' }, energy('b', 3));
    const bad = w.addEnergy({ node: 'bad', at: 3, telemetry: '[]' }, energy('bad', 3));
    await w.flush();
    await good;
    await assert.rejects(bad, /cannot apply/);
    assert.deepEqual(alone, ['b#3'], 'the good report applied on its own');
    assert.deepEqual([w.energyBatched, w.energyAlone, w.failures], [2, 1, 1]);
  });
});

for (const factory of storeFactories()) {
  if (factory.name === 'memory') continue; // one process's private database: no second server
  test(`another server's revocation and change of a token hold here within a quarter of a second: ${factory.name}`, { ...(factory.skip !== undefined ? { skip: factory.skip } : {}) }, async () => {
    const { store, url, cleanup } = await factory.open();
    const other = await openStore(url);
    try {
      await store.putToken('hash-x', { role: 'tenant', tenant: 'alice' }, 1);
      await store.putToken('hash-y', { role: 'tenant', tenant: 'alice' }, 1);
      assert.equal((await store.findToken('hash-x'))?.revokedAt, null);
      assert.equal((await store.findToken('hash-y'))?.tenant, 'alice');
      const id = (await other.findToken('hash-x'))?.id ?? '';
      await other.revokeToken(id, 9);
      await other.putToken('hash-y', { role: 'tenant', tenant: 'bob' }, 9);
      await sleep(300);
      assert.equal((await store.findToken('hash-x'))?.revokedAt, 9, 'revoked at the other server');
      assert.equal((await store.findToken('hash-y'))?.tenant, 'bob', 'given to another tenant at the other server');
      // A last use written elsewhere (once a minute per token) keeps the token cached here.
      await other.touchToken('hash-y', 100_000);
      await sleep(300);
      const read = tokenReads(store);
      await store.findToken('hash-y');
      assert.equal(tokenReads(store), read, 'still cached');
      // Checks are shared and spaced: lookups within the quarter second that follows read nothing.
      const reads = (store as SqlStore).sqlStats.totals().statements;
      const began = performance.now();
      for (let i = 0; i < 20; i++) await store.findToken('hash-y');
      if (performance.now() - began < 200) assert.equal((store as SqlStore).sqlStats.totals().statements, reads);
    } finally {
      await other.close();
      await cleanup();
    }
  });
}

for (const factory of storeFactories().filter((f) => f.name !== 'memory')) {
  test(`an answer keeps every task when the cache forgets an entry while the others are read: ${factory.name}`, { ...(factory.skip !== undefined ? { skip: factory.skip } : {}) }, async () => {
    const { store, url, cleanup } = await factory.open();
    const other = await openStore(url);
    try {
      await store.registerNode({ ...node('k1'), cpuMilli: 64_000 }, 1000);
      const spec = (name: string) => {
        const r = parseJobSpec({ name, tasks: [{ replicas: 1, gpus: 0, cpu: 1, command: 'true' }] });
        if (!r.ok) throw new Error(JSON.stringify(r.errors));
        return r.spec;
      };
      const [a] = (await store.submit('default', spec('a'), null, 1000)).jobs;
      assert.ok(a);
      await store.heartbeat('k1', [], [], 1050);
      assert.ok(await store.applyPlan({ binds: [{ jobId: a.id, attempt: 0, tasks: [{ index: 0, node: 'k1', gpus: [], gpuMilli: 0 }] }], preemptions: [], pending: [] }, 1100));
      assert.equal(((await store.heartbeat('k1', [], [], 1200)) ?? []).length, 1, 'a is answered (and cached)');
      // Another server binds b: this one has no entry for it, so its answer reads b's row. While
      // it does, the cache forgets everything (as a reclaim's clear does).
      const [b] = (await other.submit('default', spec('b'), null, 1300)).jobs;
      assert.ok(b);
      assert.ok(await other.applyPlan({ binds: [{ jobId: b.id, attempt: 0, tasks: [{ index: 0, node: 'k1', gpus: [], gpuMilli: 0 }] }], preemptions: [], pending: [] }, 1310));
      const inner = store as unknown as { db: { all: (sql: string, params?: unknown[]) => Promise<unknown[]> }; runInfo: { clear(): void } };
      const all = inner.db.all.bind(inner.db);
      let cleared = 0;
      inner.db.all = async (sql, params) => {
        if (/SELECT id, name, task_count/.test(sql)) {
          inner.runInfo.clear();
          cleared++;
        }
        return all(sql, params);
      };
      await sleep(1_100); // past the nodes' view's second: this server reads the node's tasks again
      const answer = (await store.heartbeat('k1', [], [], 2500)) ?? [];
      inner.db.all = all;
      assert.equal(cleared, 1, 'the entry was forgotten during the answer');
      assert.deepEqual(answer.map((x) => x.jobName).sort(), ['a', 'b'], 'neither task left out (its agent would stop it)');
    } finally {
      await other.close();
      await cleanup();
    }
  });

  test(`a single task's answer names its own node as its peer, and takes the spec from the open jobs held in memory: ${factory.name}`, { ...(factory.skip !== undefined ? { skip: factory.skip } : {}) }, async () => {
    const { store, url, cleanup } = await factory.open();
    const other = await openStore(url);
    try {
      await store.registerNode({ ...node('s1'), address: 'http://127.0.0.5:1' }, 1000);
      const r = parseJobSpec({ name: 'one', tasks: [{ replicas: 1, gpus: 1, command: 'true', env: { K: 'v' } }] });
      if (!r.ok) throw new Error(JSON.stringify(r.errors));
      const [job] = (await store.submit('default', r.spec, null, 1000)).jobs;
      assert.ok(job);
      await store.snapshot(); // the open jobs read into memory, as a scheduling cycle does
      await store.heartbeat('s1', [], [], 1050); // the node heartbeats before the bind (the answers' cache starts from a first check)
      assert.ok(await store.applyPlan({ binds: [{ jobId: job.id, attempt: 0, tasks: [{ index: 0, node: 's1', gpus: [0], gpuMilli: 1000 }] }], preemptions: [], pending: [] }, 1100));
      const stats = (store as SqlStore).sqlStats;
      stats.reset();
      const [mine] = (await store.heartbeat('s1', [], [], 1200)) ?? [];
      const reads = (re: RegExp): number => [...stats.bySql].filter(([sql]) => re.test(sql)).reduce((n, [, c]) => n + c.statements, 0);
      // Nor the job's row: its bind put what the answer needs in the cache.
      assert.deepEqual([reads(/SELECT id, spec FROM jobs/), reads(/n\.address AS address/), reads(/SELECT address FROM nodes/), reads(/SELECT id, name, task_count/)], [0, 0, 0, 0]);
      assert.equal(mine?.peers.length, 1);
      assert.match(mine?.peers[0] ?? '', /^127\.0\.0\.5:\d+$/);
      assert.deepEqual([mine?.jobName, mine?.gangSize, mine?.env], ['one', 1, { K: 'v' }]);
      // A server that holds no open jobs in memory reads the spec, and answers the same.
      const [theirs] = (await other.heartbeat('s1', [], [], 1250)) ?? [];
      assert.deepEqual(theirs, mine);
      // The task starts (its job's version moves): a check of the changed jobs a quarter of a
      // second later keeps the entry, whose stop grace and power cap are still the job's.
      await store.heartbeat('s1', [], [{ runId: mine?.runId ?? '', state: 'running', pid: 7, exitCode: null }], 1300);
      await sleep(300);
      const [again] = (await store.heartbeat('s1', [], [{ runId: mine?.runId ?? '', state: 'running', pid: 7, exitCode: null }], 1400)) ?? [];
      assert.equal(again?.jobName, 'one');
      assert.equal(reads(/SELECT id, name, task_count/), 0, 'still nothing read of the job');
    } finally {
      await other.close();
      await cleanup();
    }
  });

  test(`another server's immediate reclaim shows in this server's answers within a quarter of a second, a node's new address within a second and a half: ${factory.name}`, { ...(factory.skip !== undefined ? { skip: factory.skip } : {}) }, async () => {
    const { store, url, cleanup } = await factory.open();
    const other = await openStore(url);
    try {
      await store.registerNode(node('r1'), 1000);
      await store.registerNode(node('r2'), 1000);
      const r = parseJobSpec({ name: 'pair', gracePeriodSeconds: 30, tasks: [{ replicas: 2, gpus: 1, command: 'true' }] });
      if (!r.ok) throw new Error(JSON.stringify(r.errors));
      const [job] = (await store.submit('default', r.spec, null, 1000)).jobs;
      assert.ok(job);
      const binds = [{ jobId: job.id, attempt: 0, tasks: [{ index: 0, node: 'r1', gpus: [0], gpuMilli: 1000 }, { index: 1, node: 'r2', gpus: [0], gpuMilli: 1000 }] }];
      assert.ok(await store.applyPlan({ binds, preemptions: [], pending: [] }, 1100));
      const runs = (await store.heartbeat('r1', [], [], 1200)) ?? [];
      const running = runs.map((a) => ({ runId: a.runId, state: 'running' as const, pid: 1, exitCode: null }));
      await store.heartbeat('r1', [], running, 1300);
      const answer = async (at: number) => (await store.heartbeat('r1', [], running, at))?.[0];
      assert.deepEqual([(await answer(1400))?.gracePeriodSeconds, (await answer(1450))?.peers.filter((p) => p.startsWith('127.0.0.1:')).length], [30, 2]);
      // The other server re-registers r2 at a new address …
      await other.registerNode({ ...node('r2'), address: 'http://127.0.0.9:1' }, 1500);
      await sleep(1_300);
      assert.ok((await answer(1600))?.peers.some((p) => p.startsWith('127.0.0.9:')));
      // … and reclaims the job at once: no grace period.
      await other.applyPlan({ binds: [], preemptions: [{ jobId: job.id, reason: 'reclaimed', reclaim: 'immediate', lender: '1' }], pending: [] }, 1700);
      await sleep(300);
      assert.equal((await answer(1800))?.gracePeriodSeconds, 0);
    } finally {
      await other.close();
      await cleanup();
    }
  });
}

describe('TokenCache', () => {
  test('checks for other servers\' writes at most every checkMs, forgets what changed, and keeps no value read across a check that found changes', async () => {
    const c = new TokenCache<string>(60_000, 100, 250);
    const asked: (number | null)[] = [];
    let changes: string[] = [];
    const changed = async (since: number | null) => {
      asked.push(since);
      return { next: asked.length * 10, hashes: changes };
    };
    await c.current(changed, 0);
    c.set('a', 'A', 1, c.readGeneration);
    c.set('b', 'B', 1, c.readGeneration);
    await c.current(changed, 200);
    assert.deepEqual(asked, [null], 'one check within 250 ms');
    changes = ['a'];
    const before = c.readGeneration;
    await Promise.all([c.current(changed, 300), c.current(changed, 301)]);
    assert.deepEqual(asked, [null, 10], 'the next check, shared, from where the last left off');
    assert.equal(c.get('a', 2), undefined, 'changed elsewhere: forgotten');
    assert.equal(c.get('b', 2), 'B');
    c.set('a', 'stale', 3, before);
    assert.equal(c.get('a', 3), undefined, 'read before the check: not kept');
    await c.current(async () => {
      throw new Error('database gone');
    }, 600);
    assert.equal(c.get('b', 4), undefined, 'a failed check forgets everything');
  });


  test('expires entries, and keeps no value read across a clear', () => {
    const c = new TokenCache<string>(100);
    const g = c.readGeneration;
    c.set('h', 'v1', 1000, g);
    assert.equal(c.get('h', 1050), 'v1');
    assert.equal(c.get('h', 1100), undefined, 'expired');
    const stale = c.readGeneration;
    c.clear();
    c.set('h', 'old', 1200, stale);
    assert.equal(c.get('h', 1200), undefined, 'read before the clear: not kept');
    c.set('h', 'new', 1200, c.readGeneration);
    c.update('h', (v) => `${v}+used`);
    assert.equal(c.get('h', 1250), 'new+used');
  });
});

const postgres = storeFactories().find((f) => f.name === 'postgres');
test('quiet heartbeats and lease renewals that lock the same nodes in opposite orders do not deadlock: postgres', { ...(postgres?.skip !== undefined ? { skip: postgres.skip } : {}) }, async () => {
  const { store, url, cleanup } = await (postgres as NonNullable<typeof postgres>).open();
  const other = new pg.Client({ connectionString: url });
  await other.connect();
  try {
    // Enough nodes that PostgreSQL finds two by their index, in the order given, as at full size.
    const ids = Array.from({ length: 300 }, (_, i) => `d${String(i).padStart(3, '0')}`);
    for (const id of ids) await store.registerNode(node(id), 1000);
    // Another transaction holds d150: the heartbeats' shared write stops there, holding the
    // nodes before it; the renewals of d299 and d000 take d299 and wait for d000. Once d150 is
    // let go, the heartbeats reach d299: before the two shared writes took turns, each waited for
    // the other and PostgreSQL aborted one (seen in four full-size benchmark runs).
    await other.query('BEGIN');
    await other.query("SELECT id FROM nodes WHERE id = 'd150' FOR UPDATE");
    const heartbeats = Promise.allSettled(ids.map((id) => store.heartbeat(id, tel(150), [], 2000)));
    await waitingForLocks(url, 1);
    const renewals = Promise.allSettled(['d299', 'd000'].map((id) => store.renewNodeLease(id, 2001)));
    await waitingForLocks(url, 2);
    await other.query('COMMIT');
    const failed = [...(await heartbeats), ...(await renewals)].filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
    assert.deepEqual(failed, []);
    assert.deepEqual((await renewals).map((r) => (r as PromiseFulfilledResult<unknown>).value), ['renewed', 'renewed']);
    assert.equal((await store.getNode('d299'))?.telemetry[0]?.powerWatts, 150);
  } finally {
    await other.end();
    await cleanup();
  }
});

/** Waits until `n` sessions wait for a lock (at most 10 s); a connection of its own, since a transaction keeps one view of pg_stat_activity. */
async function waitingForLocks(url: string, n: number): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    for (let i = 0; i < 500; i++) {
      const r = await c.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()");
      if (Number(r.rows[0]?.n) >= n) return;
      await sleep(20);
    }
    throw new Error(`${n} sessions never waited for a lock`);
  } finally {
    await c.end();
  }
}
