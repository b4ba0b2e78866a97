/**
 * End to end, time limits and progress: a real `tide server` (SQLite) and a `tide agent` process
 * running real tasks. A job over its time limit is stopped (its processes gone) and ends
 * `timeout` with `job:timeout`, and `tide submit --wait` exits 124 for it; a preempted job keeps
 * its running time and its limit counts across attempts; what a task writes to
 * TIDE_PROGRESS_FILE shows in GET /v1/jobs/:id; a malformed or huge progress file is ignored.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ADMIN, Api, ROOT, TENANT, startAgentProcess, startServerProcess, tempDir, waitFor, writeConfig, type Proc, type ServerHandle } from './harness.ts';
import { exitAfterOutput } from '../../src/util/childExit.ts';

/** Whether a process lives (a zombie does not). */
function alive(pid: number): boolean {
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('e2e: time limits and progress', () => {
  const dir = tempDir('limits');
  const checkpoints = join(dir, 'checkpoints');
  let server: ServerHandle;
  let agent: Proc;
  let api: Api;
  let admin: Api;
  const ckptDir = (id: string): string => join(checkpoints, `job-${id}`);

  before(async () => {
    // A lease long enough that a loaded machine's stalled heartbeats do not fence the agent's tasks:
    // a fence SIGKILLs the task's group 1/4 lease after its SIGTERM, and if that comes before the
    // task wrapper has written the SIGTERM's exit code, the agent reports 137 (one CI run saw 137
    // where 143 is asserted; this is the likeliest reading, not a shown one).
    server = await startServerProcess({ dataDir: join(dir, 'server'), config: writeConfig(dir), nodeLeaseMs: 15_000 });
    api = new Api(server.url);
    admin = new Api(server.url, ADMIN);
    agent = startAgentProcess({ servers: [server.url], name: 'node-t', gpus: '2xH100', dataDir: join(dir, 'node-t'), checkpointRoot: checkpoints });
    await waitFor('a ready node', async () => ((await admin.req('GET', '/v1/nodes')).json.nodes.some((n: any) => n.state === 'ready') ? true : undefined));
  });
  after(async () => {
    await agent.stop();
    await server.proc.stop();
  });

  test('a job over its time limit is stopped, its processes are gone, it ends timeout, and submit --wait exits 124', async () => {
    const spec = join(dir, 'limited.yaml');
    writeFileSync(spec, 'name: limited\ncheckpoint: true\ngracePeriodSeconds: 10\ntimeLimit: 3\ntasks:\n  - gpus: 1\n    command: echo $$ > "$TIDE_CHECKPOINT_DIR/pid"; exec sleep 60\n');
    const env = { ...process.env };
    for (const k of ['TIDE_TOKEN', 'TIDE_ADMIN_TOKEN', 'TIDE_SERVER']) delete env[k];
    const cli = spawn(process.execPath, [join(ROOT, 'bin', 'tide.js'), 'submit', spec, '--wait', '--server', server.url, '--token', TENANT], { cwd: dir, env });
    let out = '';
    let err = '';
    cli.stdout.on('data', (d: Buffer) => (out += d.toString()));
    cli.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await exitAfterOutput(cli);
    assert.equal(code, 124, `${out}${err}`);
    const id = /Submitted job (\d+)/.exec(out)?.[1] ?? '';
    assert.match(out, new RegExp(`job ${id}: timeout \\(time limit 3s reached \\(ran \\d+s over 1 attempt\\)\\)`));
    assert.match(err, /did not succeed: \d+ timeout/);
    const { job, tasks, events, attempts } = (await api.req('GET', `/v1/jobs/${id}`)).json;
    assert.equal(job.state, 'timeout');
    assert.equal(job.spec.timeLimitSeconds, 3);
    assert.ok(job.runSeconds === 0 && job.finishedAt - job.startedAt >= 3000, 'one attempt, which ran its 3 s');
    const story = `events: ${events.map((e: any) => `${e.type} ${e.message}`).join(' | ')}\nagent: ${agent.output.slice(-2000)}`;
    assert.deepEqual(tasks.map((t: any) => [t.state, t.exitCode]), [['stopped', 143]], `sleep died of the SIGTERM: 128 + 15\n${story}`);
    assert.deepEqual(events.filter((e: any) => e.type.startsWith('job:')).map((e: any) => e.type), ['job:submitted', 'job:admitted', 'job:running', 'job:time-limit', 'job:timeout']);
    assert.deepEqual(attempts.map((a: any) => [a.attempt, a.exitCode, a.endReason]), [[0, 143, 'stopped']]);
    const pid = Number(readFileSync(join(ckptDir(id), 'pid'), 'utf8'));
    assert.ok(pid > 1);
    assert.equal(alive(pid), false, `the task's process ${pid} is gone`);
  });

  test('a preempted job keeps its running time, and its limit counts across attempts', async () => {
    const id = await api.submit({ name: 'twice', timeLimit: 6, gracePeriodSeconds: 1, tasks: [{ gpus: 1, command: 'sleep 60' }] });
    await api.waitState(id, ['running']);
    await waitFor('two seconds of running', async () => {
      const { job } = await api.job(id);
      return Date.now() - job.startedAt >= 2000 ? true : undefined;
    });
    const pre = await admin.req('POST', `/v1/jobs/${id}/preempt`);
    assert.equal(pre.status, 200);
    const second = await waitFor('the second attempt running', async () => {
      const { job } = await api.job(id);
      return job.attempt === 1 && job.state === 'running' ? job : undefined;
    });
    assert.ok(second.runSeconds >= 2 && second.runSeconds < 6, `the first attempt's time is kept: ${second.runSeconds}`);
    const job = await api.waitState(id, ['timeout', 'succeeded', 'failed'], 30_000);
    assert.equal(job.state, 'timeout');
    assert.match(job.reason, /^time limit 6s reached \(ran \d+s over 2 attempts\)$/);
    assert.ok(job.runSeconds * 1000 + job.finishedAt - job.startedAt >= 6000, 'both attempts together ran the limit');
    const { attempts, events } = (await api.req('GET', `/v1/jobs/${id}`)).json;
    assert.deepEqual(attempts.map((a: any) => [a.attempt, a.endReason]), [[0, 'stopped'], [1, 'stopped']]);
    assert.ok(attempts.every((a: any) => a.startedAt !== null && a.finishedAt >= a.startedAt), 'each attempt keeps its start and finish');
    assert.ok(events.some((e: any) => e.type === 'job:timeout'));
  });

  test('progress written by a task shows in the job; a malformed or huge progress file is ignored and the agent goes on', async () => {
    // Task 0 writes good progress, waits for go-1, writes an oversized file, waits for go-2, then good progress again.
    // Task 1 writes a malformed file, waits for go-1, then a good one (ignored: only task 0's counts).
    const command = `f="$TIDE_PROGRESS_FILE"; d="$TIDE_CHECKPOINT_DIR"
put() { printf '%s' "$1" > "$f.tmp" && mv "$f.tmp" "$f"; }
wait_for() { while [ ! -e "$d/$1" ]; do sleep 0.1; done; }
if [ "$TIDE_TASK_INDEX" = 0 ]; then
  put '{"step": 7, "totalSteps": 10, "checkpointStep": 5}'; wait_for go-1
  head -c 5000 /dev/zero | tr '\\0' 1 > "$f.tmp" && mv "$f.tmp" "$f"; wait_for go-2
  put '{"step": 9, "totalSteps": 10, "checkpointStep": 9}'; wait_for go-3
else
  put '{"step": oops'; wait_for go-1; put '{"step": 1000}'; wait_for go-3
fi`;
    const id = await api.submit({ name: 'reports', checkpoint: true, tasks: [{ replicas: 2, gpus: 1, command }] });
    const first = await waitFor('the first progress report', async () => ((await api.job(id)).job.progress?.step === 7 ? (await api.job(id)).job : undefined));
    assert.deepEqual([first.progress.totalSteps, first.progress.checkpointStep], [10, 5]);
    assert.ok(first.progress.checkpointAt >= first.startedAt && first.progress.at >= first.progress.checkpointAt);
    await waitFor("task 1's malformed file refused", async () => (agent.output.includes(`${id}.1.0: ignored its progress file`) ? true : undefined));
    writeFileSync(join(ckptDir(id), 'go-1'), '');
    await waitFor("task 0's huge file refused", async () => (agent.output.includes(`${id}.0.0: ignored its progress file`) ? true : undefined));
    assert.equal((await api.job(id)).job.progress.step, 7, 'the refused files changed nothing');
    writeFileSync(join(ckptDir(id), 'go-2'), '');
    const last = await waitFor('the next good report', async () => ((await api.job(id)).job.progress?.step === 9 ? (await api.job(id)).job : undefined));
    assert.equal(last.progress.checkpointStep, 9);
    assert.ok(last.progress.checkpointAt > first.progress.checkpointAt, 'a new checkpoint step moves checkpointAt');
    writeFileSync(join(ckptDir(id), 'go-3'), '');
    assert.equal((await api.waitState(id, ['succeeded', 'failed'])).state, 'succeeded');
    assert.equal((await api.job(id)).job.progress.step, 9, "task 1's step 1000 never became the job's");
    assert.ok(agent.alive && existsSync(join(ckptDir(id), 'progress-0.json')));
  });
});
