/**
 * What a simulated GPU reads for a task, with real task processes: a task computes while it
 * writes its progress file, so one that holds a GPU and sleeps reads idle (0 %, 0 MiB) — what
 * idle detection (server/idle/) must be able to see without real GPUs.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import type { TaskAssignment } from '../api/types.ts';
import { SIMULATED_WORK_WINDOW_MS, simulatedGpus } from './gpus.ts';
import { TaskRunner } from './taskRunner.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const assignment = (jobId: string, gpu: number, command: string, gpuMilli = 1000): TaskAssignment => ({
  runId: `${jobId}.0.0`, jobId, jobName: 'j', taskIndex: 0, gangSize: 1, attempt: 0, action: 'run', command: ['/bin/sh', '-c', command],
  env: {}, gpus: [gpu], gpuMilli, memoryMib: 64, peers: [], checkpointDir: `job-${jobId}`, gracePeriodSeconds: 1,
});

const WRITES_PROGRESS = 'i=0; while :; do i=$((i+1)); printf \'{"step": %d}\' $i > "$TIDE_PROGRESS_FILE.tmp"; mv "$TIDE_PROGRESS_FILE.tmp" "$TIDE_PROGRESS_FILE"; sleep 0.2; done';

test('a task that holds a GPU and only sleeps reads idle on a simulated GPU; one that writes progress reads busy', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tide-simwork-'));
  const r = new TaskRunner({ stateDir: join(dir, 'runs'), logDir: join(dir, 'logs'), checkpointRoot: join(dir, 'ckpt') }, { PATH: process.env['PATH'] ?? '' }, () => 81_920, 4);
  // A progress file left by an earlier attempt of job 3 (its checkpoint directory is kept): not this run's work.
  const stale = r.progressFile(assignment('3', 2, 'x'));
  mkdirSync(dirname(stale), { recursive: true });
  writeFileSync(stale, '{"step": 9}');
  utimesSync(stale, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
  try {
    r.start(assignment('1', 0, 'sleep 30'), 'n1');
    r.start(assignment('2', 1, WRITES_PROGRESS), 'n1');
    r.start(assignment('3', 2, 'sleep 30'), 'n1');
    r.start(assignment('4', 3, WRITES_PROGRESS, 250), 'n1');
    let busy: number[] = [];
    for (let i = 0; i < 100; i++) {
      r.readProgress();
      busy = r.computingMilli(4, Date.now(), SIMULATED_WORK_WINDOW_MS);
      if (busy[1] && busy[3]) break;
      await sleep(50);
    }
    assert.deepEqual(busy, [0, 1000, 0, 250]);
    assert.deepEqual(r.busyMilli(4), [1000, 1000, 1000, 250], 'all four hold their GPU');
    const [sleeping, working, , quarter] = await simulatedGpus('4xH100').sample(busy, Date.now());
    assert.deepEqual([sleeping?.utilization, sleeping?.memoryUsedMib], [0, 0]);
    assert.ok((working?.utilization ?? 0) >= 85 && (working?.memoryUsedMib ?? 0) > 60_000, JSON.stringify(working));
    assert.ok((quarter?.utilization ?? 0) >= 10, 'a small computing share still reads above idle');
    // The window passes without a write: the writer reads idle again.
    assert.deepEqual(r.computingMilli(4, Date.now() + SIMULATED_WORK_WINDOW_MS + 1000, SIMULATED_WORK_WINDOW_MS), [0, 0, 0, 0]);
  } finally {
    r.killAll();
  }
});
