/**
 * The progress protocol on the agent's side, with real task processes: a task finds
 * TIDE_PROGRESS_FILE and TIDE_GPU_MODEL in its environment, what it writes there is read when the
 * file changes and sent until acknowledged, and a file that is too big or malformed is ignored
 * and counted, never thrown.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TaskAssignment } from '../api/types.ts';
import { logFile, MAX_PROGRESS_BYTES, parseProgressFile, TaskRunner } from './taskRunner.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function assignment(runId: string, command: string, over: Partial<TaskAssignment> = {}): TaskAssignment {
  const [jobId = '1', index = '0'] = runId.split('.');
  return {
    runId, jobId, jobName: 'j', taskIndex: Number(index), gangSize: 1, attempt: 0, action: 'run', command: ['/bin/sh', '-c', command],
    env: {}, gpus: [1], gpuMilli: 1000, memoryMib: 1024, peers: [], checkpointDir: `job-${jobId}`, gracePeriodSeconds: 1, ...over,
  };
}

function runner(dir: string): TaskRunner {
  const models = ['H100', 'A100'];
  return new TaskRunner({ stateDir: join(dir, 'runs'), logDir: join(dir, 'logs'), checkpointRoot: join(dir, 'ckpt') }, { PATH: process.env['PATH'] ?? '' }, () => 81920, 2, undefined, () => null, (i) => models[i]);
}

async function exited(r: TaskRunner, runId: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    r.tick(Date.now());
    if (r.runs.get(runId)?.exited) return;
    await sleep(50);
  }
  throw new Error(`${runId} did not exit`);
}

/** Writes a file as a task should: a temporary file, then a rename (a new inode, so a change is seen even within one mtime tick). */
function replace(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

test('the progress file is the task index in the checkpoint directory (else the run directory); TIDE_GPU_MODEL is its first GPU', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tide-progress-'));
  const r = runner(dir);
  const cmd = 'echo "$TIDE_PROGRESS_FILE ${TIDE_GPU_MODEL-unset}"';
  r.start(assignment('4.1.0', cmd), 'n1');
  r.start(assignment('5.0.0', cmd, { checkpointDir: null, gpus: [0] }), 'n1');
  r.start(assignment('6.0.0', cmd, { gpus: [], gpuMilli: 0 }), 'n1');
  for (const id of ['4.1.0', '5.0.0', '6.0.0']) await exited(r, id);
  const out = (job: string, idx: number): string => readFileSync(logFile(join(dir, 'logs'), job, idx, 'stdout'), 'utf8');
  assert.equal(out('4', 1), `${join(dir, 'ckpt', 'job-4', 'progress-1.json')} A100\n`);
  assert.equal(out('5', 0), `${join(dir, 'runs', '5.0.0', 'progress-0.json')} H100\n`);
  assert.equal(out('6', 0), `${join(dir, 'ckpt', 'job-6', 'progress-0.json')} unset\n`);
});

test('what a task writes is reported until acknowledged, again when it changes; a bad or huge file is ignored and counted', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tide-progress-'));
  const r = runner(dir);
  // A task that writes its progress the documented way, then waits to be told to write more.
  const run = r.start(assignment('7.0.0', 'printf \'{"step": 40, "totalSteps": 100, "checkpointStep": 30}\' > "$TIDE_PROGRESS_FILE.tmp" && mv "$TIDE_PROGRESS_FILE.tmp" "$TIDE_PROGRESS_FILE"; exec sleep 30'), 'n1');
  const file = r.progressFile(run.assignment);
  const report = () => r.reports().find((x) => x.runId === '7.0.0');
  for (let i = 0; i < 100 && report()?.progress === undefined; i++) {
    await sleep(50);
    r.readProgress();
  }
  assert.deepEqual(report()?.progress, { step: 40, totalSteps: 100, checkpointStep: 30 });
  r.progressSent(r.reports());
  r.readProgress();
  assert.equal(report()?.progress, undefined, 'unchanged and acknowledged: not sent again');

  const before = r.progressRejected;
  for (const bad of ['{"step": 41', '{"step": -1}', '{"step": 1.5}', '[1]', '{"step": 9007199254740993}', `{"step": 1, "pad": "${'x'.repeat(MAX_PROGRESS_BYTES)}"}`]) {
    replace(file, bad);
    assert.deepEqual(r.readProgress().map((x) => x.runId), ['7.0.0'], bad.slice(0, 40));
    assert.equal(report()?.progress, undefined, 'the last good report stands; nothing new to send');
  }
  assert.equal(r.progressRejected, before + 6);
  replace(file, '{"step": 50, "checkpointStep": 50, "loss": 0.1}');
  assert.deepEqual(r.readProgress(), []);
  assert.deepEqual(report()?.progress, { step: 50, checkpointStep: 50 });
  r.killAll();
  await exited(r, '7.0.0');
});

test('parseProgressFile takes non-negative safe integers only', () => {
  assert.deepEqual(parseProgressFile('{"step": 0}'), { step: 0 });
  assert.deepEqual(parseProgressFile('{"step": 3, "totalSteps": null, "checkpointStep": 2}'), { step: 3, checkpointStep: 2 });
  for (const bad of ['', 'null', '"3"', '{"step": "3"}', '{"totalSteps": 3}', '{"step": 3, "checkpointStep": -2}', '{"step": 1e300}']) assert.equal(parseProgressFile(bad), null, bad);
});
