/** Real processes: exit codes, SIGTERM then SIGKILL, the task environment, adoption by a new runner. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TaskAssignment } from '../api/types.ts';
import { logFile, TaskRunner } from './taskRunner.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function assignment(runId: string, command: string, over: Partial<TaskAssignment> = {}): TaskAssignment {
  const [jobId = '1', index = '0'] = runId.split('.');
  return {
    runId, jobId, jobName: 'j', taskIndex: Number(index), gangSize: 2, attempt: 0, action: 'run', command: ['/bin/sh', '-c', command],
    env: { GREETING: 'hi' }, gpus: [1], gpuMilli: 500, memoryMib: 1024, peers: ['127.0.0.1:29500', '127.0.0.1:29501'], checkpointDir: 'job-1', gracePeriodSeconds: 1, ...over,
  };
}

function runner(dir: string): TaskRunner {
  return new TaskRunner({ stateDir: join(dir, 'runs'), logDir: join(dir, 'logs'), checkpointRoot: join(dir, 'ckpt') }, { PATH: process.env['PATH'] ?? '' }, () => 81920);
}

async function until(r: TaskRunner, runId: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    r.tick(Date.now());
    if (r.runs.get(runId)?.exited) return;
    await sleep(50);
  }
  throw new Error(`${runId} did not exit`);
}

test('a task gets its GPUs, gang, peers, checkpoint dir and MPS limits; its exit code and output are kept', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tide-runner-'));
  const r = runner(dir);
  r.start(assignment('1.0.0', 'echo "$GREETING $CUDA_VISIBLE_DEVICES $TIDE_GANG_SIZE $RANK $MASTER_ADDR:$MASTER_PORT $CUDA_MPS_ACTIVE_THREAD_PERCENTAGE $CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"; echo err >&2; test -d "$TIDE_CHECKPOINT_DIR"; exit 7'), 'n1');
  await until(r, '1.0.0');
  assert.equal(r.runs.get('1.0.0')?.exitCode, 7);
  assert.equal(readFileSync(logFile(join(dir, 'logs'), '1', 0, 'stdout'), 'utf8'), 'hi 1 2 0 127.0.0.1:29500 50 0=40960M\n');
  assert.equal(readFileSync(logFile(join(dir, 'logs'), '1', 0, 'stderr'), 'utf8'), 'err\n');
  assert.deepEqual(r.reports(), [{ runId: '1.0.0', state: 'exited', pid: r.runs.get('1.0.0')?.pid, exitCode: 7 }]);
  r.forget('1.0.0');
  assert.equal(r.runs.size, 0);
});

test('stop sends SIGTERM (trapped: the task exits its own way), and SIGKILL after the grace period', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tide-runner-'));
  const r = runner(dir);
  const polite = r.start(assignment('2.0.0', "trap 'echo saving; exit 143' TERM; echo ready; while :; do sleep 0.1; done"), 'n1');
  const stubborn = r.start(assignment('3.0.0', "trap '' TERM; echo ready; while :; do sleep 0.1; done"), 'n1');
  await sleep(400);
  r.stop(polite, Date.now());
  r.stop(stubborn, Date.now());
  await until(r, '2.0.0');
  assert.equal(polite.exitCode, 143);
  assert.match(readFileSync(logFile(join(dir, 'logs'), '2', 0, 'stdout'), 'utf8'), /ready\nsaving\n/);
  await until(r, '3.0.0');
  assert.equal(stubborn.killed, true);
  assert.equal(stubborn.exitCode, 137);
  assert.throws(() => process.kill(stubborn.pid, 0));
});

test('a new runner on the same directory adopts a live task and sees it finish', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tide-runner-'));
  const first = runner(dir);
  first.start(assignment('4.0.0', 'sleep 0.5; exit 5'), 'n1');
  const second = runner(dir);
  assert.equal(second.adopt(), 1);
  assert.equal(second.reports()[0]?.state, 'running');
  await until(second, '4.0.0');
  assert.equal(second.runs.get('4.0.0')?.exitCode, 5);
});
