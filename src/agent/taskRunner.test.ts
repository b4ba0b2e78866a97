/** Real processes: exit codes, SIGTERM then SIGKILL, the task environment, adoption by a new runner. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TaskAssignment } from '../api/types.ts';
import { defaultTracker } from './procTrack.ts';
import { assignmentProblem, logFile, TaskRunner } from './taskRunner.ts';
import { groupAlive } from './testing.ts';

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


/** Whether a process group has no live member left, polled with a deadline. */
async function groupGone(pgid: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (!groupAlive(pgid)) return true;
    await sleep(50);
  }
  return false;
}

test('a task gets its GPUs, gang, peers, checkpoint dir and MPS limits; its exit code and output are kept', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tide-runner-'));
  const r = runner(dir);
  r.start(assignment('1.0.0', 'echo "$GREETING $CUDA_VISIBLE_DEVICES $TIDE_GANG_SIZE $RANK $MASTER_ADDR:$MASTER_PORT $CUDA_MPS_ACTIVE_THREAD_PERCENTAGE $CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"; echo err >&2; test -d "$TIDE_CHECKPOINT_DIR"; exit 7'), 'n1');
  await until(r, '1.0.0');
  assert.equal(r.runs.get('1.0.0')?.exitCode, 7);
  assert.equal(readFileSync(logFile(join(dir, 'logs'), '1', 0, 'stdout'), 'utf8'), 'hi 1 2 0 127.0.0.1:29500 50 0=40960M\n');
  assert.equal(readFileSync(logFile(join(dir, 'logs'), '1', 0, 'stderr'), 'utf8'), 'err\n');
  assert.deepEqual(r.reports(), [{ runId: '1.0.0', state: 'exited', pid: r.runs.get('1.0.0')?.pid, exitCode: 7, startedAt: r.runs.get('1.0.0')?.startedAt }]);
  r.forget('1.0.0');
  assert.equal(r.runs.size, 0);
});

test("a range of array elements runs a process per element, each with its own TIDE_ARRAY_INDEX; those that fail are counted and the run fails", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tide-runner-'));
  const r = runner(dir);
  const range = (runId: string, command: string): TaskAssignment => assignment(runId, command, { env: { TIDE_ARRAY_INDEX: '5' }, arrayCount: 4, gpus: [], gpuMilli: 0, gangSize: 1, peers: [] });
  r.start(range('21.0.0', 'echo "element $TIDE_ARRAY_INDEX ${TIDE_ARRAY_COUNT:-alone}"'), 'n1');
  r.start(range('22.0.0', 'sleep 0.$TIDE_ARRAY_INDEX; exit $(( TIDE_ARRAY_INDEX % 2 ? 3 : 0 ))'), 'n1');
  await until(r, '21.0.0');
  await until(r, '22.0.0');
  const lines = readFileSync(logFile(join(dir, 'logs'), '21', 0, 'stdout'), 'utf8').trim().split('\n').sort();
  assert.deepEqual(lines, ['element 5 alone', 'element 6 alone', 'element 7 alone', 'element 8 alone'], 'each its own index; the count is the wrapper\'s alone');
  const [ok, half] = r.reports();
  assert.deepEqual([ok?.exitCode, ok?.failedElements], [0, undefined]);
  assert.deepEqual([half?.exitCode, half?.failedElements], [3, 2], 'elements 5 and 7 exited 3');
  assert.match(readFileSync(logFile(join(dir, 'logs'), '22', 0, 'stderr'), 'utf8'), /tide: array element 5 exited 3\ntide: array element 7 exited 3\n/);
  // Stopped, every element goes with the run; none that ended counts as succeeded.
  const slow = r.start(range('23.0.0', 'sleep 30'), 'n1');
  await sleep(300);
  r.stop(slow, Date.now());
  await until(r, '23.0.0');
  assert.ok(await groupGone(slow.pid), 'no element lives on');
  assert.equal(r.reports().find((x) => x.runId === '23.0.0')?.failedElements, 4);
  assert.match(assignmentProblem({ ...range('24.0.0', 'true'), arrayCount: 0 }, 2) ?? '', /arrayCount is not/);
  assert.match(assignmentProblem({ ...range('24.0.0', 'true'), env: {} }, 2) ?? '', /from env.TIDE_ARRAY_INDEX/);
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
  assert.ok(Number.isSafeInteger(second.reports()[0]?.startedAt), 'the start time of an adopted run is whole milliseconds, as the server requires');
  await until(second, '4.0.0');
  assert.equal(second.runs.get('4.0.0')?.exitCode, 5);
});

