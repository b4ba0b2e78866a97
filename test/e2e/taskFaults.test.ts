/**
 * End to end: an accepted job either runs or fails with a reason, and no task blocks its node.
 * A real `tide server` and a real `tide agent` (one simulated GPU, so jobs on it run one after
 * another): a command the kernel cannot exec (E2BIG, written straight into the store as a job
 * accepted before the spec limits would be), a checkpoint directory that cannot be made, and
 * tasks that start and end between two heartbeats.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseJobSpec, type JobSpec } from '../../src/api/spec.ts';
import { openStore } from '../../src/store/sqlStore.ts';
import { ADMIN, AGENT, Api, startServerProcess, tempDir, tide, waitFor, writeConfig, type Proc, type ServerHandle } from './harness.ts';

function spec(input: Record<string, unknown>): JobSpec {
  const r = parseJobSpec(input);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
}

describe('e2e: tasks that cannot start never stall their node', () => {
  const dir = tempDir('faults');
  let server: ServerHandle;
  let agent: Proc;
  let api: Api;
  let admin: Api;

  before(async () => {
    server = await startServerProcess({ dataDir: join(dir, 'server'), config: writeConfig(dir), nodeLeaseMs: 10_000 });
    api = new Api(server.url);
    admin = new Api(server.url, ADMIN);
    // The checkpoint root is a file: no job that checkpoints can start on this node.
    writeFileSync(join(dir, 'not-a-directory'), '');
    // Heartbeats a second apart: a task that runs `true` starts and ends between two of them.
    agent = tide([
      'agent', '--server', server.url, '--token', AGENT, '--name', 'node-a', '--gpus', '1xH100', '--simulate', '--data-dir', join(dir, 'node-a'),
      '--checkpoint-root', join(dir, 'not-a-directory'), '--heartbeat-ms', '1000', '--cpus', '16', '--memory-gib', '64',
    ]);
    await waitFor('node-a ready', async () => ((await admin.req('GET', '/v1/nodes')).json.nodes.some((n: any) => n.state === 'ready') ? true : undefined));
  });
  after(async () => {
    await agent.stop();
    await server.proc.stop();
  });

  const nodeReady = async (): Promise<string> => (await admin.req('GET', '/v1/nodes')).json.nodes.find((n: any) => n.id === 'node-a')?.state;

  test('the server refuses a 140 KB command and a 900 KB env value up front, naming the field (HTTP 400)', async () => {
    const long = await api.req('POST', '/v1/jobs', { name: 'long', tasks: [{ command: 'x'.repeat(140 * 1024) }] });
    assert.equal(long.status, 400);
    assert.match(long.json.error.message, /tasks\[0\]\.command: 143360 bytes, at most 65536/);
    const env = await api.req('POST', '/v1/jobs', { name: 'env', tasks: [{ command: 'true', env: { BIG: 'y'.repeat(900 * 1024) } }] });
    assert.equal(env.status, 400);
    assert.match(env.json.error.message, /tasks\[0\]\.env\.BIG: 921600 bytes, at most 65536/);
  });

  test('a job whose command the kernel refuses (E2BIG) fails with the reason; the next job on the node runs', async () => {
    // Written into the store directly: a job accepted before the server checked sizes.
    const store = await openStore(`sqlite:${join(dir, 'server', 'tide.db')}`);
    const base = spec({ name: 'e2big', tasks: [{ gpus: 1, command: 'true' }] });
    const group = base.groups[0] as JobSpec['groups'][number];
    const { jobs } = await store.submit('e2e', { ...base, groups: [{ ...group, command: ['/bin/echo', 'x'.repeat(200 * 1024)] }] }, null, Date.now());
    await store.close();
    const bad = jobs[0]?.id ?? '';
    const next = await api.submit({ name: 'next', tasks: [{ gpus: 1, command: 'echo still here' }] });

    const failed = await api.waitState(bad, ['failed', 'succeeded', 'cancelled']);
    assert.deepEqual([failed.state, failed.reason], ['failed', 'task 0 could not start: spawn E2BIG (argument list too long)']);
    const { tasks, events } = await api.job(bad);
    assert.deepEqual([tasks[0].state, tasks[0].exitCode], ['failed', 126]);
    assert.ok(events.some((e: any) => e.type === 'task:failed' && e.message === 'task 0 could not start: spawn E2BIG (argument list too long)'));

    assert.equal((await api.waitState(next, ['succeeded', 'failed'])).state, 'succeeded');
    assert.equal(await api.logs(next), 'still here\n');
    assert.equal(await nodeReady(), 'ready');
    assert.doesNotMatch(agent.output, /cannot reach a server/);
  });

  test('a task whose checkpoint directory cannot be made fails with the reason; a job without one runs', async () => {
    const bad = await api.submit({ name: 'ckpt', checkpoint: true, tasks: [{ gpus: 1, command: 'true' }] });
    const next = await api.submit({ name: 'plain', tasks: [{ gpus: 1, command: 'true' }] });
    const failed = await api.waitState(bad, ['failed', 'succeeded']);
    assert.equal(failed.state, 'failed');
    assert.match(failed.reason, /^task 0 could not start: checkpoint directory .*not-a-directory\/job-\d+: mkdir ENOTDIR \(not a directory\)$/);
    assert.equal((await api.waitState(next, ['succeeded', 'failed'])).state, 'succeeded');
    assert.equal(await nodeReady(), 'ready');
  });

  test('tasks that start and end between two heartbeats still have a start, task:started and job:running before their end', async () => {
    const id = await api.submit({ name: 'short', tasks: [{ replicas: 4, gpus: 0, cpu: 1, command: 'true' }] });
    assert.equal((await api.waitState(id, ['succeeded', 'failed'])).state, 'succeeded');
    const { job, tasks, events } = await api.job(id);
    for (const t of tasks) assert.ok(t.startedAt !== null && t.startedAt <= t.finishedAt, `task ${t.index}: started ${t.startedAt}, finished ${t.finishedAt}`);
    assert.ok(job.startedAt !== null && job.startedAt <= job.finishedAt);
    const types = events.map((e: any) => e.type).filter((t: string) => t !== 'job:submitted' && t !== 'job:admitted');
    assert.deepEqual(types, [...Array(4).fill('task:started'), 'job:running', ...Array(4).fill('task:succeeded'), 'job:succeeded']);
  });
});
