/**
 * End to end: fence before requeue. An agent cut off from the server (through a TCP proxy the
 * test cuts) stops its tasks, whole process groups, before the server's node lease runs out, so
 * the job's next attempt, on another agent, never runs alongside the first; when the agent
 * reaches the server again it does not restart what it fenced. An agent killed outright cannot
 * fence: its task's wrapper does, in time too.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ADMIN, AGENT, Api, sleep, startServerProcess, tempDir, tide, waitFor, writeConfig, type Proc, type ServerHandle } from './harness.ts';
import { groupAlive } from '../../src/agent/testing.ts';

/** A TCP proxy to a local port. Cut: open connections are dropped and new ones held unanswered. */
class CuttableProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private cut = false;

  constructor(target: number) {
    this.server = createServer((client) => {
      this.track(client);
      if (this.cut) return; // a black hole: accepted, never answered
      const upstream = this.track(connect(target, '127.0.0.1'));
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
  }

  private track(s: Socket): Socket {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => {});
    return s;
  }

  listen(): Promise<number> {
    return new Promise((ok) => this.server.listen(0, '127.0.0.1', () => ok((this.server.address() as { port: number }).port)));
  }

  setCut(cut: boolean): void {
    this.cut = cut;
    for (const s of this.sockets) s.destroy();
  }

  close(): Promise<void> {
    this.setCut(true);
    return new Promise((ok) => this.server.close(() => ok()));
  }
}

/** The process group of a pid (field 5 of /proc/PID/stat). */
const pgidOf = (pid: number): number => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[2]);

