/**
 * What the store keeps of a job's time and progress, on every adapter (migration 004): the
 * running time of earlier attempts (runSeconds) and a record of every task run survive a requeue
 * and a lost node; a job timed out at its limit stops its tasks and ends `timeout`, never
 * requeued; task 0's progress becomes the job's, with checkpointAt when its checkpoint step
 * first took its value, and outlives the store being reopened.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseJobSpec } from '../api/spec.ts';
import type { TaskReport } from '../api/types.ts';
import { openStore } from './sqlStore.ts';
import type { Store } from './store.ts';
import { storeFactories } from './testing.ts';

const node = (id: string) => ({
  id,
  address: `http://127.0.0.1:${9100 + id.length}`,
  cpuMilli: 32000,
  memoryMib: 256 * 1024,
  gpus: [0, 1, 2, 3].map((i) => ({ index: i, model: 'H100', memoryMib: 81920, uuid: `GPU-${id}-${i}` })),
  simulated: true,
});

const running = (runId: string, extra: Partial<TaskReport> = {}): TaskReport => ({ runId, state: 'running', pid: 7, exitCode: null, ...extra });
const exited = (runId: string, exitCode: number): TaskReport => ({ runId, state: 'exited', pid: 7, exitCode });

for (const factory of storeFactories()) {
  describe(`attempts, time limits and progress: ${factory.name}`, { skip: factory.skip }, () => {
    let store: Store;
    let url: string;
    let cleanup: () => Promise<void>;
    before(async () => {
      ({ store, url, cleanup } = await factory.open());
      await store.ensureTenant('ml', 1);
      await store.registerNode(node('n1'), 1);
      await store.registerNode(node('n2'), 1);
    });
    after(async () => cleanup());

    /** Submits a job of `tasks` one-GPU tasks and binds them to n1 from GPU `gpu` on (attempt `attempt`); returns its run ids. */
    async function place(id: string | null, over: Record<string, unknown>, gpu: number, now: number, attempt = 0, tasks = 1): Promise<{ id: string; runs: string[] }> {
      let jobId = id;
      if (jobId === null) {
        const r = parseJobSpec({ name: 'j', tasks: [{ gpus: 1, replicas: tasks, command: 'sleep 100' }], ...over });
        if (!r.ok) throw new Error(JSON.stringify(r.errors));
        jobId = (await store.submit('ml', r.spec, null, now)).jobs[0]?.id ?? '';
      }
      const binds = Array.from({ length: tasks }, (_, i) => ({ index: i, node: 'n1', gpus: [gpu + i], gpuMilli: 1000 }));
      await store.applyPlan({ binds: [{ jobId, attempt, tasks: binds }], preemptions: [], pending: [] }, now);
      const runs = ((await store.heartbeat('n1', [], [], now)) ?? []).filter((d) => d.jobId === jobId).map((d) => d.runId);
      return { id: jobId, runs };
    }

    test('a requeue keeps the running time of the attempt it ends and a record of every run', async () => {
      const { id, runs } = await place(null, {}, 0, 1000);
      await store.heartbeat('n1', [], [running(runs[0] ?? '', { startedAt: 2000 })], 2100);
      assert.deepEqual([(await store.getJob(id))?.startedAt, (await store.getJob(id))?.runSeconds], [2000, 0]);
      await store.preempt(id, 'make room', 5000);
      await store.heartbeat('n1', [], [exited(runs[0] ?? '', 143)], 6000);
      let job = await store.getJob(id);
      assert.deepEqual([job?.state, job?.attempt, job?.runSeconds, job?.startedAt], ['pending', 1, 4, null]);
      const again = await place(id, {}, 1, 7000, 1);
      await store.heartbeat('n1', [], [running(again.runs[0] ?? '', { startedAt: 8000 })], 8000);
      await store.heartbeat('n1', [], [exited(again.runs[0] ?? '', 0)], 9500);
      job = await store.getJob(id);
      assert.deepEqual([job?.state, job?.runSeconds, job?.startedAt, job?.finishedAt], ['succeeded', 4, 8000, 9500]);
      assert.deepEqual(await store.listAttempts(id), [
        { taskIndex: 0, attempt: 0, runId: `${id}.0.0`, node: 'n1', gpus: [0], gpuMilli: 1000, startedAt: 2000, finishedAt: 6000, exitCode: 143, endReason: 'stopped' },
        { taskIndex: 0, attempt: 1, runId: `${id}.0.1`, node: 'n1', gpus: [1], gpuMilli: 1000, startedAt: 8000, finishedAt: 9500, exitCode: 0, endReason: 'exited' },
      ]);
    });

    test('a lost node ends its runs as node-lost and the requeued job keeps their running time', async () => {
      await store.registerNode(node('n3'), 20_000);
      const r = parseJobSpec({ name: 'on-n3', tasks: [{ gpus: 1, command: 'sleep 100' }] });
      if (!r.ok) throw new Error('spec');
      const id = (await store.submit('ml', r.spec, null, 20_000)).jobs[0]?.id ?? '';
      await store.applyPlan({ binds: [{ jobId: id, attempt: 0, tasks: [{ index: 0, node: 'n3', gpus: [0], gpuMilli: 1000 }] }], preemptions: [], pending: [] }, 20_000);
      await store.heartbeat('n3', [], [running(`${id}.0.0`, { startedAt: 20_500 })], 20_500);
      await store.heartbeat('n1', [], [], 40_000);
      await store.heartbeat('n2', [], [], 40_000);
      assert.deepEqual(await store.expireNodes(30_000, 40_000), ['n3']);
      const job = await store.getJob(id);
      assert.deepEqual([job?.state, job?.runSeconds], ['pending', 19.5]);
      assert.deepEqual((await store.listAttempts(id)).map((a) => [a.node, a.finishedAt, a.endReason]), [['n3', 40_000, 'node-lost']]);
      await store.cancel(id, 'test', 40_001);
    });

    test('a job timed out while running stops its tasks, refuses preemption, and ends timeout with their exit codes', async () => {
      const { id, runs } = await place(null, { timeLimit: 5, tasks: [{ gpus: 1, replicas: 2, command: 'sleep 100' }] }, 0, 50_000, 0, 2);
      await store.heartbeat('n1', [], runs.map((r) => running(r, { startedAt: 50_100 })), 50_100);
      const marked = await store.timeOut(id, 'time limit 5s reached (ran 5s over 1 attempt)', 55_100);
      assert.equal(marked?.state, 'running', 'running until its tasks have stopped');
      assert.equal(await store.timeOut(id, 'again', 55_200), null, 'marked once');
      const desired = await store.heartbeat('n1', [], runs.map((r) => running(r)), 55_300);
      assert.deepEqual(desired?.filter((d) => d.jobId === id).map((d) => d.action), ['stop', 'stop']);
      await store.applyPlan({ binds: [], preemptions: [{ jobId: id, reason: 'make room' }], pending: [] }, 55_400);
      assert.equal((await store.getJob(id))?.state, 'running', 'a preemption does not turn a timeout into a requeue');
      await store.heartbeat('n1', [], [exited(runs[0] ?? '', 143), running(runs[1] ?? '')], 55_500);
      assert.equal((await store.getJob(id))?.state, 'running');
      await store.heartbeat('n1', [], [exited(runs[1] ?? '', 137)], 56_000);
      const job = await store.getJob(id);
      assert.deepEqual([job?.state, job?.reason, job?.finishedAt, job?.attempt], ['timeout', 'time limit 5s reached (ran 5s over 1 attempt)', 56_000, 0]);
      assert.deepEqual((await store.listTasks(id)).map((t) => [t.state, t.exitCode]), [['stopped', 143], ['stopped', 137]]);
      const types = (await store.listEvents({ jobId: id })).map((e) => e.type);
      assert.deepEqual(types.slice(-4), ['job:time-limit', 'task:stopped', 'task:stopped', 'job:timeout']);
      assert.equal(await store.cancel(id, 'test', 56_100), null, 'timeout is terminal');
      assert.equal((await store.jobStateCounts())['timeout'], 1);
      assert.deepEqual((await store.listJobs({ states: ['timeout'] })).map((j) => j.id), [id]);
    });

    test('a timed-out job whose node is lost meanwhile ends timeout, not requeued; a pending one ends at once', async () => {
      await store.registerNode(node('n4'), 60_000);
      const r = parseJobSpec({ name: 'on-n4', timeLimit: 1, tasks: [{ gpus: 1, command: 'sleep 100' }] });
      if (!r.ok) throw new Error('spec');
      const id = (await store.submit('ml', r.spec, null, 60_000)).jobs[0]?.id ?? '';
      await store.applyPlan({ binds: [{ jobId: id, attempt: 0, tasks: [{ index: 0, node: 'n4', gpus: [0], gpuMilli: 1000 }] }], preemptions: [], pending: [] }, 60_000);
      await store.heartbeat('n4', [], [running(`${id}.0.0`, { startedAt: 60_000 })], 60_000);
      await store.timeOut(id, 'time limit 1s reached', 61_000);
      for (const n of ['n1', 'n2']) await store.heartbeat(n, [], [], 90_000);
      await store.expireNodes(80_000, 90_000);
      assert.deepEqual([(await store.getJob(id))?.state, (await store.getJob(id))?.attempt], ['timeout', 0]);

      const pending = (await store.submit('ml', r.spec, null, 90_000)).jobs[0]?.id ?? '';
      const ended = await store.timeOut(pending, 'time limit 1s reached (ran 1s over 2 attempts)', 90_001);
      assert.deepEqual([ended?.state, ended?.finishedAt], ['timeout', 90_001]);
      assert.deepEqual((await store.listTasks(pending)).map((t) => t.state), ['stopped']);
      assert.ok((await store.listEvents({ jobId: pending })).some((e) => e.type === 'job:timeout'));
    });

    test("task 0's progress is the job's; checkpointAt moves only with the checkpoint step; other tasks and other nodes are ignored", async () => {
      const { id, runs } = await place(null, { tasks: [{ gpus: 1, replicas: 2, command: 'sleep 100' }] }, 2, 100_000, 0, 2);
      const [r0, r1] = [runs[0] ?? '', runs[1] ?? ''];
      await store.heartbeat('n1', [], [running(r0, { progress: { step: 10, totalSteps: 100, checkpointStep: 5 } }), running(r1, { progress: { step: 999 } })], 100_100);
      assert.deepEqual((await store.getJob(id))?.progress, { step: 10, totalSteps: 100, checkpointStep: 5, checkpointAt: 100_100, at: 100_100 });
      await store.heartbeat('n1', [], [running(r0, { progress: { step: 12, totalSteps: 100, checkpointStep: 5 } })], 100_200);
      assert.deepEqual((await store.getJob(id))?.progress, { step: 12, totalSteps: 100, checkpointStep: 5, checkpointAt: 100_100, at: 100_200 });
      await store.heartbeat('n1', [], [running(r0, { progress: { step: 20, checkpointStep: 20 } })], 100_300);
      assert.deepEqual((await store.getJob(id))?.progress, { step: 20, totalSteps: null, checkpointStep: 20, checkpointAt: 100_300, at: 100_300 });
      // Another node cannot report for n1's task; a malformed report changes nothing.
      await store.heartbeat('n2', [], [running(r0, { progress: { step: 1, checkpointStep: 1 } })], 100_400);
      await store.heartbeat('n1', [], [running(r0, { progress: { step: -1 } as never }), running(r1)], 100_500);
      assert.deepEqual((await store.getJob(id))?.progress, { step: 20, totalSteps: null, checkpointStep: 20, checkpointAt: 100_300, at: 100_300 });
      if (url !== 'memory:') {
        const reopened = await openStore(url);
        try {
          assert.deepEqual((await reopened.getJob(id))?.progress?.checkpointAt, 100_300, 'kept in the database');
        } finally {
          await reopened.close();
        }
      }
      await store.cancel(id, 'test', 100_600);
    });
  });
}
