/**
 * How the store records agents' task reports, on every adapter: a task that started and ended
 * between two heartbeats, a task that could not start, a task its agent fenced, and reports with
 * fields no agent should send.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseJobSpec } from '../api/spec.ts';
import type { TaskReport } from '../api/types.ts';
import type { SqlStore } from './sqlStore.ts';
import type { Store } from './store.ts';
import { storeFactories } from './testing.ts';

const node = {
  id: 'n1',
  address: 'http://127.0.0.1:9001',
  cpuMilli: 32000,
  memoryMib: 256 * 1024,
  gpus: [0, 1, 2, 3].map((i) => ({ index: i, model: 'H100', memoryMib: 81920, uuid: `GPU-${i}` })),
  simulated: true,
};

for (const factory of storeFactories()) {
  // PostgreSQL runs where TIDE_TEST_DATABASE_URL is set (npm test starts one); otherwise it says why not.
  describe(`task reports: ${factory.name}`, { skip: (factory as { skip?: string }).skip }, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    before(async () => {
      ({ store, cleanup } = await factory.open());
      await store.ensureTenant('ml', 1);
      await store.registerNode(node, 1);
    });
    after(async () => cleanup());

    /** Submits a one-task job, binds it to GPU `gpu` of n1, and returns its run id. */
    async function placed(name: string, gpu: number, now: number): Promise<{ id: string; runId: string }> {
      const r = parseJobSpec({ name, tasks: [{ gpus: 1, command: 'true' }] });
      if (!r.ok) throw new Error(JSON.stringify(r.errors));
      const id = (await store.submit('ml', r.spec, null, now)).jobs[0]?.id ?? '';
      await store.applyPlan({ binds: [{ jobId: id, attempt: 0, tasks: [{ index: 0, node: 'n1', gpus: [gpu], gpuMilli: 1000 }] }], preemptions: [], pending: [] }, now + 1);
      const runId = ((await store.heartbeat('n1', [], [], now + 2)) ?? []).find((d) => d.jobId === id)?.runId ?? '';
      return { id, runId };
    }
    const types = async (id: string): Promise<string[]> => (await store.listEvents({ jobId: id })).map((e) => e.type);

    test('a task first reported as exited still gets its start (the agent saw it), task:started and job:running, before its end', async () => {
      const { id, runId } = await placed('short', 0, 100);
      await store.heartbeat('n1', [], [{ runId, state: 'exited', pid: 42, exitCode: 0, startedAt: 103 }], 110);
      const [task] = await store.listTasks(id);
      assert.deepEqual([task?.state, task?.startedAt, task?.finishedAt], ['succeeded', 103, 110]);
      const job = await store.getJob(id);
      assert.deepEqual([job?.state, job?.startedAt, job?.finishedAt], ['succeeded', 103, 110]);
      assert.deepEqual(await types(id), ['job:submitted', 'job:admitted', 'task:started', 'job:running', 'task:succeeded', 'job:succeeded']);
      // An agent clock ahead of the server's never puts a start after the end.
      const ahead = await placed('ahead', 0, 200);
      await store.heartbeat('n1', [], [{ runId: ahead.runId, state: 'exited', pid: 43, exitCode: 0, startedAt: 10_000 }], 210);
      assert.deepEqual((await store.listTasks(ahead.id)).map((t) => [t.startedAt, t.finishedAt]), [[210, 210]]);
    });

    test('jobs whose tasks start and end in one report are written once, straight to their end; a gang that fails there still passed through running', async () => {
      const jobs = await Promise.all([0, 1, 2].map((g) => placed(`burst-${g}`, g, 1000 + 10 * g)));
      const jobWrites = (): number => [...(store as SqlStore).sqlStats.bySql].filter(([sql]) => /UPDATE jobs SET/.test(sql)).reduce((n, [, c]) => n + c.rows, 0);
      const rowWrites = (table: string): number => [...(store as SqlStore).sqlStats.bySql].filter(([sql]) => sql.includes(`UPDATE ${table} SET`)).reduce((n, [, c]) => n + c.rows, 0);
      const before = [jobWrites(), rowWrites('tasks'), rowWrites('task_attempts')];
      await store.heartbeat('n1', [], jobs.map((j, k) => ({ runId: j.runId, state: 'exited', pid: 50 + k, exitCode: 0, startedAt: 1100 })), 1110);
      assert.equal(jobWrites() - (before[0] as number), 3, 'one write per job row: not its start, running and succeeded one by one');
      assert.deepEqual([rowWrites('tasks') - (before[1] as number), rowWrites('task_attempts') - (before[2] as number)], [3, 3], 'one write per task and per attempt: its start and end together');
      for (const j of jobs) {
        const job = await store.getJob(j.id);
        assert.deepEqual([job?.state, job?.startedAt, job?.finishedAt], ['succeeded', 1100, 1110]);
        assert.deepEqual((await store.listTasks(j.id)).map((t) => [t.state, t.startedAt, t.finishedAt, t.exitCode]), [['succeeded', 1100, 1110, 0]]);
        assert.deepEqual((await store.listAttempts(j.id)).map((a) => [a.startedAt, a.finishedAt, a.exitCode, a.endReason]), [[1100, 1110, 0, 'exited']]);
        assert.deepEqual((await types(j.id)).slice(2), ['task:started', 'job:running', 'task:succeeded', 'job:succeeded']);
      }
      // A gang of two: task 0 starts and fails in the report that starts task 1.
      const r = parseJobSpec({ name: 'pair', tasks: [{ replicas: 2, gpus: 1, command: 'true' }] });
      if (!r.ok) throw new Error(JSON.stringify(r.errors));
      const id = (await store.submit('ml', r.spec, null, 1200)).jobs[0]?.id ?? '';
      await store.applyPlan({ binds: [{ jobId: id, attempt: 0, tasks: [0, 1].map((index) => ({ index, node: 'n1', gpus: [index], gpuMilli: 1000 })) }], preemptions: [], pending: [] }, 1201);
      const runs = ((await store.heartbeat('n1', [], [], 1202)) ?? []).filter((d) => d.jobId === id).map((d) => d.runId).sort();
      assert.equal(runs.length, 2);
      await store.heartbeat('n1', [], [{ runId: runs[0] ?? '', state: 'exited', pid: 60, exitCode: 3, startedAt: 1205 }, { runId: runs[1] ?? '', state: 'running', pid: 61, exitCode: null, startedAt: 1205 }], 1210);
      assert.equal((await store.getJob(id))?.state, 'failed');
      assert.deepEqual((await types(id)).slice(2), ['task:started', 'task:started', 'job:running', 'task:failed', 'job:failed']);
      assert.deepEqual((await store.listTasks(id)).map((t) => t.state), ['failed', 'stopping'], 'its other task is told to stop');
      await store.heartbeat('n1', [], [{ runId: runs[1] ?? '', state: 'exited', pid: 61, exitCode: null, startedAt: 1205 }], 1220);
      assert.deepEqual((await store.listTasks(id)).map((t) => t.state), ['failed', 'stopped']);
      // A gang with one task started is still admitted, and its start is its first task's; the
      // jobs that report moved to an end took theirs with it, and are not written for it again.
      const gang = (await store.submit('ml', r.spec, null, 1300)).jobs[0]?.id ?? '';
      await store.applyPlan({ binds: [{ jobId: gang, attempt: 0, tasks: [0, 1].map((index) => ({ index, node: 'n1', gpus: [index], gpuMilli: 1000 })) }], preemptions: [], pending: [] }, 1301);
      const gangRuns = ((await store.heartbeat('n1', [], [], 1302)) ?? []).filter((d) => d.jobId === gang).map((d) => d.runId).sort();
      const startWrites = (): number => [...(store as SqlStore).sqlStats.bySql].filter(([sql]) => /UPDATE jobs SET started_at = v\.vat/.test(sql)).reduce((n, [, c]) => n + c.statements, 0);
      const startsBefore = startWrites();
      await store.heartbeat('n1', [], [{ runId: gangRuns[0] ?? '', state: 'running', pid: 70, exitCode: null, startedAt: 1305 }], 1310);
      const half = await store.getJob(gang);
      assert.deepEqual([half?.state, half?.startedAt], ['admitted', 1305]);
      assert.equal(startWrites() - startsBefore, 1);
      const short = await placed('short-after', 2, 1400);
      await store.heartbeat('n1', [], [{ runId: short.runId, state: 'exited', pid: 71, exitCode: 0, startedAt: 1402 }, { runId: gangRuns[0] ?? '', state: 'running', pid: 70, exitCode: null, startedAt: 1305 }], 1410);
      assert.equal(startWrites() - startsBefore, 1, 'the short job took its start with its end');
      assert.equal((await store.getJob(short.id))?.startedAt, 1402);
    });

    test('a task that could not start fails its job with the reason, without a start', async () => {
      const { id, runId } = await placed('e2big', 1, 300);
      await store.heartbeat('n1', [], [{ runId, state: 'exited', pid: null, exitCode: 126, reason: 'start-failed', message: 'spawn E2BIG (argument list too long)' }], 310);
      const job = await store.getJob(id);
      assert.deepEqual([job?.state, job?.reason], ['failed', 'task 0 could not start: spawn E2BIG (argument list too long)']);
      const [task] = await store.listTasks(id);
      assert.deepEqual([task?.state, task?.exitCode, task?.startedAt], ['failed', 126, null]);
      const events = await store.listEvents({ jobId: id });
      assert.deepEqual(events.map((e) => e.type), ['job:submitted', 'job:admitted', 'task:failed', 'job:failed']);
      assert.equal(events[2]?.message, 'task 0 could not start: spawn E2BIG (argument list too long)');
      assert.deepEqual((await store.getNode('n1'))?.gpuUsedMilli, [0, 0, 0, 0], 'its GPU is free again');
    });

    test('a task its agent fenced is stopped and its job requeued, as for a lost node', async () => {
      const { id, runId } = await placed('fenced', 2, 400);
      await store.heartbeat('n1', [], [{ runId, state: 'running', pid: 50, exitCode: null, startedAt: 402 }], 403);
      assert.equal((await store.getJob(id))?.state, 'running');
      const desired = await store.heartbeat('n1', [], [{ runId, state: 'exited', pid: 50, exitCode: 143, startedAt: 402, reason: 'fenced', message: 'its agent lost the server' }], 420);
      const job = await store.getJob(id);
      assert.deepEqual([job?.state, job?.attempt], ['pending', 1]);
      assert.equal(desired?.some((d) => d.jobId === id), false, 'not run again on this node unless placed again');
      const events = await store.listEvents({ jobId: id });
      assert.deepEqual(events.slice(-3).map((e) => e.type), ['job:running', 'task:stopped', 'job:requeued']);
      assert.match(events.at(-2)?.message ?? '', /^task 0 stopped by its agent \(fenced: its agent lost the server\)$/);
      // Started and fenced in one report: the requeue counts the run's time, and the next attempt has no start yet.
      const again = ((await store.heartbeat('n1', [], [], 421)) ?? []).length;
      assert.equal(again, 0);
      const quick = await placed('fenced-at-once', 2, 430);
      await store.heartbeat('n1', [], [{ runId: quick.runId, state: 'exited', pid: 51, exitCode: 143, startedAt: 433, reason: 'fenced', message: 'its agent lost the server' }], 440);
      const requeued = await store.getJob(quick.id);
      assert.deepEqual([requeued?.state, requeued?.attempt, requeued?.startedAt, requeued?.runSeconds], ['pending', 1, null, 0.007]);
      assert.deepEqual((await types(quick.id)).slice(2), ['task:started', 'job:running', 'task:stopped', 'job:requeued']);
    });

    test('reports with fields no agent should send are ignored, not the cause of a failed heartbeat', async () => {
      const { id, runId } = await placed('junk', 3, 500);
      const junk = [null, 7, { runId: 5 }, { runId, state: 'weird' }, { runId: 'x', state: 'exited' }] as unknown as TaskReport[];
      const good = { runId, state: 'running', pid: 'not a pid', exitCode: { x: 1 }, startedAt: 'soon' } as unknown as TaskReport;
      const desired = await store.heartbeat('n1', [], [...junk, good], 510);
      assert.ok(desired?.some((d) => d.runId === runId));
      const [task] = await store.listTasks(id);
      assert.deepEqual([task?.state, task?.startedAt], ['running', 510]);
    });
  });
}
