/**
 * End to end, `tide bench live` on a small workload (24 jobs, time scaled down): a real server,
 * three real agents (8×A100, 8×H100, 4×L40S simulated GPUs) and the trainer as real processes,
 * then the same workload in the simulator. Every job must end (succeeded, or timeout where the
 * server enforces time limits) and the simulator must roughly predict the live run; the
 * issue's tight targets (15 %, τ ≥ 0.8) are for the full-size benchmark, not this test.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { BenchLiveReport } from '../../src/bench/live/benchLive.ts';
import { ROOT, tempDir } from './harness.ts';

const TIDE = join(ROOT, 'bin', 'tide.js');

describe('e2e: tide bench live', () => {
  test('a small workload runs live to the end and the simulator predicts it roughly', () => {
    const dir = tempDir('benchlive');
    const json = join(dir, 'report.json');
    const svg = join(dir, 'report.svg');
    const p = spawnSync(process.execPath, [TIDE, 'bench', 'live', '--jobs', '24', '--seed', '3', '--scale', '0.3', '--schedulers', 'fifo', '--json', json, '--svg', svg], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 300_000,
    });
    assert.equal(p.status, 0, `tide bench live exited ${p.status}: ${p.stdout}\n${p.stderr}`);
    assert.match(p.stdout, /avg JCT live s/);
    const report = JSON.parse(readFileSync(json, 'utf8')) as BenchLiveReport;
    assert.equal(report.jobs, 24);
    const [fifo] = report.schedulers;
    assert.ok(fifo, 'one scheduler reported');
    assert.equal(fifo.scheduler, 'fifo');
    assert.equal(fifo.jobs.length, 24);
    const enforced = fifo.live.timeLimitsEnforced;
    for (const j of fifo.jobs) {
      const ended = enforced ? ['succeeded', 'timeout'] : ['succeeded'];
      assert.ok(ended.includes(j.live.state), `${j.name} ended ${j.live.state} live`);
      assert.ok(ended.includes(j.sim.state), `${j.name} ended ${j.sim.state} in the simulator`);
      assert.ok(j.live.start !== null && j.live.end !== null && j.live.start <= j.live.end, `${j.name} has a start and an end live`);
      assert.ok(j.sim.start !== null && j.sim.end !== null, `${j.name} has a start and an end simulated`);
    }
    assert.equal(fifo.live.preemptions, 0, 'fifo never preempts');
    const a = fifo.agreement;
    assert.equal(a.jobs, 24);
    assert.ok(a.jctError < 0.5, `simulated avg JCT ${a.avgJctSim.toFixed(1)} s within 50 % of live ${a.avgJctLive.toFixed(1)} s`);
    assert.ok(a.startOrderTau > 0.6, `start order τ ${a.startOrderTau.toFixed(3)} above 0.6`);
    const chart = readFileSync(svg, 'utf8');
    assert.match(chart, /^<svg /);
    assert.equal((chart.match(/<circle /g) ?? []).length, 24 + 1, 'one dot per job, one in the legend');
  });

  test('a bad flag is a one-line error naming it, exit 2', () => {
    const p = spawnSync(process.execPath, [TIDE, 'bench', 'live', '--scale', '0'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    assert.equal(p.status, 2);
    assert.equal(p.stderr.trim(), "tide: --scale: expected a number from 0.1 to 100, got '0'");
  });
});