test('a task that cannot start is a run that has exited with a start failure and a reason; the runner keeps starting others', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tide-runner-'));
  const r = runner(dir);
  // One argv string over the kernel's 128 KiB (MAX_ARG_STRLEN): spawn throws E2BIG.
  const big = r.start({ ...assignment('5.0.0', 'true'), command: ['/bin/echo', 'x'.repeat(200 * 1024)] }, 'n1');
  assert.deepEqual([big.exited, big.exitCode, big.reason, big.message, big.pid], [true, 126, 'start-failed', 'spawn E2BIG (argument list too long)', -1]);
  assert.deepEqual(r.reports().find((x) => x.runId === '5.0.0'), { runId: '5.0.0', state: 'exited', pid: null, exitCode: 126, reason: 'start-failed', message: 'spawn E2BIG (argument list too long)' });
  // A checkpoint root that is a file: its directory cannot be made.
  writeFileSync(join(dir, 'not-a-dir'), '');
  const noCkpt = new TaskRunner({ stateDir: join(dir, 'runs'), logDir: join(dir, 'logs'), checkpointRoot: join(dir, 'not-a-dir') }, {}, () => 0);
  const c = noCkpt.start(assignment('6.0.0', 'true'), 'n1');
  assert.equal(c.reason, 'start-failed');
  assert.match(c.message ?? '', /^checkpoint directory .*not-a-dir\/job-1: mkdir ENOTDIR \(not a directory\)$/);
  // A log directory that cannot be made (a file where it should be).
  writeFileSync(join(dir, 'logs', 'job-13'), '');
  const noLogs = r.start(assignment('13.0.0', 'true'), 'n1');
  assert.deepEqual([noLogs.reason, noLogs.exitCode], ['start-failed', 126]);
  assert.match(noLogs.message ?? '', /^log directory .*job-13: mkdir EEXIST \(file already exists\)$/);
  const ok = r.start(assignment('7.0.0', 'exit 0'), 'n1');
  assert.ok(ok.pid > 0 && ok.reason === null && typeof ok.startedAt === 'number');
});

test('an assignment naming GPUs the node lacks, a path outside the checkpoint root or a bad run id never starts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tide-runner-'));
  const r = new TaskRunner({ stateDir: join(dir, 'runs'), logDir: join(dir, 'logs'), checkpointRoot: join(dir, 'ckpt') }, {}, () => 0, 2);
  const gpus = r.start(assignment('8.0.0', 'true', { gpus: [1e9] }), 'n1');
  assert.deepEqual([gpus.exitCode, gpus.message], [126, 'invalid assignment: gpus[0] = 1000000000 is not a GPU of this node (it has 2)']);
  assert.equal(r.start(assignment('9.0.0', 'true', { checkpointDir: '../../etc' }), 'n1').message, 'invalid assignment: checkpointDir is not a plain directory name');
  assert.equal(r.start(assignment('10.0.0', 'true', { runId: '../x' }), 'n1').message, 'invalid assignment: runId is not JOB.TASK.ATTEMPT');
  assert.deepEqual(r.busyMilli(2), [0, 0]);
  assert.ok(!existsSync(join(dir, 'x')) && !existsSync(join(dir, 'etc')));
});

test('fencing stops every live run: SIGTERM, then SIGKILL within the fence limit even when the grace period is longer; reported as fenced', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tide-runner-'));
  const r = runner(dir);
  const stubborn = r.start(assignment('11.0.0', "trap '' TERM; while :; do sleep 0.1; done", { gracePeriodSeconds: 3600 }), 'n1');
  const done = r.start(assignment('12.0.0', 'exit 0'), 'n1');
  await until(r, '12.0.0');
  await sleep(200);
  assert.equal(r.fence(Date.now(), 300), 1);
  await until(r, '11.0.0');
  assert.deepEqual([stubborn.killed, stubborn.exitCode], [true, 137]);
  assert.equal(await groupGone(stubborn.pid), true, 'the whole process group is gone');
  const reports = new Map(r.reports().map((x) => [x.runId, x]));
  assert.equal(reports.get('11.0.0')?.reason, 'fenced');
  assert.equal(reports.get('12.0.0')?.reason, undefined, 'a run that had ended on its own is not fenced');
  assert.ok((reports.get('12.0.0')?.startedAt ?? 0) > 0 && done.exitCode === 0);
});

