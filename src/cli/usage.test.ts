import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { UsageReport, UsageRow } from '../api/usage.ts';
import { budgetsTable, num, reportCsv, reportTable } from './usage.ts';

const row = (key: string, over: Partial<UsageRow> = {}): UsageRow => ({
  key, records: 2, gpuSeconds: 7200, gpuHours: 2, gpuSecondsByModel: { H100: 3600, A100: 3600 }, energyJ: 3.6e6, energyKwh: 1, facilityKwh: 1.5, idleJ: 0.36e6, energyYuan: 0.9, gpuYuan: 30, costYuan: 30.9, co2Grams: 800, requests: 0, tokens: 0, joulesPerRequest: null, yuanPerMillionTokens: null, ...over,
});
const rep: UsageReport = { from: 0, to: 1000, by: 'job', rows: [row('7', { tenant: 'ml', queue: 'default' }), row('9', { tenant: 'ml', queue: 'fast, "big"' })], totals: row('total', { records: 4 }), truncated: false };

test('numbers for people: 3 significant digits, one decimal from 100', () => {
  assert.deepEqual([num(0), num(0.012345), num(2), num(99.949), num(1234.56)], ['0', '0.0123', '2', '99.9', '1234.6']);
});

test('report tables: the key columns of the grouping, the kind\'s columns, a total row', () => {
  const t = reportTable('cost', rep).split('\n');
  assert.match(t[0] ?? '', /^JOBID\s+TENANT\s+QUEUE\s+GPU-HOURS\s+ENERGY-YUAN\s+GPU-YUAN\s+COST-YUAN$/);
  assert.match(t[1] ?? '', /^7\s+ml\s+default\s+2\s+0\.9\s+30\s+30\.9$/);
  assert.match(t[3] ?? '', /^TOTAL\s+2\s+0\.9\s+30\s+30\.9$/);
  assert.match(reportTable('usage', { ...rep, by: 'tenant' }), /BY-MODEL \(GPU-H\)[\s\S]*H100:1,A100:1/);
  assert.match(reportTable('energy', { ...rep, by: 'queue' }), /^QUEUE\s+ENERGY-KWH\s+IDLE-KWH\s+FACILITY-KWH\s+CO2-KG\s+KWH\/GPU-H\n7\s+1\s+0\.1\s+1\.5\s+0\.8\s+0\.5/);
});

test('CSV: a header, full precision, quoted cells where needed, no total row', () => {
  assert.equal(reportCsv('energy', rep), 'jobid,tenant,queue,energy_kwh,idle_kwh,facility_kwh,co2_kg,kwh_gpu_h,requests,tokens,j_req,yuan_mtok\n7,ml,default,1,0.1,1.5,0.8,0.5,0,0,,\n9,ml,"fast, ""big""",1,0.1,1.5,0.8,0.5,0,0,,');
});

test("services' output: shown in tables when something was served, always in CSV", () => {
  const svc = (key: string, requests: number, tokens: number) => row(key, { tenant: 'ml', queue: 'serve', requests, tokens, joulesPerRequest: 3.6e6 / requests, yuanPerMillionTokens: (30.9 / tokens) * 1e6 });
  const served: UsageReport = { ...rep, by: 'service', rows: [svc('12', 1000, 256_000)], totals: svc('total', 1000, 256_000) };
  const t = reportTable('cost', served).split('\n');
  assert.match(t[0] ?? '', /^SERVICE\s+TENANT\s+QUEUE\s+GPU-HOURS\s+ENERGY-YUAN\s+GPU-YUAN\s+COST-YUAN\s+REQUESTS\s+TOKENS\s+J\/REQ\s+YUAN\/MTOK$/);
  assert.match(t[1] ?? '', /^12\s+ml\s+serve\s+2\s+0\.9\s+30\s+30\.9\s+1000\.0\s+256000\.0\s+3600\.0\s+120\.7$/);
  assert.doesNotMatch(reportTable('cost', rep), /REQUESTS/, 'no service in the report: no service columns');
  assert.equal(reportCsv('cost', served).split('\n')[1], `12,ml,serve,2,0.9,30,30.9,1000,256000,3600,${(30.9 / 256_000) * 1e6}`);
});


test('budgets: used/limit per measure, when the period resets, and whether admission is open', () => {
  const t = budgetsTable([{ tenant: 'ml', period: 'month', gpuHours: 100, kwh: null, yuan: 50, from: 0, resetsAt: Date.UTC(2027, 0, 1), used: { gpuHours: 100, kwh: 3, yuan: 20 }, reached: 'gpuHours' }]);
  assert.match(t, /^TENANT\s+PERIOD\s+GPU-HOURS\s+KWH\s+YUAN\s+RESETS\s+STATE\nml\s+month\s+100\.0\/100\.0\s+-\s+20\/50\s+2027-01-01T00:00Z\s+reached \(gpuHours\): new jobs wait$/);
});
