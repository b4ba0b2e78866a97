/**
 * End to end: `tide bench placement` as a user runs it, in a real child process, on a slice of
 * the real openb trace (every 5th node, every 4th pod), with the JSON report and SVG chart.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { placementPolicyNames } from '../../src/core/placement/index.ts';
import type { PlacementReport } from '../../src/bench/placementBenchmark.ts';

const TRACES = new URL('../../../shared/traces/openb-2023/', import.meta.url).pathname;
const TIDE = new URL('../../bin/tide.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'tide-bench-'));

function slice(name: string, every: number): string {
  const [header, ...rows] = readFileSync(join(TRACES, name), 'utf8').trimEnd().split('\n');
  const file = join(dir, name);
  writeFileSync(file, [header, ...rows.filter((_, i) => i % every === 0)].join('\n') + '\n');
  return file;
}

const nodes = slice('openb_node_list_gpu_node.csv', 5);
const pods = slice('openb_pod_list_default.csv', 4);

function tide(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [TIDE, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('the protocol on a slice of the trace: table, JSON report and chart', () => {
  const json = join(dir, 'report.json');
  const svg = join(dir, 'chart.svg');
  const r = tide('bench', 'placement', '--pods', pods, '--nodes', nodes, '--seeds', '42-43', '--json', json, '--svg', svg);
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(readFileSync(json, 'utf8')) as PlacementReport;
  assert.equal(report.nodes, 243);
  assert.deepEqual(report.seeds, [42, 43]);
  assert.deepEqual(Object.keys(report.policies), placementPolicyNames());
  for (const [name, s] of Object.entries(report.policies)) {
    assert.ok(s.unallocatedAt100.mean >= report.lowerBoundAt100, `${name} is below the floor`);
    assert.deepEqual(s.curve.map((c) => c.arrivedPct), [80, 90, 95, 100, 105, 110, 120, 130]);
    assert.ok(s.placementsPerSecond > 0);
    assert.match(r.stdout, new RegExp(`│ ${name} `));
  }
  const at100 = (p: string): number => report.policies[p]?.unallocatedAt100.mean ?? NaN;
  assert.ok(at100('fgd') < at100('bestfit') && at100('bestfit') < at100('random'), `fgd ${at100('fgd')}, bestfit ${at100('bestfit')}, random ${at100('random')}`);
  assert.match(r.stdout, /floor \(lower bound/);
  const chart = readFileSync(svg, 'utf8');
  assert.match(chart, /^<svg xmlns/);
  for (const name of placementPolicyNames()) assert.ok(chart.includes(`>${name} (`), `chart lacks ${name}`);
});

test('the same trace, seeds and policy give the same result, run after run', () => {
  const runs = [1, 2].map((i) => {
    const json = join(dir, `again-${i}.json`);
    assert.equal(tide('bench', 'placement', '--pods', pods, '--nodes', nodes, '--seeds', '44', '--policies', 'fgd,random', '--json', json).status, 0);
    const report = JSON.parse(readFileSync(json, 'utf8')) as PlacementReport;
    return Object.values(report.policies).map((s) => [s.perSeedAt100, s.curve, s.droppedPods]);
  });
  assert.deepEqual(runs[0], runs[1]);
});

test('bad input: one line naming file, line and field, exit 2, no stack trace', () => {
  const bad = join(dir, 'bad.csv');
  writeFileSync(bad, 'name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\np0,1000,2048,1,abc,\n');
  const r = tide('bench', 'placement', '--pods', bad, '--nodes', nodes);
  assert.equal(r.status, 2);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /bad\.csv:2: field 'gpu_milli': 'abc' is not an integer/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test('bad flags are named', () => {
  const r = tide('bench', 'placement', '--pods', pods, '--nodes', nodes, '--seeds', '9-1');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--seeds: range 9-1 runs backwards/);
});
