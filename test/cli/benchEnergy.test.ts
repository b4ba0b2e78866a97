/**
 * End to end: `tide bench energy` as a user runs it, in a real child process, at a tiny size
 * (Gavel's first 40 jobs, single- and multi-GPU; three days of the GenAI curve on two servers): the table, the JSON
 * report's shape and the charts; and bad flags as one line and exit code 2.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { EnergyBenchReport } from '../../src/bench/energy/energyBenchmark.ts';

const TIDE = new URL('../../bin/tide.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'tide-bench-energy-'));

function tide(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [TIDE, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('a tiny run: table, JSON {policies: {tide: {energyKwh, …}}} per workload, charts', () => {
  const json = join(dir, 'energy.json');
  const svg = join(dir, 'energy');
  const r = tide('bench', 'energy', '--seeds', '0', '--measure', '0-39', '--days', '3', '--servers', '2', '--peak-inference', '8', '--batch-rate', '0.3', '--threads', '2', '--json', json, '--svg', svg);
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(readFileSync(json, 'utf8')) as EnergyBenchReport;
  const profiles = ['maxpower', 'powercap', 'consolidate', 'timeshift', 'tide'];
  assert.deepEqual(Object.keys(report.policies), profiles);
  for (const w of ['gavel-single', 'gavel-multi', 'genai'] as const) {
    const policies = report.workloads[w]?.policies ?? {};
    assert.deepEqual(Object.keys(policies), profiles, w);
    for (const [name, p] of Object.entries(policies)) {
      for (const field of ['energyKwh', 'energyPerWorkUnit', 'avgJctHours', 'costYuan', 'co2Kg', 'idleEnergyKwh'] as const) assert.ok(Number.isFinite(p[field]) && p[field] >= 0, `${w} ${name}.${field} = ${p[field]}`);
      assert.ok(p.closureErrorMax <= 1e-3, `${w} ${name}: accounting closes`);
      assert.match(r.stdout, new RegExp(`│ ${name} `));
    }
    assert.equal(policies['maxpower']?.meanCap, 1);
    assert.ok((policies['tide']?.meanCap ?? 1) < 1, `${w}: tide caps power`);
    assert.ok((policies['consolidate']?.idleEnergyKwh ?? Infinity) < (policies['maxpower']?.idleEnergyKwh ?? 0), `${w}: consolidation saves idle energy`);
    for (const file of [`${svg}-${w}.svg`, `${svg}-${w}-power.svg`]) assert.ok(existsSync(file) && readFileSync(file, 'utf8').startsWith('<svg'), file);
  }
  assert.deepEqual(Object.keys(report.judged), ['gavel-single', 'gavel-multi']);
  assert.ok(typeof report.judged['gavel-single']?.met === 'boolean');
  assert.match(r.stdout, /tide vs maxpower on gavel-single: energy per unit of work/);
});

test('bad flags: one line naming the flag, exit code 2', () => {
  for (const [args, pattern] of [
    [['--policies', 'maxpower,nope'], /--policies: unknown name 'nope'/],
    [['--single-rate', '-1'], /--single-rate: '-1' is not a number of jobs per hour/],
    [['--deferrable', '1.5'], /--deferrable: '1.5' is not a share from 0 to 1/],
    [['--days', '2'], /--days: at least 3/],
    [['--curve', join(dir, 'missing.csv'), '--workload', 'genai'], /--curve: .*no such file/],
  ] as const) {
    const r = tide('bench', 'energy', ...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});
