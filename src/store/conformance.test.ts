/** The Store conformance suite: the same behaviour on every adapter (memory, SQLite, PostgreSQL). */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseJobSpec, type JobSpec } from '../api/spec.ts';
import type { Store } from './store.ts';
import { APPLY_CHUNK } from './sqlStore.ts';
import { storeFactories } from './testing.ts';

function spec(over: Record<string, unknown> = {}): JobSpec {
  const r = parseJobSpec({ name: 'train', tasks: [{ replicas: 2, gpus: 1, command: 'true' }], ...over });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
}

const node = (id: string, gpus = 4) => ({
  id,
  address: `http://127.0.0.1:${9000 + id.length}`,
  cpuMilli: 32000,
  memoryMib: 256 * 1024,
  gpus: Array.from({ length: gpus }, (_, i) => ({ index: i, model: 'H100', memoryMib: 81920, uuid: `GPU-${id}-${i}` })),
  simulated: true,
});

for (const factory of storeFactories()) {
  // A skipped suite would not count in `# skipped`: one skipped test says why instead.
  if (factory.skip !== undefined) {
    test(`store conformance: ${factory.name}`, { skip: factory.skip }, () => {});
    continue;
  }
  describe(`store conformance: ${factory.name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    before(async () => {
      const opened = await factory.open();
      store = opened.store;
      cleanup = opened.cleanup;
    });
    after(async () => cleanup());

    test('migrations are idempotent', async () => {
      await store.migrate();
      assert.deepEqual(await store.listJobs({}), []);
    });

    test('tokens, tenants and queues round-trip', async () => {
      await store.ensureTenant('ml', 1);
      await store.ensureTenant('ml', 2);
      assert.deepEqual(await store.listTenants(), ['ml']);
      await store.putToken('h1', { role: 'tenant', tenant: 'ml' }, 1);
      assert.deepEqual(await store.findToken('h1'), { id: 'h1', role: 'tenant', tenant: 'ml', node: null, createdAt: 1, expiresAt: null, revokedAt: null, lastUsedAt: null });
      assert.equal(await store.findToken('nope'), null);
      await store.putQueue({ name: 'default', gpuQuota: 8, borrowingLimit: null }, 1);
      await store.putQueue({ name: 'default', gpuQuota: 16, borrowingLimit: 4 }, 2);
      assert.deepEqual(await store.listQueues(), [{ name: 'default', gpuQuota: 16, borrowingLimit: 4 }]);
    });

    test('queue owners persist: tenants round-trip, and a queue put without them goes back to the rule by name', async () => {
      await store.putQueue({ name: 'bound', gpuQuota: 2, borrowingLimit: 0, tenants: ['ml', 'vision'] }, 3);
      assert.deepEqual((await store.listQueues()).find((q) => q.name === 'bound'), { name: 'bound', gpuQuota: 2, borrowingLimit: 0, tenants: ['ml', 'vision'] });
      await store.putQueue({ name: 'bound', gpuQuota: 2, borrowingLimit: 0, tenants: [] }, 4);
      assert.deepEqual((await store.listQueues()).find((q) => q.name === 'bound')?.tenants, []);
      await store.putQueue({ name: 'bound', gpuQuota: 2, borrowingLimit: 0 }, 5);
      assert.deepEqual((await store.listQueues()).find((q) => q.name === 'bound'), { name: 'bound', gpuQuota: 2, borrowingLimit: 0 });
    });

    test('a client key reused with a different spec is a conflict that creates nothing', async () => {
      const a = await store.submit('keys', spec({ name: 'k' }), 'ck', 20);
      const same = await store.submit('keys', spec({ name: 'k' }), 'ck', 21);
      const other = await store.submit('keys', spec({ name: 'k', priority: 3 }), 'ck', 22);
      assert.deepEqual([a.created, a.conflict, same.created, same.conflict, other.created, other.conflict], [true, false, false, false, false, true]);
      assert.equal(other.jobs[0]?.id, a.jobs[0]?.id);
      assert.equal((await store.listJobs({ tenant: 'keys' })).length, 1);
      await store.cancel(a.jobs[0]?.id ?? '', 'test', 23);
    });

    test('jobs and events page forward and backward by id', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push((await store.submit('pages', spec({ name: `p${i}` }), null, 30 + i)).jobs[0]?.id ?? '');
      const list = async (f: Parameters<Store['listJobs']>[0]) => (await store.listJobs({ tenant: 'pages', ...f })).map((j) => j.id);
      assert.deepEqual(await list({ order: 'desc', limit: 2 }), [ids[3], ids[2]]);
      assert.deepEqual(await list({ order: 'desc', beforeId: Number(ids[2]) }), [ids[1], ids[0]]);
      assert.deepEqual(await list({ afterId: Number(ids[0]), beforeId: Number(ids[3]) }), [ids[1], ids[2]]);
      const events = await store.listEvents({ tenant: 'pages', order: 'desc', limit: 3 });
      assert.deepEqual(events.map((e) => e.jobId), [ids[3], ids[2], ids[1]]);
      assert.deepEqual((await store.listEvents({ tenant: 'pages', beforeId: events[2]?.id ?? 0 })).map((e) => e.jobId), [ids[0]]);
      for (const id of ids) await store.cancel(id, 'test', 40);
    });

    test('submission with a client key is idempotent; arrays make one job per element', async () => {
      const a = await store.submit('ml', spec(), 'key-1', 10);
      const b = await store.submit('ml', spec(), 'key-1', 11);
      assert.equal(a.created, true);
      assert.equal(b.created, false);
      assert.equal(b.jobs[0]?.id, a.jobs[0]?.id);
      const other = await store.submit('other', spec(), 'key-1', 12);
      assert.notEqual(other.jobs[0]?.id, a.jobs[0]?.id, 'client keys are per tenant');
      const arr = await store.submit('ml', spec({ array: 3, kind: 'batch' }), null, 13);
      assert.deepEqual(arr.jobs.map((j) => j.name), ['train-0', 'train-1', 'train-2']);
      const tasks = await store.listTasks(a.jobs[0]?.id ?? '');
      assert.deepEqual(tasks.map((t) => [t.index, t.state, t.gpuMilli]), [[0, 'pending', 1000], [1, 'pending', 1000]]);
      assert.equal((await store.listJobs({ tenant: 'other' })).length, 1);
      assert.equal((await store.listJobs({ states: ['pending'] })).length, 5);
      assert.equal((await store.jobStateCounts())['pending'], 5);
      for (const j of (await store.listJobs({})).slice(1)) await store.cancel(j.id, 'test', 14);
    });

    test('an array larger than one insert keeps its elements in order, each with its tasks and its event, and resubmits idempotently', async () => {
      const big = spec({ name: 'sweep', array: 250, kind: 'batch', tasks: [{ name: 'ps', replicas: 1, gpus: 0, cpu: 1, command: 'true' }, { name: 'worker', replicas: 2, gpus: 1, command: 'true' }] });
      const first = await store.submit('arrays', big, 'sweep-key', 50);
      assert.equal(first.jobs.length, 250);
      assert.deepEqual(first.jobs.map((j) => j.name), Array.from({ length: 250 }, (_, i) => `sweep-${i}`));
      const ids = first.jobs.map((j) => Number(j.id));
      assert.ok(ids.every((id, i) => i === 0 || id > (ids[i - 1] as number)), 'ids rise with the element index');
      assert.deepEqual(first.jobs.map((j) => (j.spec as { arrayIndex?: number }).arrayIndex), Array.from({ length: 250 }, (_, i) => i));
      const last = first.jobs[249]?.id ?? '';
      assert.deepEqual((await store.listTasks(last)).map((t) => [t.index, t.group, t.gpuMilli]), [[0, 'ps', 0], [1, 'worker', 1000], [2, 'worker', 1000]]);
      const events = await store.listEvents({ tenant: 'arrays', limit: 1000 });
      assert.deepEqual(events.filter((e) => e.type === 'job:submitted').map((e) => e.jobId), first.jobs.map((j) => j.id));
      const again = await store.submit('arrays', big, 'sweep-key', 51);
      assert.equal(again.created, false);
      assert.deepEqual(again.jobs.map((j) => j.id), first.jobs.map((j) => j.id));
      assert.equal((await store.listJobs({ tenant: 'arrays', limit: 1000 })).length, 250);
      for (const j of first.jobs) await store.cancel(j.id, 'test', 52);
    });

    test('a gang runs to success through bind, start and exit reports', async () => {
      await store.registerNode(node('n1'), 100);
      const { jobs } = await store.submit('ml', spec({ name: 'gang' }), null, 100);
      const id = jobs[0]?.id ?? '';
      const applied = await store.applyPlan(
        { binds: [{ jobId: id, attempt: 0, tasks: [{ index: 0, node: 'n1', gpus: [0], gpuMilli: 1000 }, { index: 1, node: 'n1', gpus: [1], gpuMilli: 1000 }] }], preemptions: [], pending: [] },
        101,
      );
      assert.equal(applied, true);
      assert.equal((await store.getJob(id))?.state, 'admitted');
      const desired = (await store.heartbeat('n1', [], [], 102)) ?? [];
      const mine = desired.filter((d) => d.jobId === id);
      assert.deepEqual(mine.map((d) => [d.taskIndex, d.action, d.gpus]), [[0, 'run', [0]], [1, 'run', [1]]]);
      assert.equal(mine[0]?.gangSize, 2);
      assert.equal(mine[0]?.peers.length, 2);
      const [r0, r1] = mine.map((d) => d.runId);
      await store.heartbeat('n1', [], [{ runId: r0 ?? '', state: 'running', pid: 1, exitCode: null }, { runId: r1 ?? '', state: 'running', pid: 2, exitCode: null }], 103);
      assert.equal((await store.getJob(id))?.state, 'running');
      const node1 = await store.getNode('n1');
      assert.deepEqual(node1?.gpuUsedMilli, [1000, 1000, 0, 0]);
      await store.heartbeat('n1', [], [{ runId: r0 ?? '', state: 'exited', pid: 1, exitCode: 0 }, { runId: r1 ?? '', state: 'exited', pid: 2, exitCode: 0 }], 104);
      const done = await store.getJob(id);
      assert.equal(done?.state, 'succeeded');
      assert.equal(done?.finishedAt, 104);
      assert.deepEqual((await store.getNode('n1'))?.gpuUsedMilli, [0, 0, 0, 0]);
      const types = (await store.listEvents({ jobId: id })).map((e) => e.type);
      assert.deepEqual(types, ['job:submitted', 'job:admitted', 'task:started', 'task:started', 'job:running', 'task:succeeded', 'task:succeeded', 'job:succeeded']);
    });

    test('one failed task fails the gang and stops the others', async () => {
      const { jobs } = await store.submit('ml', spec({ name: 'failing' }), null, 200);
      const id = jobs[0]?.id ?? '';
      await store.applyPlan({ binds: [{ jobId: id, attempt: 0, tasks: [{ index: 0, node: 'n1', gpus: [0], gpuMilli: 1000 }, { index: 1, node: 'n1', gpus: [1], gpuMilli: 1000 }] }], preemptions: [], pending: [] }, 201);
      const runs = ((await store.heartbeat('n1', [], [], 202)) ?? []).filter((d) => d.jobId === id).map((d) => d.runId);
      await store.heartbeat('n1', [], runs.map((runId) => ({ runId, state: 'running' as const, pid: 5, exitCode: null })), 203);
      const desired = await store.heartbeat('n1', [], [{ runId: runs[0] ?? '', state: 'exited', pid: 5, exitCode: 3 }, { runId: runs[1] ?? '', state: 'running', pid: 6, exitCode: null }], 204);
      assert.equal((await store.getJob(id))?.state, 'failed');
      assert.deepEqual(desired?.filter((d) => d.jobId === id).map((d) => d.action), ['stop']);
      await store.heartbeat('n1', [], [{ runId: runs[1] ?? '', state: 'exited', pid: 6, exitCode: 143 }], 205);
      assert.deepEqual((await store.listTasks(id)).map((t) => t.state), ['failed', 'stopped']);
    });

    test('preemption stops the tasks, then requeues the job with a new attempt', async () => {
      const { jobs } = await store.submit('ml', spec({ name: 'victim', tasks: [{ gpus: 1, command: 'sleep 100' }] }), null, 300);
      const id = jobs[0]?.id ?? '';
      await store.applyPlan({ binds: [{ jobId: id, attempt: 0, tasks: [{ index: 0, node: 'n1', gpus: [2], gpuMilli: 1000 }] }], preemptions: [], pending: [] }, 301);
      const run = ((await store.heartbeat('n1', [], [], 302)) ?? []).find((d) => d.jobId === id)?.runId ?? '';
      await store.heartbeat('n1', [], [{ runId: run, state: 'running', pid: 9, exitCode: null }], 303);
      await store.applyPlan({ binds: [], preemptions: [{ jobId: id, reason: 'make room' }], pending: [] }, 304);
      assert.equal((await store.getJob(id))?.state, 'preempted');
      const desired = await store.heartbeat('n1', [], [{ runId: run, state: 'running', pid: 9, exitCode: null }], 305);
      assert.equal(desired?.find((d) => d.jobId === id)?.action, 'stop');
      await store.heartbeat('n1', [], [{ runId: run, state: 'exited', pid: 9, exitCode: 0 }], 306);
      const job = await store.getJob(id);
      assert.equal(job?.state, 'pending');
      assert.equal(job?.attempt, 1);
      assert.deepEqual((await store.listTasks(id)).map((t) => [t.state, t.node, t.attempt]), [['pending', null, 1]]);
      // A bind for the old attempt is refused; one for the new attempt is taken.
      await store.applyPlan({ binds: [{ jobId: id, attempt: 0, tasks: [{ index: 0, node: 'n1', gpus: [2], gpuMilli: 1000 }] }], preemptions: [], pending: [] }, 307);
      assert.equal((await store.getJob(id))?.state, 'pending');
      await store.applyPlan({ binds: [{ jobId: id, attempt: 1, tasks: [{ index: 0, node: 'n1', gpus: [3], gpuMilli: 1000 }] }], preemptions: [], pending: [] }, 308);
      assert.equal((await store.getJob(id))?.state, 'admitted');
      await store.cancel(id, 'test', 309);
    });

    test('a silent node is lost and its jobs are requeued; pending reasons are stored', async () => {
      await store.registerNode(node('n2', 2), 400);
      const { jobs } = await store.submit('ml', spec({ name: 'on-n2', tasks: [{ gpus: 1, command: 'sleep 100' }] }), null, 400);
      const id = jobs[0]?.id ?? '';
      await store.applyPlan({ binds: [{ jobId: id, attempt: 0, tasks: [{ index: 0, node: 'n2', gpus: [0], gpuMilli: 1000 }] }], preemptions: [], pending: [] }, 401);
      await store.heartbeat('n1', [], [], 10_000);
      const lost = await store.expireNodes(5_000, 10_001);
      assert.deepEqual(lost, ['n2']);
      assert.equal((await store.getNode('n2'))?.state, 'lost');
      const job = await store.getJob(id);
      assert.equal(job?.state, 'pending');
      assert.equal(job?.attempt, 1);
      await store.applyPlan({ binds: [], preemptions: [], pending: [{ jobId: id, reason: 'Resources', estimatedStart: 20_000 }] }, 10_002);
      assert.equal((await store.getJob(id))?.reason, 'Resources');
      assert.equal((await store.getJob(id))?.estimatedStart, 20_000);
      // Its agent still runs the written-off task: the node stays lost until that process is gone.
      const stale = await store.heartbeat('n2', [], [{ runId: `${id}.0.0`, state: 'running', pid: 4, exitCode: null }], 10_003);
      assert.deepEqual(stale, [], 'the stale run is not wanted: the agent stops it');
      assert.equal((await store.getNode('n2'))?.state, 'lost');
      const returned = await store.heartbeat('n2', [{ index: 0, utilization: 50, memoryUsedMib: 10, powerWatts: 300 }], [{ runId: `${id}.0.0`, state: 'exited', pid: 4, exitCode: 143 }], 10_003);
      assert.deepEqual(returned, []);
      assert.equal((await store.getNode('n2'))?.state, 'ready');
      assert.equal((await store.getNode('n2'))?.telemetry[0]?.powerWatts, 300);
      assert.ok((await store.listEvents({})).some((e) => e.type === 'node:lost' && e.nodeId === 'n2'));
      await store.cancel(id, 'test', 10_004);
    });

    test('pending reasons are written in one batch, only to jobs still pending', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push((await store.submit('ml', spec({ name: `r${i}` }), null, 450)).jobs[0]?.id ?? '');
      await store.cancel(ids[2] ?? '', 'test', 451);
      const pending = ids.map((jobId, i) => ({ jobId, reason: `over-quota: reason ${i}`, estimatedStart: i === 0 ? null : 9_000 + i }));
      await store.applyPlan({ binds: [], preemptions: [], pending }, 452);
      const jobs = await Promise.all(ids.map((id) => store.getJob(id)));
      assert.deepEqual(jobs.map((j) => [j?.reason, j?.estimatedStart]), [['over-quota: reason 0', null], ['over-quota: reason 1', 9_001], ['cancelled by test', null]]);
      for (const id of ids.slice(0, 2)) await store.cancel(id, 'test', 453);
    });

    test('a bind onto a GPU still held by an active task is refused; the job stays pending with a reason', async () => {
      const a = (await store.submit('ml', spec({ name: 'holder', tasks: [{ gpus: 1, command: 'x' }] }), null, 460)).jobs[0]?.id ?? '';
      const b = (await store.submit('ml', spec({ name: 'intruder', tasks: [{ gpus: 1, command: 'x' }] }), null, 460)).jobs[0]?.id ?? '';
      const on = (jobId: string) => ({ jobId, attempt: 0, tasks: [{ index: 0, node: 'n1', gpus: [3], gpuMilli: 1000 }] });
      assert.ok(await store.applyPlan({ binds: [on(a), on(b)], preemptions: [], pending: [] }, 461));
      assert.equal((await store.getJob(a))?.state, 'admitted');
      const intruder = await store.getJob(b);
      assert.equal(intruder?.state, 'pending');
      assert.match(intruder?.reason ?? '', /GPU 3 of n1 is still held/);
      assert.deepEqual((await store.getNode('n1'))?.gpuUsedMilli[3], 1000);
      for (const id of [a, b]) await store.cancel(id, 'test', 462);
    });

    test('a drained node stays drained through heartbeats until undrained; unknown nodes cannot be drained', async () => {
      assert.equal(await store.setNodeDrained('n1', true, 500), true);
      await store.heartbeat('n1', [], [], 501);
      assert.equal((await store.getNode('n1'))?.state, 'drained');
      assert.equal(await store.setNodeDrained('n1', false, 502), true);
      assert.equal((await store.getNode('n1'))?.state, 'ready');
      assert.equal(await store.setNodeDrained('ghost', true, 503), false);
    });

    test('the scheduler lease has one holder at a time and fences a deposed leader', async () => {
      assert.equal(await store.acquireLease('scheduler', 'a', 1000, 0), true);
      assert.equal(await store.acquireLease('scheduler', 'b', 1000, 500), false);
      assert.equal(await store.acquireLease('scheduler', 'a', 1000, 900), true, 'renewal');
      assert.equal(await store.acquireLease('scheduler', 'b', 1000, 2001), true, 'takeover after expiry');
      assert.equal(await store.applyPlan({ binds: [], preemptions: [], pending: [] }, 2002, 'a'), false);
      assert.equal(await store.applyPlan({ binds: [], preemptions: [], pending: [] }, 2002, 'b'), true);
      await store.releaseLease('scheduler', 'b');
      assert.equal(await store.acquireLease('scheduler', 'a', 1000, 2003), true);
    });

    test('a plan with reasons for more jobs than one statement takes writes them all, fenced by the lease', async () => {
      const { jobs } = await store.submit('t', spec({ name: 'many', array: 1_200 }), null, 3_000);
      const pending = jobs.map((j, i) => ({ jobId: j.id, reason: `waiting-for-resources: number ${i}`, estimatedStart: null }));
      assert.equal(await store.acquireLease('scheduler', 'c', 1000, 3_100), true);
      assert.equal(await store.applyPlan({ binds: [], preemptions: [], pending }, 3_100, 'c'), true);
      for (const i of [0, 499, 500, 1_000, 1_199]) assert.equal((await store.getJob(jobs[i]?.id as string))?.reason, `waiting-for-resources: number ${i}`);
      // A deposed leader's plan writes none of them, the first part or the rest.
      const stale = jobs.map((j) => ({ jobId: j.id, reason: 'stale', estimatedStart: null }));
      assert.equal(await store.applyPlan({ binds: [], preemptions: [], pending: stale }, 4_200, 'c'), false);
      for (const i of [0, 700]) assert.equal((await store.getJob(jobs[i]?.id as string))?.reason, `waiting-for-resources: number ${i}`);
      await store.releaseLease('scheduler', 'c');
      for (const j of jobs) await store.cancel(j.id, 't', 4_300);
    });

    test('the nodes version changes when a node registers, re-registers or is lost, and only then', async () => {
      const v0 = await store.nodesVersion();
      assert.equal(await store.nodesVersion(), v0);
      await store.registerNode(node('nv1', 2), 50_000);
      const v1 = await store.nodesVersion();
      assert.notEqual(v1, v0);
      await store.heartbeat('nv1', [], [], 50_500);
      assert.equal(await store.nodesVersion(), v1, 'a heartbeat changes no capacity');
      await store.registerNode(node('nv1', 4), 51_000);
      const v2 = await store.nodesVersion();
      assert.notEqual(v2, v1);
      await store.expireNodes(60_000, 70_000);
      assert.notEqual(await store.nodesVersion(), v2);
    });

    test('unknown ids read as absent, never as errors', async () => {
      assert.equal(await store.getJob('abc'), null);
      assert.equal(await store.getJob('999999'), null);
      assert.deepEqual(await store.listTasks('x'), []);
      assert.equal(await store.heartbeat('ghost', [], [], 1), null);
      assert.equal(await store.cancel('999999', 'x', 1), null);
    });

    test('a lease renewal keeps a node from expiry without its telemetry; a lost node is refused, an unknown one unknown', async () => {
      await store.registerNode(node('r1', 1), 100_000);
      await store.registerNode(node('r2', 1), 100_000);
      await store.heartbeat('r1', [{ index: 0, utilization: 40, memoryUsedMib: 1, powerWatts: 200 }], [], 100_000);
      await store.heartbeat('r2', [], [], 100_000);
      // Renewals that arrive together go out together; a node's later one wins, an earlier never moves it back.
      assert.deepEqual(await Promise.all([store.renewNodeLease('r1', 110_000), store.renewNodeLease('r1', 109_000), store.renewNodeLease('nobody', 110_000)]), ['renewed', 'renewed', 'unknown']);
      const r1 = await store.getNode('r1');
      assert.equal(r1?.lastHeartbeat, 100_000, 'the last heartbeat is still the last heartbeat');
      assert.equal(r1?.leaseRenewedAt, 110_000, 'and the renewal is shown beside it');
      assert.equal((await store.getNode('r2'))?.leaseRenewedAt, undefined, 'never renewed: none shown');
      assert.equal(r1?.telemetry[0]?.powerWatts, 200, "and its telemetry is that heartbeat's");
      // A fractional deadline (the loop takes the thread's held time off it) is whole ms to the database.
      const lost = await store.expireNodes(109_500.75, 115_000);
      assert.ok(lost.includes('r2') && !lost.includes('r1'), `expired ${lost.join(', ')}`);
      assert.equal(await store.renewNodeLease('r2', 116_000), 'lost');
      assert.equal((await store.getNode('r2'))?.state, 'lost', 'a renewal never brings a lost node back');
      assert.deepEqual(await store.expireNodes(110_001, 116_000), ['r1'], 'renewed until 110,000, silent after');
    });

    test('a plan with more binds than one transaction takes binds them all, a job still once', async () => {
      const { jobs } = await store.submit('t', spec({ name: 'wide', array: APPLY_CHUNK + 10, tasks: [{ gpus: 0, command: 'true' }] }), null, 200_000);
      await store.registerNode(node('wide-node', 0), 200_000);
      const bind = (id: string) => ({ jobId: id, attempt: 0, tasks: [{ index: 0, node: 'wide-node', gpus: [], gpuMilli: 0 }] });
      // The first job again at the end: in a later transaction than its first bind, and not taken twice.
      const binds = [...jobs.map((j) => bind(j.id)), bind(jobs[0]?.id as string)];
      assert.equal(await store.applyPlan({ binds, preemptions: [], pending: [] }, 200_001), true);
      for (const i of [0, APPLY_CHUNK - 1, APPLY_CHUNK, APPLY_CHUNK + 9]) {
        const id = jobs[i]?.id as string;
        assert.equal((await store.getJob(id))?.state, 'admitted', `job ${i}`);
        assert.deepEqual((await store.listAttempts(id)).map((a) => a.node), ['wide-node'], `job ${i} bound once`);
      }
    });

    test('an array is one row over its elements: counted by state, listed, cancelled together past a chunk, its running elements\' nodes named', async () => {
      const sweep = spec({ name: 'grid', array: 450, kind: 'batch', tasks: [{ replicas: 1, gpus: 1, command: 'true' }] });
      const [first, other, single] = await Promise.all([store.submit('grids', sweep, 'grid-key', 900_060), store.submit('grids', spec({ name: 'other', array: 2, kind: 'batch' }), null, 900_060), store.submit('grids', spec({ name: 'alone' }), null, 900_060)]);
      const arrayId = first.jobs[0]?.arrayId ?? '';
      assert.match(arrayId, /^\d+$/);
      assert.ok(first.jobs.every((j) => j.arrayId === arrayId), 'every element names its array');
      assert.notEqual(other.jobs[0]?.arrayId, arrayId);
      assert.equal(single.jobs[0]?.arrayId, null, 'one job is no array');
      const shown = await store.getArray(arrayId);
      assert.deepEqual(shown && { ...shown, counts: { ...shown.counts } }, {
        id: arrayId, tenant: 'grids', name: 'grid', queue: 'default', size: 450, createdAt: 900_060, firstJobId: first.jobs[0]?.id,
        counts: { pending: 450, admitted: 0, running: 0, preempted: 0, succeeded: 0, failed: 0, cancelled: 0, timeout: 0 }, unfinished: 450,
      });
      assert.equal(await store.getArray('99999999'), null);
      assert.equal(await store.getArray('x'), null);
      assert.equal(await store.cancelArray('99999999', 'test', 900_061), null);
      assert.deepEqual((await store.listJobs({ arrayId, limit: 1000 })).map((j) => j.id), first.jobs.map((j) => j.id), 'its elements, no other array\'s');
      assert.deepEqual((await store.listJobs({ arrayId: 'x' })).length, 0);
      // A retry under the key is answered with the same elements, so with the same array.
      assert.equal((await store.submit('grids', sweep, 'grid-key', 900_062)).jobs[0]?.arrayId, arrayId);
      // One element runs on a node: cancelling the array stops it there, and cancels the rest.
      await store.registerNode(node('ga1', 1), 900_063);
      const runs = first.jobs[3]?.id ?? '';
      assert.equal(await store.applyPlan({ binds: [{ jobId: runs, attempt: 0, tasks: [{ index: 0, node: 'ga1', gpus: [0], gpuMilli: 1000 }] }], preemptions: [], pending: [] }, 900_064), true);
      await store.cancel(first.jobs[5]?.id ?? '', 'test', 900_065);
      assert.equal((await store.getArrayElement(arrayId, 7))?.id, first.jobs[7]?.id, "an element by its index (Slurm's 123_7)");
      assert.equal(await store.getArrayElement(arrayId, 450), null);
      assert.deepEqual(await store.cancelArray(arrayId, 'alice', 900_065, new Set([5, 10, 11, 449])), { cancelled: 3, nodes: [] }, 'only the elements named, and only the unfinished ones');
      const during = await store.getArray(arrayId);
      assert.deepEqual([during?.counts.admitted, during?.counts.cancelled, during?.counts.pending, during?.unfinished], [1, 4, 445, 446]);
      const done = await store.cancelArray(arrayId, 'alice', 900_066);
      assert.deepEqual(done, { cancelled: 446, nodes: ['ga1'] });
      const after = await store.getArray(arrayId);
      assert.deepEqual([after?.counts.cancelled, after?.unfinished], [450, 0]);
      assert.equal((await store.getJob(runs))?.reason, `its array ${arrayId} was cancelled by alice`);
      assert.deepEqual((await store.listTasks(runs)).map((t) => t.state), ['stopping'], 'its running element is asked to stop');
      const waited = first.jobs[7]?.id ?? '';
      assert.deepEqual([(await store.getJob(waited))?.reason, (await store.listTasks(waited)).map((t) => t.state)], [`its array ${arrayId} was cancelled by alice`, ['stopped']], 'a waiting one ends as a cancel of its own would end it');
      assert.deepEqual((await store.listEvents({ jobId: waited })).map((e) => [e.type, e.tenant, e.message]), [['job:submitted', 'grids', 'grid-7 in queue default, 1 tasks'], ['job:cancelled', 'grids', `its array ${arrayId} was cancelled by alice`]]);
      assert.deepEqual(await store.cancelArray(arrayId, 'alice', 900_067), { cancelled: 0, nodes: [] }, 'nothing left to cancel');
      assert.equal((await store.getArray(other.jobs[0]?.arrayId ?? ''))?.unfinished, 2, 'another array is left alone');
      for (const j of [...other.jobs, ...single.jobs]) await store.cancel(j.id, 'test', 900_068);
    });
  });
}
