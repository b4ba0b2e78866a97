/**
 * End to end: a real `tide server` process (SQLite) and two `tide agent` processes with simulated
 * GPUs on loopback, running real child processes. Gang placement across nodes, logs, failure,
 * cancellation, checkpoint and resume after preemption, agent restart (tasks re-adopted) and a
 * lost node (tasks requeued).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ADMIN, Api, startAgentProcess, startServerProcess, tempDir, waitFor, writeConfig, type Proc, type ServerHandle } from './harness.ts';

/** A trainer in sh: counts steps, saves its step on SIGTERM, resumes from the checkpoint. */
const TRAINER = `ckpt="$TIDE_CHECKPOINT_DIR/rank-$RANK"; step=0
if [ -f "$ckpt" ]; then step=$(cat "$ckpt"); echo "resuming from step $step"; fi
trap 'echo "$step" > "$ckpt"; echo "checkpointed at step $step"; exit 143' TERM
while [ "$step" -lt "$STEPS" ]; do step=$((step + 1)); echo "step $step"; sleep 0.2; done
echo "finished at step $step"`;

describe('e2e: server + two agents on loopback', () => {
  const dir = tempDir('e2e');
  const checkpoints = join(dir, 'checkpoints');
  let server: ServerHandle;
  const agents = new Map<string, Proc>();
  let api: Api;
  let admin: Api;
  const startAgent = (name: string): Proc => {
    const p = startAgentProcess({ servers: [server.url], name, gpus: '2xH100', dataDir: join(dir, name), checkpointRoot: checkpoints });
    agents.set(name, p);
    return p;
  };
  const readyNodes = async (): Promise<any[]> => (await admin.req('GET', '/v1/nodes')).json.nodes.filter((n: any) => n.state === 'ready');

  before(async () => {
    // The node lease must outlast an agent restart (a new process) on a loaded CI machine.
    server = await startServerProcess({ dataDir: join(dir, 'server'), config: writeConfig(dir), nodeLeaseMs: 7000 });
    api = new Api(server.url);
    admin = new Api(server.url, ADMIN);
    startAgent('node-a');
    startAgent('node-b');
    await waitFor('two ready nodes', async () => ((await readyNodes()).length === 2 ? true : undefined));
  });
  after(async () => {
    for (const a of agents.values()) await a.stop();
    await server.proc.stop();
  });

  test('a 4-task gang spans both nodes, sees its rank and peers, and its logs come back', async () => {
    const id = await api.submit({
      name: 'gang',
      kind: 'training',
      tasks: [{ name: 'worker', replicas: 4, gpus: 1, command: 'echo "rank $RANK of $WORLD_SIZE task $TIDE_TASK_INDEX gang $TIDE_GANG_SIZE gpu $CUDA_VISIBLE_DEVICES peers $TIDE_PEERS"; echo oops >&2; sleep 0.5' }],
    });
    const job = await api.waitState(id, ['succeeded', 'failed']);
    assert.equal(job.state, 'succeeded');
    const { tasks, events } = await api.job(id);
    const used = tasks.map((t: any) => `${t.node}/${t.gpus.join(',')}`);
    assert.equal(new Set(used).size, 4, `four distinct GPUs: ${used}`);
    assert.deepEqual([...new Set(tasks.map((t: any) => t.node))].sort(), ['node-a', 'node-b']);
    assert.ok(tasks.every((t: any) => t.exitCode === 0));
    const log = await api.logs(id, 3);
    assert.match(log, /rank 3 of 4 task 3 gang 4 gpu \d peers 127\.0\.0\.1:\d+,127\.0\.0\.1:\d+,127\.0\.0\.1:\d+,127\.0\.0\.1:\d+/);
    assert.equal(await api.logs(id, 0, 'stderr'), 'oops\n');
    assert.deepEqual(events.filter((e: any) => e.type.startsWith('job:')).map((e: any) => e.type), ['job:submitted', 'job:admitted', 'job:running', 'job:succeeded']);
  });

  test('a failing task fails the job with its exit code; a cancelled job is stopped', async () => {
    const failing = await api.submit({ name: 'fails', tasks: [{ gpus: 1, command: 'echo about to fail; exit 3' }] });
    const sleeper = await api.submit({ name: 'sleeper', gracePeriodSeconds: 1, tasks: [{ gpus: 1, command: 'echo started; sleep 300' }] });
    assert.equal((await api.waitState(failing, ['succeeded', 'failed'])).state, 'failed');
    assert.equal((await api.job(failing)).tasks[0].exitCode, 3);
    await api.waitState(sleeper, ['running']);
    const pid = (await waitFor('sleeper pid', async () => {
      const ev = (await api.job(sleeper)).events.find((e: any) => e.type === 'task:started');
      return ev ? Number(/pid (\d+)/.exec(ev.message)?.[1]) : undefined;
    })) as number;
    assert.equal((await api.req('POST', `/v1/jobs/${sleeper}/cancel`)).status, 200);
    await waitFor('sleeper task stopped', async () => ((await api.job(sleeper)).tasks[0].state === 'stopped' ? true : undefined));
    assert.throws(() => process.kill(pid, 0), 'the task process is gone');
    assert.equal((await api.job(sleeper)).job.state, 'cancelled');
  });

  test('a preempted job traps SIGTERM, checkpoints, is requeued and resumes from its checkpoint', async () => {
    const id = await api.submit({ name: 'trainer', kind: 'training', checkpoint: true, gracePeriodSeconds: 5, tasks: [{ gpus: 1, env: { STEPS: '25' }, command: TRAINER }] });
    await api.waitState(id, ['running']);
    await waitFor('a few steps', async () => (/step 3\n/.test(await api.logs(id)) ? true : undefined));
    const p = await admin.req('POST', `/v1/jobs/${id}/preempt`);
    assert.equal(p.status, 200);
    const resumed = await waitFor('attempt 1 running', async () => {
      const { job } = await api.job(id);
      return job.attempt === 1 && job.state === 'running' ? job : undefined;
    });
    assert.equal(resumed.attempt, 1);
    assert.equal((await api.waitState(id, ['succeeded', 'failed'])).state, 'succeeded');
    const log = await api.logs(id);
    const saved = Number(/checkpointed at step (\d+)/.exec(log)?.[1]);
    assert.ok(saved >= 3, `checkpoint at step ${saved}`);
    assert.match(log, new RegExp(`resuming from step ${saved}\\nstep ${saved + 1}\\n`), 'continues where it stopped');
    assert.match(log, /finished at step 25/);
    const types = (await api.job(id)).events.map((e: any) => e.type);
    for (const t of ['job:preempted', 'task:stopped', 'job:requeued']) assert.ok(types.includes(t), `${t} in ${types}`);
    assert.ok(existsSync(join(checkpoints, `job-${id}`, 'rank-0')));
  });

  test('an agent restarted while its task runs re-adopts it; the job is not disturbed', async () => {
    const id = await api.submit({ name: 'survivor', tasks: [{ gpus: 2, command: 'echo begin; sleep 3; echo end' }] });
    await api.waitState(id, ['running']);
    const node = (await api.job(id)).tasks[0].node as string;
    await agents.get(node)?.kill9();
    startAgent(node);
    const job = await api.waitState(id, ['succeeded', 'failed']);
    assert.equal(job.state, 'succeeded');
    assert.equal(job.attempt, 0, 'never requeued');
    assert.equal(await api.logs(id), 'begin\nend\n');
  });

  test('a node that stops heartbeating is lost; its job is requeued and finishes on the other node', async () => {
    const id = await api.submit({ name: 'refugee', checkpoint: true, gracePeriodSeconds: 2, tasks: [{ gpus: 2, env: { STEPS: '30' }, command: TRAINER }] });
    await api.waitState(id, ['running']);
    const lostNode = (await api.job(id)).tasks[0].node as string;
    const agent = agents.get(lostNode);
    agent?.child.kill('SIGSTOP'); // silent, like a hung machine
    try {
      await waitFor('node lost', async () => ((await admin.req('GET', '/v1/nodes')).json.nodes.find((n: any) => n.id === lostNode)?.state === 'lost' ? true : undefined));
      const job = await api.waitState(id, ['succeeded', 'failed'], 60_000);
      assert.equal(job.state, 'succeeded');
      assert.ok(job.attempt >= 1);
      const { tasks, events } = await api.job(id);
      assert.notEqual(tasks[0].node, lostNode);
      assert.ok(events.some((e: any) => e.type === 'job:requeued'));
    } finally {
      agent?.child.kill('SIGCONT');
    }
    // The node comes back: its stale task (an old attempt) is stopped, its GPUs are free again.
    await waitFor('node ready again and idle', async () => {
      const n = (await admin.req('GET', '/v1/nodes')).json.nodes.find((x: any) => x.id === lostNode);
      return n?.state === 'ready' && n.gpuUsedMilli.every((m: number) => m === 0) ? true : undefined;
    });
    const events = (await admin.req('GET', '/v1/events?limit=1000&order=desc')).json.events;
    assert.ok(events.some((e: any) => e.type === 'node:lost' && e.nodeId === lostNode));
    assert.ok(events.some((e: any) => e.type === 'node:returned' && e.nodeId === lostNode));
  });

  test('a drained node gets nothing new; undrained, it takes tasks again', async () => {
    assert.equal((await admin.req('POST', '/v1/nodes/node-a/drain')).json.node.state, 'drained');
    assert.equal((await api.req('POST', '/v1/nodes/node-a/drain')).status, 403);
    const id = await api.submit({ name: 'not-on-a', tasks: [{ replicas: 2, gpus: 1, command: 'true' }] });
    assert.equal((await api.waitState(id, ['succeeded', 'failed'])).state, 'succeeded');
    assert.deepEqual((await api.job(id)).tasks.map((t: any) => t.node), ['node-b', 'node-b']);
    assert.equal((await admin.req('POST', '/v1/nodes/node-a/undrain')).json.node.state, 'ready');
  });

  test('the CLI drives the same cluster: submit --wait, jobs, logs, nodes', async () => {
    const { execFileSync } = await import('node:child_process');
    const cli = (...args: string[]): string =>
      execFileSync(process.execPath, [join(import.meta.dirname, '..', '..', 'bin', 'tide.js'), ...args, '--server', server.url, '--token', 'e2e-tenant-token'], { encoding: 'utf8' });
    const out = cli('submit', join(import.meta.dirname, '..', '..', 'examples', 'hello.yaml'), '--wait');
    const id = /Submitted job (\d+)/.exec(out)?.[1] ?? '';
    assert.match(out, /succeeded/);
    assert.match(cli('jobs', '--all'), new RegExp(`^${id}\\s+hello\\s+default\\s+e2e\\s+CD`, 'm'));
    assert.match(cli('logs', id), /hello from job \d+ on node-[ab], GPU \d/);
    assert.match(cli('nodes'), /node-a\s+\w+\s+2xH100 \(sim\)/);
    // --follow prints output as it comes and returns when the job has finished.
    const slow = await api.submit({ name: 'follow-me', tasks: [{ gpus: 1, command: 'for i in 1 2 3 4; do echo "line $i"; sleep 0.3; done' }] });
    await api.waitState(slow, ['running', 'succeeded']);
    assert.equal(cli('logs', slow, '--follow'), 'line 1\nline 2\nline 3\nline 4\n');
    // Agents' telemetry reaches Prometheus.
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /tide_gpu_utilization_ratio\{node="node-a",gpu="0",model="H100"\} [\d.]+/);
    assert.match(metrics, /tide_gpu_power_watts\{node="node-b",gpu="1",model="H100"\} \d+/);
    assert.match(metrics, /tide_gpus\{model="H100",state="idle"\} \d/);
    assert.match(metrics, /tide_job_admission_wait_seconds_count\{queue="default"\} [1-9]\d*/);
    assert.ok(readFileSync(join(dir, 'server', 'tide.db')).length > 0);
  });
});
