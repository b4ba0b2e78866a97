/** Usage records, energy counters and budgets on every store adapter (memory, SQLite, PostgreSQL). */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseJobSpec } from '../api/spec.ts';
import { DEFAULT_PRICES, energyCharge, type EnergyPrices } from '../core/energy/pricing.ts';
import { node } from './liveTesting.ts';
import type { Store } from './store.ts';
import { storeFactories } from './testing.ts';

const FLAT: EnergyPrices = { ...DEFAULT_PRICES, tariffYuanPerKwh: Array(24).fill(1), carbonGramsPerKwh: Array(24).fill(500), pue: 1.5 };
const spec = (gpus: number) => {
  const r = parseJobSpec({ name: 'u', tasks: [{ gpus, command: 'true' }] });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
};
const near = (a: number, b: number, what: string): void => assert.ok(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

for (const factory of storeFactories()) {
  if (factory.skip !== undefined) {
    test(`usage records: ${factory.name}`, { skip: factory.skip }, () => {});
    continue;
  }
  describe(`usage records: ${factory.name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    before(async () => {
      ({ store, cleanup } = await factory.open());
      await store.registerNode(node('n1', 'H100', 2), 0);
      await store.registerNode(node('n2', 'A100', 2), 0);
    });
    after(async () => cleanup());

    /** Submits a job as `tenant` and binds its one task to `gpus` of `nodeId` at `at`; returns its id and run id. */
    const bind = async (tenant: string, nodeId: string, gpus: number[], milli: number, at: number, jobId?: string): Promise<{ id: string; runId: string }> => {
      const id = jobId ?? (await store.submit(tenant, spec((milli * gpus.length) / 1000), null, at - 10)).jobs[0]?.id ?? '';
      const job = await store.getJob(id);
      assert.ok(await store.applyPlan({ binds: [{ jobId: id, attempt: job?.attempt ?? 0, tasks: [{ index: 0, node: nodeId, gpus, gpuMilli: milli }] }], preemptions: [], pending: [] }, at));
      const runId = ((await store.heartbeat(nodeId, [], [], at)) ?? []).find((d) => d.jobId === id)?.runId ?? '';
      assert.ok(runId);
      return { id, runId };
    };
    const running = (runId: string) => ({ runId, state: 'running' as const, pid: 1, exitCode: null, startedAt: 0 });

    test('each attempt is a record; counters apply once; a new epoch starts from zero; closure per node', async () => {
      const { id, runId } = await bind('alice', 'n1', [0], 1000, 1_000);
      await store.heartbeat('n1', [], [{ ...running(runId), startedAt: 1_000 }], 1_000);
      // With the heartbeat that reports the run, in its transaction (what the agent route does).
      await store.heartbeat('n1', [], [{ ...running(runId), startedAt: 1_000 }], 2_000, { report: { epoch: 'e1', seq: 1, nodeJ: 100, unallocatedJ: 40, runs: [{ runId, energyJ: 60, idleJ: 10 }] }, prices: FLAT });
      // The same heartbeat again (its answer was lost): nothing more.
      assert.equal(await store.recordEnergy('n1', { epoch: 'e1', seq: 1, nodeJ: 100, unallocatedJ: 40, runs: [{ runId, energyJ: 60, idleJ: 10 }] }, 2_500, FLAT), false);
      await store.recordEnergy('n1', { epoch: 'e1', seq: 3, nodeJ: 250, unallocatedJ: 90, runs: [{ runId, energyJ: 160, idleJ: 10 }] }, 3_000, FLAT);
      // An older report arriving late changes nothing.
      assert.equal(await store.recordEnergy('n1', { epoch: 'e1', seq: 2, nodeJ: 200, unallocatedJ: 60, runs: [{ runId, energyJ: 140, idleJ: 10 }] }, 3_100, FLAT), false);
      // The agent lost its state: a new epoch counts from zero again.
      await store.recordEnergy('n1', { epoch: 'e2', seq: 1, nodeJ: 7, unallocatedJ: 2, runs: [{ runId, energyJ: 5, idleJ: 0 }] }, 4_000, FLAT);
      await store.heartbeat('n1', [], [{ runId, state: 'exited', pid: 1, exitCode: 0 }], 5_000);
      // A report for a run of another node is not this node's to give.
      await store.recordEnergy('n2', { epoch: 'x', seq: 1, nodeJ: 50, unallocatedJ: 0, runs: [{ runId, energyJ: 50, idleJ: 0 }] }, 5_000, FLAT);

      const [g] = await store.usage({ from: 0, to: 10_000, now: 10_000, by: 'job', tenant: 'alice' });
      assert.equal(g?.key, id);
      assert.equal(g?.tenant, 'alice');
      assert.equal(g?.queue, 'default');
      assert.equal(g?.model, 'H100');
      assert.equal(g?.records, 1);
      near(g?.gpuSeconds ?? 0, 4, 'one GPU for 4 s');
      near(g?.energyJ ?? 0, 165, 'joules');
      near(g?.idleJ ?? 0, 10, 'idle joules');
      near(g?.kwh ?? 0, (165 * 1.5) / 3.6e6, 'kWh at the meter');
      near(g?.energyYuan ?? 0, (165 * 1.5) / 3.6e6, 'yuan at 1/kWh');
      near(g?.co2Grams ?? 0, (500 * 165 * 1.5) / 3.6e6, 'grams');
      const n1 = (await store.nodeEnergy()).find((n) => n.node === 'n1');
      assert.deepEqual(n1, { node: 'n1', energyJ: 257, unallocatedJ: 92, jobsJ: 165, allocatedIdleJ: 10 });
      near((n1?.jobsJ ?? 0) + (n1?.unallocatedJ ?? 0), n1?.energyJ ?? 0, 'jobs + idle = node');
      const n2 = (await store.nodeEnergy()).find((n) => n.node === 'n2');
      assert.deepEqual([n2?.energyJ, n2?.jobsJ], [50, 0], 'the joules stay in n2\'s measure, unattributed');
    });

    test('a preempted and requeued job keeps both attempts as records; a fractional task counts its milli', async () => {
      const { id, runId } = await bind('bob', 'n2', [1], 500, 20_000);
      await store.heartbeat('n2', [], [{ ...running(runId), startedAt: 20_000 }], 20_000);
      await store.recordEnergy('n2', { epoch: 'y', seq: 1, nodeJ: 70, unallocatedJ: 0, runs: [{ runId, energyJ: 20, idleJ: 0 }] }, 24_000, FLAT);
      assert.ok(await store.preempt(id, 'test', 24_000));
      await store.heartbeat('n2', [], [{ runId, state: 'exited', pid: 1, exitCode: 143 }], 26_000);
      assert.equal((await store.getJob(id))?.state, 'pending');
      const second = await bind('bob', 'n1', [1], 500, 30_000, id);
      assert.notEqual(second.runId, runId);
      await store.heartbeat('n1', [], [{ ...running(second.runId), startedAt: 30_000 }], 30_000);
      await store.recordEnergy('n1', { epoch: 'e2', seq: 2, nodeJ: 37, unallocatedJ: 2, runs: [{ runId: second.runId, energyJ: 30, idleJ: 0 }] }, 32_000, FLAT);
      const groups = await store.usage({ from: 0, to: 100_000, now: 34_000, by: 'job', tenant: 'bob' });
      assert.deepEqual(groups.map((g) => [g.key, g.model, g.records]), [[id, 'A100', 1], [id, 'H100', 1]]);
      near(groups[0]?.gpuSeconds ?? 0, 0.5 * 6, 'half a GPU for 6 s (start to exit report)');
      near(groups[1]?.gpuSeconds ?? 0, 0.5 * 4, 'half a GPU, running: to now');
      assert.deepEqual(groups.map((g) => g.energyJ), [20, 30]);
      assert.equal((await store.listAttempts(id)).length, 2);
    });

    test('a window counts each record for its share inside it; tenants are kept apart', async () => {
      // bob's first attempt ran 20 s → 26 s: [23 s, 100 s) holds half of it.
      const half = await store.usage({ from: 23_000, to: 100_000, now: 34_000, by: 'tenant', tenant: 'bob' });
      const a100 = half.find((g) => g.model === 'A100');
      near(a100?.gpuSeconds ?? 0, 1.5, 'half of 3 GPU-seconds');
      near(a100?.energyJ ?? 0, 10, 'half of 20 J');
      assert.deepEqual((await store.usage({ from: 0, to: 100_000, now: 34_000, by: 'tenant' })).map((g) => g.key).sort(), ['alice', 'bob', 'bob']);
      assert.deepEqual(await store.usage({ from: 50_000, to: 60_000, now: 34_000, by: 'tenant' }), [], 'nothing ran then');
      assert.deepEqual((await store.usage({ from: 0, to: 100_000, now: 34_000, by: 'queue' })).map((g) => `${g.key}/${g.model}`), ['default/A100', 'default/H100']);
      assert.equal((await store.usage({ from: 0, to: 100_000, now: 34_000, by: 'node', limit: 1 })).length, 1);
    });

    test('energy is priced by the hour it was used in', async () => {
      const night = Array.from({ length: 24 }, (_, h) => (h < 8 ? 0.1 : 1));
      const prices: EnergyPrices = { ...FLAT, tariffYuanPerKwh: night, utcOffsetHours: 0 };
      const { runId } = await bind('carol', 'n1', [0], 1000, 3_600_000 * 7);
      await store.heartbeat('n1', [], [{ ...running(runId), startedAt: 3_600_000 * 7 }], 3_600_000 * 7);
      // 3.6e6 J (1 kWh GPU) over 07:00-09:00: half in the 0.1 hour, half in the 1.0 hour.
      await store.recordEnergy('n1', { epoch: 'e2', seq: 3, nodeJ: 3.6e6 + 37, unallocatedJ: 2, runs: [{ runId, energyJ: 3.6e6, idleJ: 0 }] }, 3_600_000 * 9, prices);
      const [g] = await store.usage({ from: 0, to: 3_600_000 * 24, now: 3_600_000 * 9, by: 'tenant', tenant: 'carol' });
      near(g?.energyYuan ?? 0, energyCharge(prices, 3.6e6, 7 * 3600, 9 * 3600).energyYuan, 'the tariff hour by hour');
      near(g?.energyYuan ?? 0, 1.5 * (0.5 * 0.1 + 0.5 * 1), 'by hand');
    });

    test('daily rollups give what the records give; late energy joins the day its record finished; a new offset rebuilds them', async () => {
      const now = 3 * 86_400_000 + 5_000;
      const both = async (q: { from: number; to: number; by: 'tenant' | 'queue' | 'model'; tenant?: string }) => {
        const raw = await store.usage({ ...q, now });
        const rolled = await store.usage({ ...q, now, utcOffsetHours: 0 });
        assert.deepEqual(rolled.map((g) => [g.key, g.model, g.records]), raw.map((g) => [g.key, g.model, g.records]), JSON.stringify(q));
        for (const [i, g] of rolled.entries()) for (const f of ['gpuSeconds', 'energyJ', 'idleJ', 'kwh', 'energyYuan', 'co2Grams'] as const) near(g[f], raw[i]?.[f] ?? NaN, `${JSON.stringify(q)} ${g.key} ${f}`);
        return rolled;
      };
      assert.ok((await store.rollUpUsage(now, 0)) >= 2, 'the finished records are folded');
      assert.equal(await store.rollUpUsage(now, 0), 0, 'and only once');
      for (const by of ['tenant', 'queue', 'model'] as const) {
        await both({ from: 0, to: now, by });
        await both({ from: 0, to: 86_400_000, by });
        await both({ from: 86_400_000, to: now, by });
      }
      await both({ from: 0, to: now, by: 'tenant', tenant: 'bob' });
      // Joules for alice's finished run arrive after it was rolled up.
      const before = (await both({ from: 0, to: now, by: 'tenant', tenant: 'alice' }))[0]?.energyJ ?? 0;
      const runId = (await store.listAttempts('1'))[0]?.runId ?? '';
      await store.recordEnergy('n1', { epoch: 'e2', seq: 9, nodeJ: 3.6e6 + 47, unallocatedJ: 2, runs: [{ runId, energyJ: 15, idleJ: 0 }] }, now, FLAT);
      near((await both({ from: 0, to: now, by: 'tenant', tenant: 'alice' }))[0]?.energyJ ?? 0, before + 10, 'ten more joules, once');
      // Days cut at another offset: rebuilt, same totals.
      await store.rollUpUsage(now, 8);
      const eight = await store.usage({ from: 0, to: now, now, by: 'tenant', utcOffsetHours: 8 });
      near(eight.reduce((n, g) => n + g.energyJ, 0), (await store.usage({ from: 0, to: now, now, by: 'tenant' })).reduce((n, g) => n + g.energyJ, 0), 'the same joules');
    });

    test('budgets: set, replace, list per tenant, delete', async () => {
      await store.putBudget({ tenant: 'alice', period: 'month', gpuHours: 10, kwh: null, yuan: null }, 1);
      await store.putBudget({ tenant: 'alice', period: 'month', gpuHours: 12.5, kwh: 3, yuan: null }, 2);
      await store.putBudget({ tenant: 'bob', period: 'total', gpuHours: null, kwh: null, yuan: 100 }, 3);
      assert.deepEqual(await store.listBudgets('alice'), [{ tenant: 'alice', period: 'month', gpuHours: 12.5, kwh: 3, yuan: null }]);
      assert.deepEqual((await store.listBudgets()).map((b) => `${b.tenant}/${b.period}`), ['alice/month', 'bob/total']);
      assert.equal(await store.deleteBudget('bob', 'total'), true);
      assert.equal(await store.deleteBudget('bob', 'total'), false);
      assert.deepEqual((await store.listBudgets()).map((b) => b.tenant), ['alice']);
    });
  });
}
