/** Budgets at the boundary, periods, report rows and the energy/budgets config sections. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_PRICES, type EnergyPrices } from '../../core/energy/pricing.ts';
import { node, runJob } from '../../store/liveTesting.ts';
import { openStore } from '../../store/sqlStore.ts';
import type { Store } from '../../store/store.ts';
import { UserError } from '../../util/errors.ts';
import { parseConfig } from '../config.ts';
import { CoreSchedulerAdapter } from '../scheduling/coreAdapter.ts';
import { BudgetGate } from './budgetGate.ts';
import { localText, parseWhen, periodWindow } from './periods.ts';
import { reachedLimit, usageRows } from './report.ts';

const H = 3_600_000;

test('periods are local: a day from midnight, a week from Monday, a month from its first day', () => {
  // 2026-12-09T20:00Z is Thursday 2026-12-10 04:00 in UTC+8.
  const now = Date.UTC(2026, 11, 9, 20);
  assert.deepEqual(periodWindow('day', now, 8), { from: Date.UTC(2026, 11, 9, 16), to: Date.UTC(2026, 11, 10, 16) });
  assert.deepEqual(periodWindow('week', now, 8), { from: Date.UTC(2026, 11, 6, 16), to: Date.UTC(2026, 11, 13, 16) });
  assert.deepEqual(periodWindow('month', now, 8), { from: Date.UTC(2026, 10, 30, 16), to: Date.UTC(2026, 11, 31, 16) });
  assert.deepEqual(periodWindow('month', Date.UTC(2026, 11, 31, 17), 8).from, Date.UTC(2026, 11, 31, 16), 'January already in UTC+8');
  assert.deepEqual(periodWindow('total', now, 8), { from: 0, to: Number.POSITIVE_INFINITY });
  assert.equal(localText(Date.UTC(2026, 11, 31, 16), 8), '2027-01-01 00:00 UTC+8');
});

test('times in queries: ms, local dates and date-times, zones; nonsense is null', () => {
  assert.equal(parseWhen('1700000000000', 8), 1_700_000_000_000);
  assert.equal(parseWhen('2026-12-01', 8), Date.UTC(2026, 10, 30, 16));
  assert.equal(parseWhen('2026-12-01T08:30', 0), Date.UTC(2026, 11, 1, 8, 30));
  assert.equal(parseWhen('2026-12-01T08:30:00Z', 8), Date.UTC(2026, 11, 1, 8, 30));
  assert.equal(parseWhen('2026-12-01T08:30:00.5-02:00', 8), Date.UTC(2026, 11, 1, 10, 30, 0, 500));
  for (const bad of ['2026-02-30', '2026-12-01T25:00', 'yesterday', '', '12-01-2026']) assert.equal(parseWhen(bad, 8), null, bad);
});

test('a limit is reached exactly at it: used = limit holds, a hair below does not', () => {
  const b = { gpuHours: 10, kwh: null, yuan: null };
  assert.equal(reachedLimit(b, { gpuHours: 10, kwh: 99, yuan: 99 }), 'gpuHours');
  assert.equal(reachedLimit(b, { gpuHours: 10 - 1e-9, kwh: 99, yuan: 99 }), null);
  assert.equal(reachedLimit({ gpuHours: null, kwh: 2, yuan: 5 }, { gpuHours: 0, kwh: 1, yuan: 5 }), 'yuan');
  assert.equal(reachedLimit({ gpuHours: null, kwh: null, yuan: null }, { gpuHours: 1e9, kwh: 1e9, yuan: 1e9 }), null);
});

test('report rows: GPU-seconds by model, GPU-hours priced by model, energy cost as recorded', () => {
  const prices: EnergyPrices = { ...DEFAULT_PRICES, gpuHourYuan: { H100: 20, '*': 5 } };
  const g = (key: string, model: string | null, gpuSeconds: number, energyYuan: number) => ({ key, model, records: 1, gpuSeconds, energyJ: 3.6e6, idleJ: 0, kwh: 1.56, energyYuan, co2Grams: 10, requests: 0, tokens: 0 });
  const { rows, totals } = usageRows([g('a', 'H100', 3600, 1), g('a', 'T4', 7200, 2), g('b', null, 0, 0)], 'tenant', prices);
  assert.deepEqual(rows.map((r) => [r.key, r.records, r.gpuHours, r.gpuSecondsByModel, r.gpuYuan, r.costYuan, r.energyKwh]), [
    ['a', 2, 3, { H100: 3600, T4: 7200 }, 30, 33, 2],
    ['b', 1, 0, { cpu: 0 }, 0, 0, 1],
  ]);
  assert.equal(totals.costYuan, 33);
  assert.equal(totals.facilityKwh, 1.56 * 3);
  assert.deepEqual(usageRows([g('1', 'H100', 1, 0), g('2', 'H100', 1, 0)], 'model', prices).rows.map((r) => [r.key, r.records]), [['H100', 2]]);
});

describe('the budget gate on a real store', () => {
  let store: Store;
  const prices: EnergyPrices = { ...DEFAULT_PRICES, gpuHourYuan: { H100: 10, '*': 0 }, utcOffsetHours: 0 };
  const now = 10 * H;
  before(async () => {
    store = await openStore('memory:');
    await store.registerNode(node('n1', 'H100', 4), 0);
    // alice ran 2 GPUs for half an hour: exactly 1 GPU-hour, 10 yuan.
    await runJob(store, 'alice', {}, 1 * H, 1.5 * H);
    await store.submit('alice', (await store.getJob('1'))?.spec ?? assert.fail('no job'), null, 9 * H);
    await store.submit('bob', (await store.getJob('1'))?.spec ?? assert.fail('no job'), null, 9 * H);
  });
  after(async () => store.close());

  const planWith = async (): Promise<{ bound: string[]; reasons: Map<string, string> }> => {
    const gate = new BudgetGate(await CoreSchedulerAdapter.create('fifo', 'tide'), store, prices);
    const plan = await gate.plan(await store.snapshot(), now);
    const jobs = await store.listJobs({});
    const tenantOf = new Map(jobs.map((j) => [j.id, j.tenant]));
    return { bound: plan.binds.map((b) => tenantOf.get(b.jobId) ?? '?').sort(), reasons: new Map(plan.pending.map((p) => [tenantOf.get(p.jobId) ?? '?', p.reason])) };
  };

  test('usage exactly at a GPU-hour limit holds the tenant\'s pending jobs, with the reason; other tenants go on', async () => {
    await store.putBudget({ tenant: 'alice', period: 'total', gpuHours: 1, kwh: null, yuan: null }, now);
    const { bound, reasons } = await planWith();
    assert.deepEqual(bound, ['bob']);
    assert.match(reasons.get('alice') ?? '', /^budget-exhausted: tenant alice has used 1 of its 1 GPU-hours in all; running jobs go on/);
  });

  test('a hair above the usage, it is admitted', async () => {
    await store.putBudget({ tenant: 'alice', period: 'total', gpuHours: 1 + 1e-9, kwh: null, yuan: null }, now);
    assert.deepEqual((await planWith()).bound, ['alice', 'bob']);
  });

  test('a yuan limit counts GPU-hours at their price; a period that does not hold the usage is open', async () => {
    await store.putBudget({ tenant: 'alice', period: 'total', gpuHours: null, kwh: null, yuan: 10 }, now);
    assert.match((await planWith()).reasons.get('alice') ?? '', /has used 10 of its 10 yuan in all/);
    await store.deleteBudget('alice', 'total');
    // Today (from 00:00 UTC of day 0… the usage ran at 01:00-01:30 of the same day): held; a budget of a later day would not be.
    await store.putBudget({ tenant: 'alice', period: 'day', gpuHours: 1, kwh: null, yuan: null }, now);
    assert.match((await planWith()).reasons.get('alice') ?? '', /this day \(until 1970-01-02 00:00 UTC\)/);
    await store.putBudget({ tenant: 'alice', period: 'day', gpuHours: 2, kwh: null, yuan: null }, now);
    assert.deepEqual((await planWith()).bound, ['alice', 'bob']);
  });
});

describe('the energy and budgets sections of the cluster config', () => {
  const refused = (text: string, re: RegExp): void => {
    assert.throws(() => parseConfig(text, 'cluster.yaml'), (e: unknown) => e instanceof UserError && re.test(e.message), text);
  };
  test('a tariff by time-of-use periods, carbon, PUE, GPU-hour prices and budgets are read', () => {
    const c = parseConfig(
      'energy:\n  tariff:\n    - {from: 22, to: 8, yuanPerKwh: 0.3}\n    - {from: 8, to: 22, yuanPerKwh: 0.9}\n  carbon: 500\n  pue: 1.2\n  gpuHourYuan: {H100: 18}\n  utcOffsetHours: 0\nbudgets:\n  - {tenant: research, period: month, gpuHours: 100}\n',
      'cluster.yaml',
    );
    assert.deepEqual(c.energy?.tariffYuanPerKwh.slice(6, 10), [0.3, 0.3, 0.9, 0.9]);
    assert.equal(c.energy?.tariffYuanPerKwh[23], 0.3);
    assert.deepEqual([c.energy?.carbonGramsPerKwh[5], c.energy?.pue, c.energy?.gpuHourYuan, c.energy?.utcOffsetHours], [500, 1.2, { '*': 0, H100: 18 }, 0]);
    assert.deepEqual(c.budgets, [{ tenant: 'research', period: 'month', gpuHours: 100, kwh: null, yuan: null }]);
    assert.deepEqual(parseConfig('energy: {tariff: [1,1,1,1,1,1,1,1,1,1,1,1,2,2,2,2,2,2,2,2,2,2,2,2]}\n', 'c').energy?.tariffYuanPerKwh[12], 2);
  });
  test('bad sections are refused, naming the field', () => {
    refused('energy:\n  tariff:\n    - {from: 0, to: 8, yuanPerKwh: 0.3}\n', /energy\.tariff: the periods leave hours 8, 9, .*23 without a price/);
    refused('energy:\n  tariff:\n    - {from: 0, to: 24, yuanPerKwh: 0.3}\n    - {from: 3, to: 4, yuanPerKwh: 1}\n', /energy\.tariff\[1\]: hour 3 is already in an earlier period/);
    refused('energy: {pue: 0.5}\n', /energy\.pue: must be a number from 1 to 5/);
    refused('energy: {carbon: [1, 2]}\n', /energy\.carbon/);
    refused('energy: {watts: 3}\n', /energy/);
    refused('budgets:\n  - {tenant: a, period: month}\n', /budgets\[0\]: give at least one limit/);
    refused('budgets:\n  - {tenant: a, period: year, gpuHours: 1}\n', /budgets\[0\]\.period: required: one of day, week, month, total/);
    refused('budgets:\n  - {tenant: a, period: day, kwh: 1}\n  - {tenant: a, period: day, yuan: 1}\n', /budgets\[1\]: tenant a has a day budget already/);
  });
});