test('a task that writes its own exit file is still running until its wrapper ends, and its code is the real one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tide-runner-'));
  const r = runner(dir);
  const run = r.start(assignment('14.0.0', 'echo 99999 > "$TIDE_EXIT_FILE"; sleep 0.6; exit 3'), 'n1');
  await sleep(300);
  r.tick(Date.now());
  assert.equal(run.exited, false, 'still running');
  await until(r, '14.0.0');
  assert.equal(run.exitCode, 3);
});

/** Live (non-zombie) `sleep` processes whose argument starts with `marker`. */
function livePids(marker: string): number[] {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).filter((pid) => {
    try {
      if (readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z')) return false;
      const [cmd = '', arg = ''] = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return cmd.endsWith('sleep') && arg.startsWith(marker);
    } catch {
      return false;
    }
  });
}

async function noneLeft(marker: string): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (livePids(marker).length === 0) return true;
    await sleep(50);
  }
  return false;
}

test('when a task ends, nothing it started lives on: background children, setsid daemons and ones that clear their environment', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tide-runner-'));
  const r = new TaskRunner({ stateDir: join(dir, 'runs'), logDir: join(dir, 'logs'), checkpointRoot: join(dir, 'ckpt') }, { PATH: process.env['PATH'] ?? '' }, () => 81920, 8, defaultTracker(`t${process.pid}`));
  const tag = `${process.pid}${Date.now() % 100000}`;
  // Three leftovers, each a `sleep` with a number no other process uses.
  r.start(assignment('11.0.0', `sleep 3${tag}1 & setsid sleep 3${tag}2 </dev/null >/dev/null 2>&1 & env -i /usr/bin/setsid /bin/sleep 3${tag}3 </dev/null >/dev/null 2>&1 & sleep 0.3; exit 0`), 'n1');
  await sleep(150);
  assert.equal(livePids(`3${tag}`).length, 3, 'the three are running while the task runs');
  await until(r, '11.0.0');
  assert.equal(r.runs.get('11.0.0')?.exitCode, 0);
  assert.ok(await noneLeft(`3${tag}1`), 'the background child is killed with its group');
  assert.ok(await noneLeft(`3${tag}2`), 'the setsid daemon is found (cgroup or TIDE_RUN_ID) and killed');
  if (r.tracker.kind.startsWith('cgroup')) assert.ok(await noneLeft(`3${tag}3`), `the daemon with a cleared environment is in the cgroup (${r.tracker.kind})`);
  else spawnSync('pkill', ['-f', `sleep 3${tag}3`]);
});

test('stopping a task reaches its setsid daemons too', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tide-runner-'));
  const r = runner(dir);
  const tag = `${process.pid}${Date.now() % 100000}`;
  r.start(assignment('12.0.0', `setsid sleep 4${tag} </dev/null >/dev/null 2>&1 & sleep 600`), 'n1');
  await sleep(200);
  assert.equal(livePids(`4${tag}`).length, 1);
  r.stop(r.runs.get('12.0.0')!, Date.now(), 500);
  await until(r, '12.0.0');
  assert.ok(await noneLeft(`4${tag}`));
});

test("the wrapper's watchdog fences a task when its agent stops heartbeating (the agent died), and not while it heartbeats", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tide-runner-'));
  const alive = join(dir, 'fence.json');
  writeFileSync(alive, '0');
  const r = new TaskRunner({ stateDir: join(dir, 'runs'), logDir: join(dir, 'logs'), checkpointRoot: join(dir, 'ckpt') }, { PATH: process.env['PATH'] ?? '' }, () => 81920, 8, undefined, () => ({ aliveFile: alive, fenceAfterMs: 2000, killAfterMs: 1000 }));
  r.start(assignment('13.0.0', 'trap "" TERM; sleep 600'), 'n1'); // ignores SIGTERM: only the SIGKILL ends it
  r.start(assignment('14.0.0', 'sleep 600'), 'n1');
  // The "agent" heartbeats for 3.5 s (the file changes every 300 ms): nothing is fenced.
  for (let i = 1; i <= 12; i++) {
    writeFileSync(alive, String(i));
    await sleep(300);
    r.tick(Date.now());
  }
  assert.equal(r.runs.get('13.0.0')?.exited, false);
  assert.equal(r.runs.get('14.0.0')?.exited, false);
  // Then it dies: no agent calls stop() or fence(); the wrappers do it alone.
  await until(r, '13.0.0');
  await until(r, '14.0.0');
  for (const id of ['13.0.0', '14.0.0']) {
    const run = r.runs.get(id)!;
    assert.equal(run.reason, 'fenced', id);
    assert.ok(await groupGone(run.pid), `${id}: its process group is gone`);
  }
});
