/** The Store conformance suite: the same behaviour on every adapter (memory, SQLite, PostgreSQL). */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseJobSpec, type JobSpec } from '../api/spec.ts';
import type { Job } from '../api/types.ts';
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

/** What an array's job row says of the elements it stands for. */
const shape = (j: Job) => [j.name, j.state, j.arrayIndex, j.arrayCount, j.attempt];

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

    test('submission with a client key is idempotent; an array is one pending job whose binds take its elements off the front', async () => {
      const a = await store.submit('ml', spec(), 'key-1', 10);
      const b = await store.submit('ml', spec(), 'key-1', 11);
      assert.equal(a.created, true);
      assert.equal(b.created, false);
      assert.equal(b.jobs[0]?.id, a.jobs[0]?.id);
      const other = await store.submit('other', spec(), 'key-1', 12);
      assert.notEqual(other.jobs[0]?.id, a.jobs[0]?.id, 'client keys are per tenant');
      const tasks = await store.listTasks(a.jobs[0]?.id ?? '');
      assert.deepEqual(tasks.map((t) => [t.index, t.state, t.gpuMilli]), [[0, 'pending', 1000], [1, 'pending', 1000]]);
      // An array waits as one job over its elements (Slurm's 7_[0-3]): one element's tasks, one event.
      const arraySpec = spec({ array: 4, kind: 'batch' });
      const arr = await store.submit('ml', arraySpec, 'arr-key', 13);
      assert.deepEqual([arr.created, arr.conflict], [true, false]);
      assert.deepEqual(arr.jobs.map(shape), [['train-[0-3]', 'pending', 0, 4, 0]]);
      const rest = arr.jobs[0]?.id ?? '';
      const arrayId = arr.jobs[0]?.arrayId ?? '';
      assert.match(arrayId, /^\d+$/);
      assert.deepEqual((await store.listTasks(rest)).map((t) => [t.index, t.state, t.gpuMilli]), [[0, 'pending', 1000], [1, 'pending', 1000]], "one element's tasks");
      assert.deepEqual((await store.listEvents({ jobId: rest })).map((e) => [e.type, e.message]), [['job:submitted', 'train-[0-3] in queue default, 4 elements of 2 tasks']]);
      // A retry under the key answers that job; another spec under it is a conflict that makes nothing.
      const again = await store.submit('ml', arraySpec, 'arr-key', 14);
      assert.deepEqual([again.created, again.conflict, again.jobs.map((j) => j.id)], [false, false, [rest]]);
      const changed = await store.submit('ml', spec({ array: 5, kind: 'batch' }), 'arr-key', 14);
      assert.deepEqual([changed.created, changed.conflict, changed.jobs.map((j) => j.id)], [false, true, [rest]]);
      assert.equal((await store.listJobs({ tenant: 'other' })).length, 1);
      // Listed as rows, counted as elements.
      assert.equal((await store.listJobs({ states: ['pending'] })).length, 3);
      assert.equal((await store.jobStateCounts())['pending'], 6);
      assert.equal(await store.countOpenJobs('ml'), 5);
      // Each bind of the rest takes the next element off its front: a job of its own from then on.
      await store.registerNode(node('arr-node', 10), 15);
      const bind = (gpu: number) => ({ jobId: rest, attempt: 0, tasks: [{ index: 0, node: 'arr-node', gpus: [gpu], gpuMilli: 1000 }, { index: 1, node: 'arr-node', gpus: [gpu + 1], gpuMilli: 1000 }] });
      assert.equal(await store.applyPlan({ binds: [bind(0), bind(2)], preemptions: [], pending: [] }, 16), true);
      const taken = await store.listJobs({ arrayId });
      assert.deepEqual(taken.map(shape), [['train-[2-3]', 'pending', 2, 2, 0], ['train-0', 'admitted', 0, 1, 0], ['train-1', 'admitted', 1, 1, 0]]);
      assert.ok(taken.every((j) => j.arrayId === arrayId));
      const e1 = taken[2]?.id ?? '';
      assert.deepEqual((await store.listTasks(e1)).map((t) => [t.index, t.node, t.gpus]), [[0, 'arr-node', [2]], [1, 'arr-node', [3]]], "its bind's tasks");
      assert.deepEqual((await store.listTasks(rest)).map((t) => [t.state, t.node]), [['pending', null], ['pending', null]], 'the rest still waits');
      const counts = await store.getArray(arrayId);
      assert.deepEqual([counts?.counts.pending, counts?.counts.admitted, counts?.unfinished], [2, 2, 4]);
      assert.equal((await store.getArrayElement(arrayId, 1))?.id, e1);
      assert.equal((await store.getArrayElement(arrayId, 3))?.id, rest, 'a waiting element is found in the rest');
      // Each element runs with its own index.
      const desired = (await store.heartbeat('arr-node', [], [], 17)) ?? [];
      assert.deepEqual(desired.map((d) => `${d.jobName}.${d.taskIndex}=${d.env['TIDE_ARRAY_INDEX']}`).sort(), ['train-0.0=0', 'train-0.1=0', 'train-1.0=1', 'train-1.1=1']);
      // The last element taken is the rest's row itself; a bind past the elements takes nothing.
      assert.equal(await store.applyPlan({ binds: [bind(4), bind(6), bind(8)], preemptions: [], pending: [] }, 18), true);
      const all = await store.listJobs({ arrayId });
      assert.deepEqual(all.map(shape), [['train-3', 'admitted', 3, 1, 0], ['train-0', 'admitted', 0, 1, 0], ['train-1', 'admitted', 1, 1, 0], ['train-2', 'admitted', 2, 1, 0]]);
      assert.deepEqual((await store.listTasks(rest)).map((t) => [t.node, t.gpus]), [['arr-node', [6]], ['arr-node', [7]]]);
      assert.deepEqual((await store.getArray(arrayId))?.counts.admitted, 4);
      assert.deepEqual(await store.cancelArray(arrayId, 'test', 19), { cancelled: 4, nodes: ['arr-node'] });
      for (const j of [...a.jobs, ...other.jobs]) await store.cancel(j.id, 'test', 19);
      // Drained, so that the silent-node test below finds its own node lost alone.
      await store.setNodeDrained('arr-node', true, 19);
    });

    test('an array larger than one insert is one job; binds past an insert take its elements in order, each with its tasks and its event; it resubmits idempotently', async () => {
      const big = spec({ name: 'sweep', array: 250, kind: 'batch', tasks: [{ name: 'ps', replicas: 1, gpus: 0, cpu: 1, command: 'true' }, { name: 'worker', replicas: 2, gpus: 1, command: 'true' }] });
      const first = await store.submit('arrays', big, 'sweep-key', 50);
      assert.deepEqual(first.jobs.map(shape), [['sweep-[0-249]', 'pending', 0, 250, 0]]);
      const rest = first.jobs[0]?.id ?? '';
      const arrayId = first.jobs[0]?.arrayId ?? '';
      assert.deepEqual((await store.listTasks(rest)).map((t) => [t.index, t.group, t.gpuMilli]), [[0, 'ps', 0], [1, 'worker', 1000], [2, 'worker', 1000]]);
      assert.deepEqual((await store.listEvents({ tenant: 'arrays', limit: 1000 })).map((e) => [e.type, e.jobId, e.message]), [['job:submitted', rest, 'sweep-[0-249] in queue default, 250 elements of 3 tasks']]);
      // 150 elements taken in one plan: their rows are more than one insert (ARRAY_CHUNK) makes.
      await store.registerNode(node('sweep-node', 300), 51);
      const on = (gpus: number[]) => ({ node: 'sweep-node', gpus, gpuMilli: gpus.length * 1000 });
      const binds = Array.from({ length: 150 }, (_, i) => ({ jobId: rest, attempt: 0, tasks: [{ index: 0, ...on([]) }, { index: 1, ...on([2 * i]) }, { index: 2, ...on([2 * i + 1]) }] }));
      assert.equal(await store.applyPlan({ binds, preemptions: [], pending: [] }, 52), true);
      const rows = await store.listJobs({ arrayId, limit: 1000 });
      // Listed by id: the rest (submitted first), then the elements, their ids rising with their index.
      assert.deepEqual(rows.map(shape), [['sweep-[150-249]', 'pending', 150, 100, 0], ...Array.from({ length: 150 }, (_, i) => [`sweep-${i}`, 'admitted', i, 1, 0])]);
      const elements = rows.slice(1);
      assert.deepEqual((await store.listTasks(elements[149]?.id ?? '')).map((t) => [t.index, t.group, t.gpuMilli, t.node, t.gpus]), [[0, 'ps', 0, 'sweep-node', []], [1, 'worker', 1000, 'sweep-node', [298]], [2, 'worker', 1000, 'sweep-node', [299]]]);
      const events = await store.listEvents({ tenant: 'arrays', limit: 1000 });
      assert.deepEqual(events.filter((e) => e.type === 'job:admitted').map((e) => e.jobId), elements.map((j) => j.id), 'one admission each, in order');
      const again = await store.submit('arrays', big, 'sweep-key', 53);
      assert.deepEqual([again.created, again.conflict, again.jobs.map((j) => j.id)], [false, false, [rest]]);
      assert.equal((await store.listJobs({ tenant: 'arrays', limit: 1000 })).length, 151, 'the retry made nothing');
      const shown = await store.getArray(arrayId);
      assert.deepEqual([shown?.size, shown?.counts.pending, shown?.counts.admitted, shown?.firstJobId], [250, 100, 150, rest]);
      assert.deepEqual(await store.cancelArray(arrayId, 'test', 54), { cancelled: 250, nodes: ['sweep-node'] });
      // Drained, so that the silent-node test below finds its own node lost alone.
      await store.setNodeDrained('sweep-node', true, 54);
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
      // Single jobs (an array waits as one row): submitted together, they are committed together.
      const jobs = (await Promise.all(Array.from({ length: 1_200 }, (_, i) => store.submit('t', spec({ name: `many-${i}` }), null, 3_000)))).map((r) => r.jobs[0] as Job);
      assert.equal(new Set(jobs.map((j) => j.id)).size, 1_200);
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
      const wide = spec({ name: 'wide', tasks: [{ gpus: 0, command: 'true' }] });
      const jobs = (await Promise.all(Array.from({ length: APPLY_CHUNK + 10 }, (_, i) => store.submit('t', { ...wide, name: `wide-${i}` }, null, 200_000)))).map((r) => r.jobs[0] as Job);
      assert.equal(new Set(jobs.map((j) => j.id)).size, APPLY_CHUNK + 10);
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
      const rest = first.jobs[0]?.id ?? '';
      const arrayId = first.jobs[0]?.arrayId ?? '';
      assert.match(arrayId, /^\d+$/);
      assert.deepEqual(first.jobs.map(shape), [['grid-[0-449]', 'pending', 0, 450, 0]], 'one job stands for every element');
      assert.notEqual(other.jobs[0]?.arrayId, arrayId);
      assert.equal(single.jobs[0]?.arrayId, null, 'one job is no array');
      assert.equal(single.jobs[0]?.arrayCount, undefined, 'nor stands for elements');
      const shown = await store.getArray(arrayId);
      assert.deepEqual(shown && { ...shown, counts: { ...shown.counts } }, {
        id: arrayId, tenant: 'grids', name: 'grid', queue: 'default', size: 450, createdAt: 900_060, firstJobId: rest,
        counts: { pending: 450, admitted: 0, running: 0, preempted: 0, succeeded: 0, failed: 0, cancelled: 0, timeout: 0 }, unfinished: 450,
      });
      assert.equal(await store.countOpenJobs('grids'), 453, 'open jobs are counted by their elements');
      assert.equal(await store.getArray('99999999'), null);
      assert.equal(await store.getArray('x'), null);
      assert.equal(await store.cancelArray('99999999', 'test', 900_061), null);
      assert.deepEqual((await store.listJobs({ arrayId, limit: 1000 })).map((j) => j.id), [rest], 'its waiting elements are one row, no other array\'s');
      assert.deepEqual((await store.listJobs({ arrayId: 'x' })).length, 0);
      // A retry under the key is answered with the same job, so with the same array.
      assert.deepEqual((await store.submit('grids', sweep, 'grid-key', 900_062)).jobs.map((j) => [j.id, j.arrayId]), [[rest, arrayId]]);
      // Two elements are placed on a node; the second is cancelled on its own.
      await store.registerNode(node('ga1', 2), 900_063);
      const bind = (gpu: number) => ({ jobId: rest, attempt: 0, tasks: [{ index: 0, node: 'ga1', gpus: [gpu], gpuMilli: 1000 }] });
      assert.equal(await store.applyPlan({ binds: [bind(0), bind(1)], preemptions: [], pending: [] }, 900_064), true);
      const runs = (await store.getArrayElement(arrayId, 0))?.id ?? '';
      const gone = (await store.getArrayElement(arrayId, 1))?.id ?? '';
      assert.deepEqual([runs, gone].map((id) => id !== rest && /^\d+$/.test(id)), [true, true], 'placed elements are jobs of their own');
      await store.cancel(gone, 'test', 900_065);
      assert.equal((await store.getArrayElement(arrayId, 7))?.id, rest, "a waiting element by its index (Slurm's 123_7) is the rest");
      assert.equal(await store.getArrayElement(arrayId, 450), null);
      // Some indices cancelled split the rest where they start and stop: 3-5, 9, and every odd one from 11,
      // so that the rows left open are more than one chunk of the cancel (ARRAY_CANCEL_CHUNK, 200).
      const odd = Array.from({ length: 220 }, (_, k) => 11 + 2 * k);
      assert.deepEqual(await store.cancelArray(arrayId, 'alice', 900_065, new Set([1, 3, 4, 5, 9, ...odd])), { cancelled: 224, nodes: [] }, 'only the elements named, and only the unfinished ones');
      const rows = await store.listJobs({ arrayId, limit: 1000 });
      assert.equal(rows.length, 446);
      assert.deepEqual(rows.slice(0, 9).map(shape), [
        ['grid-2', 'pending', 2, 1, 0],
        ['grid-0', 'admitted', 0, 1, 0],
        ['grid-1', 'cancelled', 1, 1, 0],
        ['grid-[3-5]', 'cancelled', 3, 3, 0],
        ['grid-[6-8]', 'pending', 6, 3, 0],
        ['grid-9', 'cancelled', 9, 1, 0],
        ['grid-10', 'pending', 10, 1, 0],
        ['grid-11', 'cancelled', 11, 1, 0],
        ['grid-12', 'pending', 12, 1, 0],
      ]);
      assert.deepEqual(shape(rows[445] as Job), ['grid-449', 'cancelled', 449, 1, 0]);
      assert.equal(rows.reduce((n, j) => n + (j.arrayCount ?? 0), 0), 450, 'the rows cover every element once');
      assert.equal((await store.getArrayElement(arrayId, 7))?.name, 'grid-[6-8]');
      const run = rows[3]?.id ?? '';
      const reason = `its array ${arrayId} was cancelled by alice`;
      assert.deepEqual([(await store.listTasks(run)).map((t) => t.state), (await store.listEvents({ jobId: run })).map((e) => [e.type, e.message])], [['stopped'], [['job:cancelled', reason]]], 'a cancelled run has one element\'s tasks, stopped');
      const during = await store.getArray(arrayId);
      assert.deepEqual([during?.counts.admitted, during?.counts.cancelled, during?.counts.pending, during?.unfinished], [1, 225, 224, 225]);
      assert.equal(await store.countOpenJobs('grids'), 228);
      const done = await store.cancelArray(arrayId, 'alice', 900_066);
      assert.deepEqual(done, { cancelled: 225, nodes: ['ga1'] });
      const after = await store.getArray(arrayId);
      assert.deepEqual([after?.counts.cancelled, after?.unfinished], [450, 0]);
      assert.equal((await store.getJob(runs))?.reason, reason);
      assert.deepEqual((await store.listTasks(runs)).map((t) => t.state), ['stopping'], 'its running element is asked to stop');
      assert.deepEqual([(await store.getJob(rest))?.reason, (await store.listTasks(rest)).map((t) => t.state)], [reason, ['stopped']], 'a waiting one ends as a cancel of its own would end it');
      assert.deepEqual((await store.listEvents({ jobId: rest })).map((e) => [e.type, e.tenant, e.message]), [['job:submitted', 'grids', 'grid-[0-449] in queue default, 450 elements of 1 tasks'], ['job:cancelled', 'grids', reason]]);
      assert.deepEqual(await store.cancelArray(arrayId, 'alice', 900_067), { cancelled: 0, nodes: [] }, 'nothing left to cancel');
      assert.equal((await store.getArray(other.jobs[0]?.arrayId ?? ''))?.unfinished, 2, 'another array is left alone');
      assert.deepEqual(shape((await store.getJob(other.jobs[0]?.id ?? '')) as Job), ['other-[0-1]', 'pending', 0, 2, 0]);
      for (const j of [...other.jobs, ...single.jobs]) await store.cancel(j.id, 'test', 900_068);
    });

    test("CPU-only array elements bound to one node together are one job, a range its agent runs: its CPU held together, its failed elements counted", async () => {
      const counted = await store.jobStateCounts();
      const [failedBefore, succeededBefore] = [counted['failed'] ?? 0, counted['succeeded'] ?? 0];
      await store.registerNode(node('rg1', 0), 910_000);
      await store.registerNode(node('rg2', 0), 910_000);
      const sweep = spec({ name: 'cpu', array: 6, kind: 'batch', tasks: [{ replicas: 1, gpus: 0, cpu: 0.5, memory: '1Gi', command: 'true' }] });
      const rest = (await store.submit('ranges', sweep, null, 910_001)).jobs[0] as Job;
      const arrayId = rest.arrayId ?? '';
      const bind = (n: string) => ({ jobId: rest.id, attempt: 0, tasks: [{ index: 0, node: n, gpus: [], gpuMilli: 0 }] });
      // Interleaved in the plan: each node's binds still make one job of adjacent elements.
      assert.ok(await store.applyPlan({ binds: [bind('rg1'), bind('rg2'), bind('rg1'), bind('rg1'), bind('rg2'), bind('rg2'), bind('rg1')], preemptions: [], pending: [] }, 910_002));
      const rows = await store.listJobs({ arrayId, limit: 10 });
      assert.deepEqual(rows.map(shape), [['cpu-[3-5]', 'admitted', 3, 3, 0], ['cpu-[0-2]', 'admitted', 0, 3, 0]], 'the rest is the last range (rg2), the first a new job (rg1); the seventh bind took nothing');
      const first = rows.find((j) => j.arrayIndex === 0) as Job;
      assert.deepEqual((await store.listTasks(first.id)).map((t) => [t.node, t.state]), [['rg1', 'assigned']], 'one task for its three elements');
      assert.deepEqual((await store.listNodes()).filter((n) => n.id.startsWith('rg')).map((n) => n.cpuUsedMilli), [1500, 1500], 'holding their CPU together');
      const [run] = (await store.heartbeat('rg1', [], [], 910_003)) ?? [];
      assert.deepEqual([run?.jobId, run?.arrayCount, run?.env['TIDE_ARRAY_INDEX'], run?.memoryMib], [first.id, 3, '0', 3072]);
      const [other] = (await store.heartbeat('rg2', [], [], 910_003)) ?? [];
      assert.deepEqual([other?.jobId, other?.arrayCount, other?.env['TIDE_ARRAY_INDEX']], [rest.id, 3, '3']);
      assert.deepEqual(await store.cancelArray(arrayId, 'ranges', 910_003, new Set([1])), { cancelled: 0, nodes: [] }, 'a range placed together is cancelled only when all its elements are named');
      await store.heartbeat('rg1', [], [{ runId: run?.runId ?? '', state: 'exited', pid: 10, exitCode: 0, startedAt: 910_003 }], 910_004);
      await store.heartbeat('rg2', [], [{ runId: other?.runId ?? '', state: 'exited', pid: 11, exitCode: 3, startedAt: 910_003, failedElements: 1 }], 910_004);
      const done = await store.getArray(arrayId);
      assert.deepEqual([done?.counts.succeeded, done?.counts.failed, done?.unfinished], [5, 1, 0], 'the failed range had two elements that exited 0');
      assert.deepEqual([(await store.getJob(rest.id))?.state, (await store.getArrayElement(arrayId, 4))?.id], ['failed', rest.id]);
      assert.match((await store.listEvents({ jobId: rest.id })).map((e) => e.message).join('\n'), /task 0 exit 3 \(1 of its elements exited non-zero\)/);
      assert.equal(await store.countOpenJobs('ranges'), 0);
      const states = await store.jobStateCounts();
      assert.equal((states['failed'] ?? 0) - failedBefore, 1, 'the metrics count the failed element alone');
      assert.equal((states['succeeded'] ?? 0) - succeededBefore, 5);
    });

    test('a range whose node is lost is requeued whole, and placed again in parts as its elements fit', async () => {
      await store.registerNode(node('rq1', 0), 920_000);
      await store.registerNode(node('rq2', 0), 920_000);
      const sweep = spec({ name: 'rq', array: 4, kind: 'batch', tasks: [{ replicas: 1, gpus: 0, cpu: 0.5, memory: '1Gi', command: 'sleep 100' }] });
      const rest = (await store.submit('requeue', sweep, null, 920_001)).jobs[0] as Job;
      // One bind of four units (the adapter's form): every element taken, so the rest's row is the range.
      assert.ok(await store.applyPlan({ binds: [{ jobId: rest.id, attempt: 0, units: 4, tasks: [{ index: 0, node: 'rq1', gpus: [], gpuMilli: 0 }] }], preemptions: [], pending: [] }, 920_002));
      const [run] = (await store.heartbeat('rq1', [], [], 920_003)) ?? [];
      assert.deepEqual([run?.jobId, run?.arrayCount], [rest.id, 4]);
      await store.heartbeat('rq1', [], [{ runId: run?.runId ?? '', state: 'running', pid: 7, exitCode: null, startedAt: 920_003 }], 920_004);
      await store.heartbeat('rq2', [], [], 940_000);
      assert.ok((await store.expireNodes(930_000, 940_001)).includes('rq1'));
      assert.deepEqual(shape((await store.getJob(rest.id)) as Job), ['rq-[0-3]', 'pending', 0, 4, 1], 'requeued whole, in its next attempt');
      // Room for three on rq2: they become a range of their own; the rest's row keeps the fourth.
      assert.ok(await store.applyPlan({ binds: [{ jobId: rest.id, attempt: 1, units: 3, tasks: [{ index: 0, node: 'rq2', gpus: [], gpuMilli: 0 }] }], preemptions: [], pending: [] }, 940_002));
      const rows = await store.listJobs({ arrayId: rest.arrayId ?? '', limit: 10 });
      assert.deepEqual(rows.map(shape), [['rq-3', 'pending', 3, 1, 1], ['rq-[0-2]', 'admitted', 0, 3, 0]]);
      assert.equal((await store.listNodes()).find((n) => n.id === 'rq2')?.cpuUsedMilli, 1500);
      const [again] = (await store.heartbeat('rq2', [], [], 940_003)) ?? [];
      assert.deepEqual([again?.arrayCount, again?.env['TIDE_ARRAY_INDEX'], again?.memoryMib], [3, '0', 3072]);
      assert.equal((await store.getArray(rest.arrayId ?? ''))?.unfinished, 4);
      // The fourth, bound as a job of one, holds one element's CPU (its task held four before the requeue).
      assert.ok(await store.applyPlan({ binds: [{ jobId: rest.id, attempt: 1, tasks: [{ index: 0, node: 'rq2', gpus: [], gpuMilli: 0 }] }], preemptions: [], pending: [] }, 940_004));
      assert.equal((await store.listNodes()).find((n) => n.id === 'rq2')?.cpuUsedMilli, 2000);
      await store.cancelArray(rest.arrayId ?? '', 'requeue', 940_005);
    });
  });
}
