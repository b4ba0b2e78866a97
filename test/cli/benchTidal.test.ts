/**
 * End to end: `tide bench tidal` as a user runs it, in a real child process, on two days of
 * curve A from the real trace: the table, the JSON report with the fields the benchmark pins,
 * the chart, and one-line errors for bad input.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const TIDE = new URL('../../bin/tide.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'tide-bench-tidal-'));

function tide(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [TIDE, ...args], { encoding: 'utf8', timeout: 180_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const FIELDS = ['sloWindowsMetPct', 'usefulUtilisationPct', 'inferenceBusyPct', 'lentGpuPct', 'trainingGpuHoursPerDay', 'trainingVsOraclePct', 'lostGpuHoursPerDay', 'evictionsPerDay', 'reclaimLatencyP99Seconds', 'replicasOverTime', 'lentOverTime'];

test('two days of curve A, five policies: table, JSON with the pinned fields, chart', () => {
  const json = join(dir, 'tidal.json');
  const svg = join(dir, 'tidal.svg');
  const r = tide('bench', 'tidal', '--curve', 'A', '--days', '2', '--seeds', '0', '--threads', '2', '--json', json, '--svg', svg);
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(readFileSync(json, 'utf8'));
  assert.equal(report.curve, 'A');
  assert.deepEqual([report.days, report.warmupDays, report.gpus], [2, 1, 109]);
  assert.deepEqual(Object.keys(report.policies), ['static', 'reactive', 'window', 'tide', 'oracle']);
  for (const [name, p] of Object.entries<any>(report.policies)) {
    for (const field of FIELDS) assert.ok(field in p, `${name} lacks ${field}`);
    assert.ok(p.sloWindowsMetPct >= 0 && p.sloWindowsMetPct <= 100);
    assert.equal(p.replicasOverTime.length, 288, 'one point per 5 minutes of the scored day');
    assert.equal(p.lentOverTime.length, 288);
    assert.ok(Array.isArray(p.shortfalls));
    assert.match(r.stdout, new RegExp(`│ ${name} `));
  }
  const p = report.policies;
  assert.equal(p.static.sloWindowsMetPct, 100);
  assert.equal(p.static.lentGpuPct, 0);
  assert.equal(p.oracle.trainingVsOraclePct, 100);
  assert.ok(p.tide.sloWindowsMetPct >= 99.9, `tide ${p.tide.sloWindowsMetPct}`);
  assert.ok(p.tide.usefulUtilisationPct > 3 * p.static.usefulUtilisationPct);
  assert.equal(report.rateOverTime.length, 288);
  const chart = readFileSync(svg, 'utf8');
  assert.match(chart, /^<svg xmlns/);
  for (const name of Object.keys(p)) assert.ok(chart.includes(`>${name}: SLO `), `chart lacks ${name}`);
});

test('bad input: one line, exit 2, naming what is wrong', () => {
  const missing = tide('bench', 'tidal', '--curve', join(dir, 'nope.csv'), '--days', '2');
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /^tide: --curve: '.*nope\.csv' is not A, B, spiky, smooth, weekly or an existing file\n$/);
  const badFile = join(dir, 'bad.csv');
  writeFileSync(badFile, 't_seconds,value\n0,1\n300,abc\n');
  const bad = tide('bench', 'tidal', '--curve', badFile, '--days', '2');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /bad\.csv:3: field 'value': 'abc' is not a number/);
  assert.doesNotMatch(bad.stderr, /at .*\.ts:/, 'no stack trace');
  const traces = tide('bench', 'tidal', '--traces', join(dir, 'none'));
  assert.equal(traces.status, 2);
  assert.match(traces.stderr, /^tide: --traces: .*no such folder/);
});
