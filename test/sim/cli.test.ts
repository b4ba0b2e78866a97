// End to end: the real `tide` command in a child process, on the fixtures beside this file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const fixtures = new URL('./fixtures/', import.meta.url).pathname;

async function tide(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('node', ['bin/tide.js', ...args], { timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

test('tide sim runs a YAML cluster and a CSV workload through several policies and writes JSON', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tide-sim-'));
  const json = join(dir, 'report.json');
  const r = await tide(['sim', '--cluster', `${fixtures}cluster.yaml`, '--workload', `${fixtures}workload.csv`, '--policies', 'tide,fifo', '--json', json]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /5 jobs on 16 GPUs/);
  const report = JSON.parse(readFileSync(json, 'utf8')) as { policies: Record<string, { jobs: number; gpuHoursByQueue: Record<string, number>; unfinished: unknown[] }> };
  for (const p of ['tide', 'fifo']) {
    assert.equal(report.policies[p]?.jobs, 5, `${p} finishes every job`);
    assert.deepEqual(report.policies[p]?.unfinished, []);
    assert.deepEqual(Object.keys(report.policies[p]?.gpuHoursByQueue ?? {}), ['a', 'b']);
  }
});

test('tide sim names the file, line and field of a bad value, and exits 2 without a stack trace', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tide-sim-'));
  const bad = join(dir, 'jobs.yaml');
  writeFileSync(bad, 'jobs:\n  - id: x\n    gpus: 2\n    totalSteps: 100\n    throughput: { H100: fast }\n');
  const r = await tide(['sim', '--cluster', `${fixtures}cluster.yaml`, '--workload', bad]);
  assert.equal(r.code, 2);
  assert.equal(r.stderr.trim(), `tide: ${bad}:5: field 'jobs[0].throughput.H100': expected a number, got "fast"`);
});

test('tide bench jobs rejects a bad rate in one line', async () => {
  const r = await tide(['bench', 'jobs', '--rate', 'fast']);
  assert.equal(r.code, 2);
  assert.equal(r.stderr.trim(), "tide: --rate: 'fast' is not a positive number of jobs per hour");
});

test('tide bench jobs rejects a bad restart cost, checkpoint interval, time-limit mode or window in one line', async () => {
  const cases: [string[], string][] = [
    [['--restart-seconds=-5'], "tide: --restart-seconds: '-5' is not a number of seconds ≥ 0"],
    [['--checkpoint-minutes', 'often'], "tide: --checkpoint-minutes: 'often' is not a number of minutes ≥ 0"],
    [['--checkpoint-minutes', '0'], 'tide: --checkpoint-minutes: must be above 0 (omit it for continuous checkpoints)'],
    [['--time-limits', 'strict'], "tide: --time-limits: must be 'estimate' or 'enforce', got 'strict'"],
    [['--measure', '500-100'], "tide: --measure: '500-100' is not FROM-TO (job indexes, FROM ≤ TO), e.g. 1000-1499"],
  ];
  for (const [args, message] of cases) {
    const r = await tide(['bench', 'jobs', ...args]);
    assert.equal(r.code, 2, args.join(' '));
    assert.equal(r.stderr.trim(), message);
  }
});
