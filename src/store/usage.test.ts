/** Usage records, energy counters and budgets on every store adapter (memory, SQLite, PostgreSQL). */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseJobSpec } from '../api/spec.ts';
import { DEFAULT_PRICES, energyCharge, type EnergyPrices } from '../core/energy/pricing.ts';
import { Rng } from '../core/rng.ts';
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

    test('rollups give what the records give; late energy is spread like the rest; a new offset rebuilds them', async () => {
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

    test('hourly and daily rollups give what the records give, for any window cut to the minute; records spanning hours are split by their time in each', async () => {
      // Local time UTC+5:30: hours are cut at :30 UTC, days at 18:30 UTC.
      const offset = 5.5;
      const H = 3_600_000;
      const base = 10 * 86_400_000;
      const localHour = (t: number) => Math.floor((t + offset * H) / H) * H - offset * H;
      await store.registerNode(node('n3', 'L40S', 4), 0);
      await store.registerNode(node('n4', 'T4', 4), 0);
      const rng = Rng.fromSeed(7);
      const lengths = [0, 60_000, 59 * 60_000, H, 3.5 * H, 26 * H];
      const meters = new Map<string, { seq: number; j: number }>();
      const runs: { id: string; runId: string; nodeId: string }[] = [];
      for (let i = 0; i < 48; i++) {
        const nodeId = i % 3 === 0 ? 'n4' : 'n3';
        // Starts to the minute, a quarter of them on a local hour boundary; lengths from none to a day and more.
        let start = base + Math.floor(rng.float() * 4 * 24 * 60) * 60_000;
        if (i % 4 === 0) start = localHour(start);
        const end = start + (lengths[Math.floor(rng.float() * lengths.length)] as number);
        const { id, runId } = await bind(i % 2 ? 'dora' : 'erin', nodeId, [i % 4], i % 5 === 0 ? 500 : 1000, start);
        await store.heartbeat(nodeId, [], [{ ...running(runId), startedAt: start }], start);
        await store.heartbeat(nodeId, [], [{ runId, state: 'exited', pid: 1, exitCode: 0 }], end);
        const m = meters.get(nodeId) ?? { seq: 0, j: 0 };
        const joules = ((end - start) / 1000) * 300 * rng.float() + 1;
        m.seq++;
        m.j += joules;
        meters.set(nodeId, m);
        await store.recordEnergy(nodeId, { epoch: 'p', seq: m.seq, nodeJ: m.j, unallocatedJ: 0, runs: [{ runId, energyJ: joules, idleJ: joules / 10 }] }, end, FLAT);
        if (i % 2 === 0) await store.recordServed([{ jobId: id, attempt: 0, requests: 10 + i, tokens: 256 * (10 + i) }]);
        runs.push({ id, runId, nodeId });
      }
      const now = base + 6 * 86_400_000;
      assert.ok((await store.rollUpUsage(now, offset)) >= 48);
      const fields = ['gpuSeconds', 'energyJ', 'idleJ', 'kwh', 'energyYuan', 'co2Grams', 'requests', 'tokens'] as const;
      const same = async (q: { from: number; to: number; by: 'tenant' | 'queue' | 'model'; tenant?: string }): Promise<void> => {
        const raw = await store.usage({ ...q, now });
        const rolled = await store.usage({ ...q, now, utcOffsetHours: offset });
        const what = JSON.stringify(q);
        assert.deepEqual(rolled.map((g) => [g.key, g.model, g.records]), raw.map((g) => [g.key, g.model, g.records]), what);
        for (const [i, g] of rolled.entries()) for (const f of fields) near(g[f], raw[i]?.[f] ?? NaN, `${what} ${g.key}/${g.model} ${f}`);
      };
      const windows: [number, number][] = [[0, now], [base, now], [localHour(base + 30 * H), localHour(base + 80 * H)], [base + 90 * 60_000, base + 100 * 60_000], [base + 17 * 60_000, base + 3 * 86_400_000 + 7 * 60_000]];
      for (let i = 0; i < 40; i++) {
        const a = base - 86_400_000 + Math.floor(rng.float() * 7 * 24 * 60) * 60_000;
        const b = a + 60_000 + Math.floor(rng.float() * 3 * 24 * 60) * 60_000;
        windows.push([a, b]);
      }
      for (const [from, to] of windows) {
        for (const by of ['tenant', 'queue', 'model'] as const) await same({ from, to, by });
        await same({ from, to, by: 'tenant', tenant: 'dora' });
      }
      // Joules and requests that reach folded records later are spread over their hours the same way.
      for (const r of runs.slice(0, 6)) {
        const m = meters.get(r.nodeId) ?? assert.fail('no meter');
        m.seq++;
        m.j += 5000;
        const total = (await store.usage({ from: 0, to: now, now, by: 'job' })).find((g) => g.key === r.id)?.energyJ ?? 0;
        await store.recordEnergy(r.nodeId, { epoch: 'p', seq: m.seq, nodeJ: m.j, unallocatedJ: 0, runs: [{ runId: r.runId, energyJ: total + 5000, idleJ: 0 }] }, now, FLAT);
        await store.recordServed([{ jobId: r.id, attempt: 0, requests: 1000, tokens: 1000 }]);
      }
      for (const [from, to] of windows.slice(0, 12)) for (const by of ['tenant', 'model'] as const) await same({ from, to, by });
    });

    test("a replica's served counters count increases only: a restart counts from 0, a repeat adds nothing, nonsense is ignored", async () => {
      const { id, runId } = await bind('frank', 'n3', [0], 1000, 20 * 86_400_000);
      await store.heartbeat('n3', [], [{ ...running(runId), startedAt: 20 * 86_400_000 }], 20 * 86_400_000);
      const served = async (requests?: number, tokens?: number): Promise<[number, number]> => {
        assert.equal(await store.recordServed([{ jobId: id, attempt: 0, ...(requests !== undefined ? { requests } : {}), ...(tokens !== undefined ? { tokens } : {}) }]), 1);
        const [g] = await store.usage({ from: 0, to: 21 * 86_400_000, now: 20 * 86_400_000 + 60_000, by: 'job', tenant: 'frank' });
        return [g?.requests ?? NaN, g?.tokens ?? NaN];
      };
      assert.deepEqual(await served(10, 2560), [10, 2560], 'the first reading counts from 0');
      assert.deepEqual(await served(25, 6400), [25, 6400]);
      assert.deepEqual(await served(25, 6400), [25, 6400], 'the same reading again: nothing');
      assert.deepEqual(await served(5, 1280), [30, 7680], 'a restarted counter: from 0 again');
      assert.deepEqual(await served(7), [32, 7680], 'no tokens counter in this scrape: tokens unchanged');
      assert.deepEqual(await served(undefined, 1536), [32, 7936]);
      assert.deepEqual(await served(Number.NaN, 1e300), [32, 7936], 'not a count: ignored');
      assert.equal(await store.recordServed([{ jobId: id, attempt: 5, requests: 1 }, { jobId: 'x', attempt: 0, requests: 1 }]), 0, 'no such attempt');
      const [svc] = await store.usage({ from: 0, to: 21 * 86_400_000, now: 20 * 86_400_000 + 60_000, by: 'service', tenant: 'frank' });
      assert.equal(svc, undefined, 'not a replica: no service row');
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
