/**
 * The idle monitor on every store adapter (migration 008): heartbeats with telemetry in, streaks,
 * `job:idle` events and reclaims out, driven on a clock the test moves (the store takes `now`).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseJobSpec } from '../../api/spec.ts';
import type { GpuTelemetry } from '../../api/types.ts';
import type { Store } from '../../store/store.ts';
import { storeFactories } from '../../store/testing.ts';
import { idleConfigOf } from './idleConfig.ts';
import { IdleMonitor } from './idleMonitor.ts';
import { jobIdle } from './idleRoutes.ts';

const MEM = 81_920;
const node = { id: 'n1', address: 'http://127.0.0.1:9', cpuMilli: 64_000, memoryMib: 512 * 1024, gpus: Array.from({ length: 8 }, (_, i) => ({ index: i, model: 'H100', memoryMib: MEM, uuid: `GPU-n1-${i}` })), simulated: true };
const CONFIG = idleConfigOf({ afterMinutes: 1, action: 'reclaim' });

for (const factory of storeFactories()) {
  describe(`idle monitor: ${factory.name}`, { skip: factory.skip }, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    before(async () => {
      ({ store, cleanup } = await factory.open());
      for (const t of ['a', 'b']) await store.ensureTenant(t, 1);
      await store.registerNode(node, 1);
    });
    after(async () => cleanup());

    const started: string[] = [];

    /** Submits and binds a job to n1's GPUs `gpus` (one task per entry), running from `at`; returns its id and run ids. */
    async function start(tenant: string, spec: Record<string, unknown>, gpus: readonly (readonly number[])[], at: number, milli = 1000): Promise<{ id: string; runs: string[] }> {
      const r = parseJobSpec({ name: 'j', ...spec, tasks: [{ gpus: milli === 1000 ? (gpus[0]?.length ?? 1) : milli / 1000, replicas: gpus.length, command: 'sleep 600' }] });
      if (!r.ok) throw new Error(JSON.stringify(r.errors));
      const id = (await store.submit(tenant, r.spec, null, at)).jobs[0]?.id ?? '';
      await store.applyPlan({ binds: [{ jobId: id, attempt: 0, tasks: gpus.map((g, i) => ({ index: i, node: 'n1', gpus: g, gpuMilli: milli * g.length })) }], preemptions: [], pending: [] }, at);
      const runs = gpus.map((_, i) => `${id}.${i}.0`);
      // The agent reports every run it has (one it stops reporting has vanished).
      started.push(...runs);
      await store.heartbeat('n1', [], started.map((runId) => ({ runId, state: 'running', pid: 7, exitCode: null, startedAt: at })), at);
      return { id, runs };
    }

    test('idle jobs are reported after afterMinutes, reclaimed where their policy allows, and busy ones never', async () => {
      const seconds = new Map<string, number>();
      let leader = new IdleMonitor(store, CONFIG, { maxGapMs: 15_000, onIdleSeconds: (t, s) => seconds.set(t, (seconds.get(t) ?? 0) + s) });
      const t0 = 10_000;
      const reclaim = await start('a', {}, [[0]], t0);
      const report = await start('a', { idlePolicy: 'report' }, [[1]], t0);
      const busy = await start('a', {}, [[2]], t0);
      const serving = await start('b', { kind: 'inference' }, [[3]], t0);
      const partial = await start('a', {}, [[4, 5]], t0);
      // Two tasks share GPU 6 (half each), both of tenant b: one GPU, two idle allocations.
      const shared = await start('b', { idlePolicy: 'report' }, [[6], [6]], t0, 500);
      const busyGpus = new Set([2, 5]);
      const telemetry = (busyNow: ReadonlySet<number>): GpuTelemetry[] =>
        node.gpus.map((g) => (busyNow.has(g.index) ? { index: g.index, utilization: 90, memoryUsedMib: 60_000, powerWatts: 600 } : { index: g.index, utilization: 0, memoryUsedMib: 200, powerWatts: 70 }));
      const runs = [reclaim, report, busy, serving, partial, shared].flatMap((j) => j.runs);
      const beat = async (at: number, busyNow = busyGpus) => {
        await store.heartbeat('n1', telemetry(busyNow), runs.map((runId) => ({ runId, state: 'running' as const, pid: 7, exitCode: null })), at);
        return leader.enforce(await store.snapshot(), at, 1);
      };
      for (let at = t0 + 5000; at < t0 + 65_000; at += 5000) {
        const out = await beat(at);
        assert.deepEqual(out, { reported: [], reclaimed: [] }, `nothing before 60 s of idle samples (at ${at})`);
      }
      // The first sample was at t0 + 5 s: 60 s of idle samples at t0 + 65 s.
      const crossing = await beat(t0 + 65_000);
      assert.deepEqual([...crossing.reported].sort(), [reclaim.id, report.id, serving.id, partial.id, shared.id].sort());
      assert.deepEqual(crossing.reclaimed, [reclaim.id], 'only the job whose every GPU is idle and whose policy is reclaim');

      const gone = await store.getJob(reclaim.id);
      assert.equal(gone?.state, 'cancelled');
      assert.match(gone?.reason ?? '', /^idle: its GPU idle for 1m \(n1 GPU 0; utilization ≤ 5 %, memory ≤ 5 %\), reclaimed by idle policy reclaim$/);
      const events = await store.listEvents({ jobId: reclaim.id });
      assert.deepEqual(events.map((e) => e.type).filter((t) => t.startsWith('job:idle')), ['job:idle', 'job:idle-reclaimed']);
      assert.match(events.find((e) => e.type === 'job:idle-reclaimed')?.message ?? '', /idle for 1m .*SIGKILL after 10 s/);
      assert.deepEqual((await store.listTasks(reclaim.id)).map((t) => t.state), ['stopping'], 'its task is asked to stop');

      for (const j of [report, serving, partial, shared]) assert.equal((await store.getJob(j.id))?.state, 'running', `job ${j.id} keeps running`);
      assert.match((await store.listEvents({ jobId: partial.id })).find((e) => e.type === 'job:idle')?.message ?? '', /^1 of 2 GPUs idle for 1m \(n1 GPU 4; .*\): idle policy reclaim, reclaimed once all its GPUs are idle$/);
      assert.match((await store.listEvents({ jobId: serving.id })).find((e) => e.type === 'job:idle')?.message ?? '', /idle policy report$/, 'inference defaults to report');
      assert.deepEqual(await store.listIdleGpus({ jobId: busy.id }), [], 'the busy job has no idle GPU');
      assert.equal((await store.listEvents({ jobId: busy.id })).filter((e) => e.type.startsWith('job:idle')).length, 0);

      // The job's view, as GET /v1/jobs/:id shows it.
      const view = await jobIdle(store, (await store.getJob(report.id))!, await store.listTasks(report.id), CONFIG);
      assert.deepEqual([view?.policy, view?.idleGpus, view?.heldGpus, view?.allIdle, view?.reclaimAt, view?.gpus.map((g) => [g.node, g.gpu, g.idleSeconds])], ['report', 1, 1, true, null, [['n1', 1, 60]]]);
      const half = await jobIdle(store, (await store.getJob(shared.id))!, await store.listTasks(shared.id), CONFIG);
      assert.deepEqual([half?.idleGpus, half?.heldGpus, half?.allIdle, half?.gpus.map((g) => [g.task, g.gpu, g.gpuMilli])], [1, 1, true, [[0, 6, 500], [1, 6, 500]]]);
      assert.equal(await jobIdle(store, (await store.getJob(busy.id))!, await store.listTasks(busy.id), CONFIG), null);

      // 60 s each for GPUs 0, 1, 3, 4 and the two halves of 6 (a: 0, 1, 4; b: 3, 6).
      assert.deepEqual([Math.round(seconds.get('a') ?? 0), Math.round(seconds.get('b') ?? 0)], [180, 120]);

      // A new leader carries on from the store: the streaks keep their start.
      leader = new IdleMonitor(store, CONFIG, { maxGapMs: 15_000 });
      const next = await beat(t0 + 70_000);
      assert.deepEqual(next, { reported: [], reclaimed: [] }, 'no job is reported or reclaimed twice');
      assert.deepEqual((await store.listIdleGpus({ jobId: report.id })).map((r) => r.since), [t0 + 5000]);

      // The report job's GPU shows work: its streak ends with an event, and idle time counts afresh.
      const busyAgain = new Set([...busyGpus, 1]);
      await beat(t0 + 75_000, busyAgain);
      assert.deepEqual(await store.listIdleGpus({ jobId: report.id }), []);
      assert.match((await store.listEvents({ jobId: report.id })).at(-1)?.message ?? '', /^its GPUs show work again after 1m 5s idle$/);
      assert.deepEqual((await store.listIdleGpus({ tenant: 'b' })).map((r) => [r.jobId, r.task]), [[serving.id, 0], [shared.id, 0], [shared.id, 1]], "tenant b's rows only");
    });
  });
}
