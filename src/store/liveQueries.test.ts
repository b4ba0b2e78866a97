/**
 * Store conformance for what the live core reads beyond a snapshot: finished runs (run-time
 * history), tenants' usage by hour (fair share), recent specs (target shapes), and queues with
 * cohorts and per-model quotas (migration 005). Same behaviour on SQLite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseJobSpec } from '../api/spec.ts';
import type { Store } from './store.ts';
import type { SqlStore } from './sqlStore.ts';
import { node, runJob } from './liveTesting.ts';
import { storeFactories } from './testing.ts';

const H = 3_600_000;

for (const factory of storeFactories()) {
  if (factory.skip !== undefined) {
    test(`live queries: ${factory.name}`, { skip: factory.skip }, () => {});
    continue;
  }
  describe(`live queries: ${factory.name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    before(async () => {
      const opened = await factory.open();
      store = opened.store;
      cleanup = opened.cleanup;
      await store.registerNode(node('n1', 'A100'), 0);
    });
    after(async () => cleanup());

    test('finished runs: the latest first time, then those after the cursor; failed jobs are left out; run time and model come with them', async () => {
      const a = await runJob(store, 'team-a', { name: 'a', timeLimit: 3600, jobType: 'bert' }, 10 * H, 10 * H + 600_000);
      await runJob(store, 'team-a', { name: 'failed' }, 10 * H + 700_000, 10 * H + 800_000, 1);
      const b = await runJob(store, 'team-b', { name: 'b' }, 11 * H, 11 * H + 60_000);
      const latest = await store.finishedRuns(null, 1);
      assert.deepEqual(latest.map((r) => r.id), [b], 'the latest one');
      const all = await store.finishedRuns(null, 10);
      assert.deepEqual(all.map((r) => r.id), [a, b], 'oldest first, the failed job left out');
      const first = all[0];
      assert.equal(first?.runSeconds, 600);
      assert.equal(first?.model, 'A100');
      assert.equal(first?.spec.timeLimitSeconds, 3600);
      assert.equal(first?.spec.jobType, 'bert');
      assert.equal(first?.finishedAt, 10 * H + 600_000);
      assert.deepEqual((await store.finishedRuns({ finishedAt: first?.finishedAt ?? 0, id: a }, 10)).map((r) => r.id), [b], 'after the cursor');
      assert.deepEqual(await store.finishedRuns({ finishedAt: 11 * H + 60_000, id: b }, 10), [], 'nothing after the last');
    });

    test('usage by hour: resource-seconds per tenant and hour of ending, failed runs included, older ones left out', async () => {
      const rows = await store.usageByHour(9 * H);
      const a = rows.find((r) => r.tenant === 'team-a' && r.hour === 10 * H);
      // 600 s and 100 s on 2 GPUs, 1 CPU core each (the default) and the default memory.
      assert.ok(a, JSON.stringify(rows));
      assert.ok(Math.abs(a.gpuSeconds - 2 * 700) < 1e-6, `${a.gpuSeconds}`);
      assert.ok(Math.abs(a.cpuSeconds - 700) < 1e-6, `${a.cpuSeconds}`);
      assert.ok(a.memoryMibSeconds > 0);
      const b = rows.find((r) => r.tenant === 'team-b');
      assert.equal(b?.hour, 11 * H);
      assert.ok(Math.abs((b?.gpuSeconds ?? 0) - 120) < 1e-6);
      assert.deepEqual((await store.usageByHour(11 * H)).map((r) => r.tenant), ['team-b'], 'tasks that ended before the start are left out');
    });

    test('recent specs: newest first, at most the limit', async () => {
      const specs = await store.recentSpecs(2);
      assert.deepEqual(specs.map((s) => s.name), ['b', 'failed']);
      assert.equal(specs[0]?.groups[0]?.gpuCount, 2);
    });

    test('queues keep their cohort and per-model quotas, and a plain queue stays plain', async () => {
      await store.putQueue({ name: 'research', gpuQuota: 12, borrowingLimit: null, cohort: 'lab', nominalQuota: { H100: 8, A100: 4 }, borrowingLimits: { H100: 2 }, lendingLimits: { '*': 3 }, tenants: ['team-a'] }, 1);
      await store.putQueue({ name: 'plain', gpuQuota: 4, borrowingLimit: 1 }, 1);
      const queues = await store.listQueues();
      assert.deepEqual(queues.find((q) => q.name === 'research'), { name: 'research', gpuQuota: 12, borrowingLimit: null, tenants: ['team-a'], cohort: 'lab', nominalQuota: { H100: 8, A100: 4 }, borrowingLimits: { H100: 2 }, lendingLimits: { '*': 3 } });
      assert.deepEqual(queues.find((q) => q.name === 'plain'), { name: 'plain', gpuQuota: 4, borrowingLimit: 1 });
      const snap = await store.snapshot();
      assert.equal(snap.queues.find((q) => q.name === 'research')?.cohort, 'lab', 'the snapshot has them too');
      await store.putQueue({ name: 'research', gpuQuota: 2, borrowingLimit: null }, 2);
      assert.deepEqual((await store.listQueues()).find((q) => q.name === 'research'), { name: 'research', gpuQuota: 2, borrowingLimit: null }, 'a put replaces the queue');
    });

    test('usage by hour counts every attempt: a preempted run is usage too', async () => {
      const spec = parseJobSpec({ name: 'twice', tasks: [{ gpus: 1, command: 'true' }] });
      assert.ok(spec.ok);
      const id = (await store.submit('team-c', spec.spec, null, 20 * H)).jobs[0]?.id ?? '';
      const bind = async (attempt: number, gpu: number, at: number): Promise<string> => {
        await store.applyPlan({ binds: [{ jobId: id, attempt, tasks: [{ index: 0, node: 'n1', gpus: [gpu], gpuMilli: 1000 }] }], preemptions: [], pending: [] }, at);
        return ((await store.heartbeat('n1', [], [], at)) ?? []).find((d) => d.jobId === id)?.runId ?? '';
      };
      const first = await bind(0, 2, 20 * H + 1000);
      await store.heartbeat('n1', [], [{ runId: first, state: 'running', pid: 1, exitCode: null }], 20 * H + 2000);
      await store.preempt(id, 'make room', 20 * H + 302_000);
      await store.heartbeat('n1', [], [{ runId: first, state: 'exited', pid: 1, exitCode: 143 }], 20 * H + 302_000);
      const second = await bind(1, 3, 20 * H + 400_000);
      await store.heartbeat('n1', [], [{ runId: second, state: 'running', pid: 2, exitCode: null }], 20 * H + 400_000);
      await store.heartbeat('n1', [], [{ runId: second, state: 'exited', pid: 2, exitCode: 0 }], 20 * H + 500_000);
      const c = (await store.usageByHour(19 * H)).filter((r) => r.tenant === 'team-c');
      assert.equal(c.length, 1, JSON.stringify(c));
      assert.ok(Math.abs((c[0]?.gpuSeconds ?? 0) - (300 + 100)) < 1e-6, `300 s preempted + 100 s finished, got ${c[0]?.gpuSeconds}`);
    });

    test('finished runs: jobs that finished in the same millisecond are walked in id order, a page of one at a time', async () => {
      const at = 30 * H;
      const ids = [await runJob(store, 'team-a', { name: 'tie-1' }, at - 60_000, at), await runJob(store, 'team-a', { name: 'tie-2' }, at - 60_000, at), await runJob(store, 'team-a', { name: 'after' }, at, at + 1)];
      const seen: string[] = [];
      for (let cursor = { finishedAt: at - 1, id: '0' }; ; ) {
        const [next] = await store.finishedRuns(cursor, 1);
        if (!next) break;
        seen.push(next.id);
        cursor = { finishedAt: next.finishedAt, id: next.id };
      }
      assert.deepEqual(seen, ids);
    });

    test('finished runs: the specs of jobs a refresh saw close come from memory, the others from the database, the same either way', async () => {
      const sql = store as SqlStore;
      await sql.snapshot(); // the open jobs in memory
      const id = await runJob(store, 'team-a', { name: 'kept', jobType: 'kept-type', timeLimit: 600 }, 40 * H, 40 * H + 1000);
      const reads = (): number => [...sql.sqlStats.bySql].filter(([text]) => text.startsWith('SELECT id, spec FROM jobs')).reduce((n, [, c]) => n + c.statements, 0);
      const unseen = reads();
      const [cold] = await store.finishedRuns({ finishedAt: 40 * H, id: '0' }, 1);
      assert.equal(reads(), unseen + 1, 'a job the open jobs never held: its spec is read');
      await sql.snapshot(); // held it open, then saw it close
      await sql.snapshot();
      const seen = reads();
      const [warm] = await store.finishedRuns({ finishedAt: 40 * H, id: '0' }, 1);
      assert.equal(reads(), seen, 'no spec read');
      assert.equal(warm?.id, id);
      assert.deepEqual(warm, cold);
      assert.equal(warm?.spec.jobType, 'kept-type');
    });
  });
}