describe('e2e: an agent cut off from the server fences its tasks before the server requeues them', () => {
  const dir = tempDir('fence');
  const marks = join(dir, 'marks');
  const LEASE_MS = 5000;
  let server: ServerHandle;
  let proxy: CuttableProxy;
  const procs: Proc[] = [];
  let pgid = 0;

  after(async () => {
    if (pgid > 0 && groupAlive(pgid)) process.kill(-pgid, 'SIGKILL'); // only when the test failed
    for (const p of procs) await p.stop();
    await proxy?.close();
    await server?.proc.stop();
  });

  /**
   * Watches attempt 0's process group while the job is requeued, until attempt 1 runs on `node`:
   * when the group was first seen gone, and whether it was alive once the job had been requeued.
   */
  const watchRequeue = async (api: Api, id: string, node: string): Promise<{ deadAt: number | null; aliveWhenRequeued: boolean }> => {
    let deadAt: number | null = null;
    let aliveWhenRequeued = false;
    await waitFor(
      `attempt 1 on ${node}`,
      async () => {
        if (deadAt === null && !groupAlive(pgid)) deadAt = Date.now();
        const { job, tasks } = await api.job(id);
        if (job.attempt >= 1 && groupAlive(pgid)) aliveWhenRequeued = true;
        return tasks[0]?.node === node && ['running', 'succeeded'].includes(tasks[0]?.state) ? true : undefined;
      },
      30_000,
      50,
    );
    return { deadAt, aliveWhenRequeued };
  };

  const agent = (name: string, url: string): Proc => agentWith(name, url, '1xH100');
  const agentWith = (name: string, url: string, gpus: string): Proc => {
    const p = tide([
      'agent', '--server', url, '--token', AGENT, '--name', name, '--gpus', gpus, '--simulate', '--data-dir', join(dir, name),
      '--checkpoint-root', join(dir, 'ckpt'), '--heartbeat-ms', '250', '--cpus', '16', '--memory-gib', '64',
    ]);
    procs.push(p);
    return p;
  };

  test('the task process group is gone before the node is declared lost; the next attempt runs elsewhere only after; nothing restarts on return', async () => {
    server = await startServerProcess({ dataDir: join(dir, 'server'), config: writeConfig(dir), nodeLeaseMs: LEASE_MS });
    const api = new Api(server.url);
    const admin = new Api(server.url, ADMIN);
    const nodeState = async (id: string): Promise<string | undefined> => (await admin.req('GET', '/v1/nodes')).json.nodes.find((n: any) => n.id === id)?.state;
    proxy = new CuttableProxy(server.port);
    const proxyPort = await proxy.listen();
    const a = agent('node-a', `http://127.0.0.1:${proxyPort}`);
    await waitFor('node-a ready', async () => ((await nodeState('node-a')) === 'ready' ? true : undefined));

    // Attempt 0 ignores SIGTERM for its whole grace period (60 s): only the fence's SIGKILL, a
    // quarter of the lease after the SIGTERM, ends it in time. Attempt 1 succeeds at once.
    const id = await api.submit({
      name: 'fenced',
      gracePeriodSeconds: 60,
      tasks: [{ gpus: 1, env: { MARKS: marks }, command: `echo "$TIDE_ATTEMPT $TIDE_NODE $$ $(date +%s%3N)" >> "$MARKS"; [ "$TIDE_ATTEMPT" -ge 1 ] && exit 0; trap '' TERM; while :; do sleep 0.1; done` }],
    });
    await api.waitState(id, ['running']);
    const first = await waitFor('attempt 0 marked', async () => (existsSync(marks) ? readFileSync(marks, 'utf8').trim().split('\n')[0] : undefined));
    const [attempt, node, pid] = first.split(' ');
    assert.deepEqual([attempt, node], ['0', 'node-a']);
    pgid = pgidOf(Number(pid));
    assert.ok(groupAlive(pgid));

    agent('node-b', server.url);
    await waitFor('node-b ready', async () => ((await nodeState('node-b')) === 'ready' ? true : undefined));

    proxy.setCut(true);
    const cutAt = Date.now();
    const { deadAt, aliveWhenRequeued } = await watchRequeue(api, id, 'node-b');
    const story = async (): Promise<string> =>
      `cut at ${cutAt}, group seen gone at ${deadAt}; events: ${(await api.job(id)).events.map((e: any) => `${e.at - cutAt} ${e.type} ${e.message}`).join(' | ')}\nnode-a: ${a.output}`;
    assert.equal(aliveWhenRequeued, false, `attempt 0 was still alive after the job was requeued: ${await story()}`);
    assert.notEqual(deadAt, null);
    const { events } = await api.job(id);
    const lost = events.find((e: any) => e.type === 'job:preempted' && e.message === 'node node-a lost');
    assert.ok(lost, `events: ${events.map((e: any) => e.type).join(', ')}`);
    assert.ok((deadAt ?? Infinity) < lost.at, `the group died (seen at ${deadAt}) before the server declared node-a lost (${lost.at})`);
    const lines = readFileSync(marks, 'utf8').trim().split('\n');
    const second = lines[1]?.split(' ') ?? [];
    assert.deepEqual(second.slice(0, 2), ['1', 'node-b']);
    assert.ok(Number(second[3]) > (deadAt ?? Infinity), 'attempt 1 started after attempt 0 was gone');
    assert.match(a.output, /stopped 1 task\(s\)/);

    // Back on the network: node-a returns and runs nothing it fenced.
    proxy.setCut(false);
    await waitFor('node-a ready again', async () => ((await nodeState('node-a')) === 'ready' ? true : undefined));
    assert.equal((await api.waitState(id, ['succeeded', 'failed'])).state, 'succeeded');
    await sleep(1000);
    assert.equal(readFileSync(marks, 'utf8').trim().split('\n').length, 2, 'attempt 0 was not started again');
  });

  test('an agent killed -9 cannot fence: its task wrapper does, before the server requeues the job elsewhere', async () => {
    const api = new Api(server.url);
    const admin = new Api(server.url, ADMIN);
    const nodeState = async (id: string): Promise<string | undefined> => (await admin.req('GET', '/v1/nodes')).json.nodes.find((n: any) => n.id === id)?.state;
    const marksC = join(dir, 'marks-c');
    const c = agentWith('node-c', server.url, '1xA100');
    await waitFor('node-c ready', async () => ((await nodeState('node-c')) === 'ready' ? true : undefined));
    const id = await api.submit({
      name: 'orphaned',
      gracePeriodSeconds: 60,
      tasks: [{ gpus: 1, gpuModels: ['A100', 'L40S'], env: { MARKS: marksC }, command: `echo "$TIDE_ATTEMPT $TIDE_NODE $$ $(date +%s%3N)" >> "$MARKS"; [ "$TIDE_ATTEMPT" -ge 1 ] && exit 0; trap '' TERM; while :; do sleep 0.1; done` }],
    });
    await api.waitState(id, ['running']);
    const first = await waitFor('attempt 0 marked', async () => (existsSync(marksC) ? readFileSync(marksC, 'utf8').trim().split('\n')[0] : undefined));
    const [attempt, node, pid] = first.split(' ');
    assert.deepEqual([attempt, node], ['0', 'node-c']);
    pgid = pgidOf(Number(pid));
    await c.kill9(); // no agent left to fence; the task ignores SIGTERM
    const killedAt = Date.now();
    agentWith('node-d', server.url, '1xL40S');
    const { deadAt, aliveWhenRequeued } = await watchRequeue(api, id, 'node-d');
    assert.equal(aliveWhenRequeued, false, `attempt 0 was still alive after the job was requeued (agent killed at ${killedAt}, group gone at ${deadAt})`);
    const lost = (await api.job(id)).events.find((e: any) => e.type === 'job:preempted' && e.message === 'node node-c lost');
    assert.ok(lost && deadAt !== null && deadAt < lost.at, `the group died (seen at ${deadAt}) before node-c was declared lost (${lost?.at})`);
    const second = readFileSync(marksC, 'utf8').trim().split('\n')[1]?.split(' ') ?? [];
    assert.deepEqual(second.slice(0, 2), ['1', 'node-d']);
    assert.ok(Number(second[3]) > (deadAt ?? Infinity), 'attempt 1 started after attempt 0 was gone');
    assert.equal((await api.waitState(id, ['succeeded', 'failed'])).state, 'succeeded');
  });
});
