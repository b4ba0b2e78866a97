/**
 * The agent in-process against a real server (in-memory store): what must not take a node down.
 * A stuck nvidia-smi must not hold heartbeats back (the node would be lost and its tasks
 * fenced), and a log path that is not a readable file must not crash the agent's log server.
 * A task's end is reported at once, not at the next regular heartbeat. A server whose database
 * queue holds heartbeats past half the lease gets lease renewals instead, and the agent does not fence.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { agentLogKey } from '../server/agentLink.ts';
import type { SqlDb } from '../store/sqlDb.ts';
import { startServer, type RunningServer } from '../server/server.ts';
import { Agent } from './agent.ts';
import { TaskRunner } from './taskRunner.ts';
import { groupAlive } from './testing.ts';

const ADMIN = 'agent-test-admin';
const AGENT = 'agent-test-agent';
const TENANT = 'agent-test-tenant';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => Promise<T | undefined>, deadlineMs = 30_000, log: readonly string[] = []): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${log.length ? `; agent log:\n${log.join('\n')}` : ''}`);
    await sleep(100);
  }
}

describe('agent against a real server', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tide-agent-'));
  let server: RunningServer;
  let agent: Agent;
  const lines: string[] = [];
  const api = async (path: string, token = ADMIN, init: RequestInit = {}): Promise<any> => {
    const res = await fetch(`${server.url}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } });
    return res.json();
  };

  before(async () => {
    // An nvidia-smi that answers discovery, then hangs on every later query (as a wedged driver does).
    const smi = join(dir, 'nvidia-smi');
    writeFileSync(smi, `#!/bin/sh\nif [ -e "${dir}/discovered" ]; then exec sleep 30; fi\ntouch "${dir}/discovered"\necho "0, GPU-0, NVIDIA H100 80GB HBM3, 81559, 0, 0, 70, 700"\n`);
    chmodSync(smi, 0o755);
    server = await startServer({
      dataDir: dir, databaseUrl: 'memory:', port: 0, adminToken: ADMIN, agentToken: AGENT, tickMs: 100, nodeLeaseMs: 3000,
      config: { adminToken: null, agentToken: null, tenants: [{ name: 't', tokens: [TENANT] }], queues: [] },
    });
    agent = new Agent({ servers: [server.url], token: AGENT, nodeName: 'smi-node', nvidiaSmi: smi, dataDir: join(dir, 'agent'), heartbeatMs: 200, cpuMilli: 8000, memoryMib: 65536, log: (l) => lines.push(l) });
    await agent.start();
  });
  after(async () => {
    await agent.stop(true);
    await server.close();
  });

  test('a hung nvidia-smi does not hold heartbeats back: the node is never lost and runs a job', async () => {
    assert.equal(agent.simulated, false, 'the GPUs came from the (fake) nvidia-smi');
    // Twice the node lease of heartbeats, each sampling telemetry from the hung nvidia-smi.
    const target = agent.heartbeats + 30;
    await until('30 more heartbeats', async () => (agent.heartbeats >= target ? true : undefined), 60_000, lines);
    const { job } = await api('/v1/jobs', TENANT, { method: 'POST', body: JSON.stringify({ name: 'j', tasks: [{ gpus: 1, command: 'true' }] }) }).then((r) => ({ job: r.jobs[0] }));
    const done = await until('the job to end', async () => {
      const j = (await api(`/v1/jobs/${job.id}`, TENANT)).job;
      return ['succeeded', 'failed'].includes(j.state) ? j : undefined;
    });
    assert.equal(done.state, 'succeeded');
    const events = await api('/v1/events?limit=1000');
    assert.deepEqual((events.events as any[]).filter((e) => e.type === 'node:lost'), [], 'the node was never lost');
  });

  test('a log path that is a directory is answered as empty; the log server stays up', async () => {
    mkdirSync(join(dir, 'agent', 'logs', 'job-99', 'task-0.out'), { recursive: true });
    const get = (path: string): Promise<Response> => fetch(`${agent.url}${path}`, { headers: { authorization: `Bearer ${agentLogKey(ADMIN, 'smi-node')}` } });
    const r = await get('/logs/99/0');
    assert.deepEqual([r.status, await r.text(), r.headers.get('x-tide-next-offset')], [200, '', '0']);
    assert.equal((await get('/logs/99/1')).status, 200, 'still serving');
  });

  test("the log server answers only the server's key for this node (not the bootstrap token every agent holds)", async () => {
    const status = async (auth: string | null): Promise<number> => (await fetch(`${agent.url}/logs/99/0`, auth === null ? {} : { headers: { authorization: auth } })).status;
    assert.equal(await status(null), 401);
    assert.equal(await status(`Bearer ${AGENT}`), 401);
    assert.equal(await status(`Bearer ${TENANT}`), 401);
    assert.equal(await status(`Bearer ${agentLogKey(ADMIN, 'other-node')}`), 401);
    assert.equal(await status(`Bearer ${agentLogKey(ADMIN, 'smi-node')}x`), 401);
    assert.equal(await status(`Bearer ${agentLogKey(ADMIN, 'smi-node')}`), 200);
  });
});

test('an agent restarted while no server answers fences the tasks it adopts once half the lease it last knew has passed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tide-agent-'));
  // A task left running by a previous agent, whose last good heartbeat was a minute ago.
  const previous = new TaskRunner({ stateDir: join(dir, 'runs'), logDir: join(dir, 'logs'), checkpointRoot: join(dir, 'checkpoints') }, {}, () => 0, 1);
  const run = previous.start({
    runId: '1.0.0', jobId: '1', jobName: 'left', taskIndex: 0, gangSize: 1, attempt: 0, action: 'run', command: ['/bin/sh', '-c', "trap '' TERM; while :; do sleep 0.1; done"],
    env: {}, gpus: [0], gpuMilli: 1000, memoryMib: 1024, peers: [], checkpointDir: null, gracePeriodSeconds: 600,
  }, 'n1');
  writeFileSync(join(dir, 'fence.json'), JSON.stringify({ nodeLeaseMs: 2000, lastOkAt: Date.now() - 60_000 }));
  const lines: string[] = [];
  const agent = new Agent({ servers: ['http://127.0.0.1:9'], token: AGENT, nodeName: 'n1', gpus: '1xH100', forceSimulated: true, dataDir: dir, heartbeatMs: 200, log: (l) => lines.push(l) });
  await agent.start();
  try {
    await until('the adopted task to be fenced and killed', async () => (groupAlive(run.pid) ? undefined : true), 30_000, lines);
    assert.match(lines.join('\n'), /adopted 1 running task[\s\S]*stopped 1 task\(s\)/);
  } finally {
    await agent.stop(true);
  }
});


/**
 * A server (100-ms ticks) and one agent of one simulated H100 heartbeating every `heartbeatMs`,
 * stopped after `fn`; `api` calls the server as the tenant.
 */
async function withAgent(heartbeatMs: number, fn: (o: { agent: Agent; api: (path: string, init?: RequestInit) => Promise<any>; lines: string[] }) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tide-agent-'));
  const server = await startServer({
    dataDir: dir, databaseUrl: 'memory:', port: 0, adminToken: ADMIN, agentToken: AGENT, tickMs: 100, nodeLeaseMs: 60_000,
    config: { adminToken: null, agentToken: null, tenants: [{ name: 't', tokens: [TENANT] }], queues: [] },
  });
  const lines: string[] = [];
  const agent = new Agent({ servers: [server.url], token: AGENT, nodeName: 'n1', gpus: '1xH100', forceSimulated: true, dataDir: join(dir, 'agent'), heartbeatMs, log: (l) => lines.push(l) });
  const api = async (path: string, init: RequestInit = {}): Promise<any> => (await fetch(`${server.url}${path}`, { ...init, headers: { authorization: `Bearer ${TENANT}`, 'content-type': 'application/json' } })).json();
  try {
    await fn({ agent, api, lines });
  } finally {
    await agent.stop(true);
    await server.close();
  }
}

test("a task's end is reported by an early heartbeat, not the next regular one", () =>
  withAgent(3000, async ({ agent, api, lines }) => {
    await agent.start();
    const { jobs } = await api('/v1/jobs', { method: 'POST', body: JSON.stringify({ name: 'short', tasks: [{ gpus: 1, command: 'sleep 0.5' }] }) });
    const done = await until('the job to end', async () => {
      const r = await api(`/v1/jobs/${jobs[0].id}`);
      return ['succeeded', 'failed'].includes(r.job.state) ? r : undefined;
    }, 30_000, lines);
    assert.equal(done.job.state, 'succeeded');
    const task = done.tasks[0];
    // Regular heartbeats every 3 s would have reported the end up to 2.5 s after it.
    const reportedAfterMs = task.finishedAt - task.startedAt;
    assert.ok(reportedAfterMs >= 500 && reportedAfterMs < 1800, `ended 0.5 s after its start, reported ${reportedAfterMs} ms after it`);
  }));

test('a task bound to the node starts at once: the server wakes the agent, which does not wait for its next heartbeat', () =>
  withAgent(6000, async ({ agent, api, lines }) => {
    await agent.start();
    await until('the first heartbeat', async () => (agent.heartbeats > 0 ? true : undefined), 30_000, lines);
    await sleep(500); // the agent's wait is held now; its next regular heartbeat is 5.5 s away
    const submittedAt = Date.now();
    const { jobs } = await api('/v1/jobs', { method: 'POST', body: JSON.stringify({ name: 'soon', tasks: [{ gpus: 1, command: 'sleep 5' }] }) });
    const started = await until('the task to start', async () => {
      const r = await api(`/v1/jobs/${jobs[0].id}`);
      return r.tasks[0]?.startedAt ? (r.tasks[0].startedAt as number) : undefined;
    }, 30_000, lines);
    assert.ok(started - submittedAt < 2500, `started ${started - submittedAt} ms after its submission (the next regular heartbeat was 5.5 s away)`);
    // Cancelling wakes it too: the task is stopped before the next regular heartbeat.
    const cancelledAt = Date.now();
    await api(`/v1/jobs/${jobs[0].id}/cancel`, { method: 'POST', body: '{}' });
    const ended = await until('the task to end', async () => {
      const r = await api(`/v1/jobs/${jobs[0].id}`);
      return r.tasks[0]?.finishedAt ? (r.tasks[0].finishedAt as number) : undefined;
    }, 30_000, lines);
    assert.ok(ended - cancelledAt < 3000, `stopped ${ended - cancelledAt} ms after the cancel`);
  }));

describe('agent against a busy server', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tide-agent-busy-'));
  const LEASE_MS = 4000;
  let server: RunningServer;
  let agent: Agent;
  const lines: string[] = [];
  const api = async (path: string, token = ADMIN, init: RequestInit = {}): Promise<any> =>
    (await fetch(`${server.url}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } })).json();

  before(async () => {
    server = await startServer({
      dataDir: dir, databaseUrl: 'memory:', port: 0, adminToken: ADMIN, agentToken: AGENT, tickMs: 100, nodeLeaseMs: LEASE_MS,
      config: { adminToken: null, agentToken: null, tenants: [{ name: 't', tokens: [TENANT] }], queues: [] },
    });
    agent = new Agent({ servers: [server.url], token: AGENT, nodeName: 'busy-node', forceSimulated: true, gpus: '1xH100', dataDir: join(dir, 'agent'), heartbeatMs: 200, cpuMilli: 8000, memoryMib: 65536, log: (l) => lines.push(l) });
    await agent.start();
  });
  after(async () => {
    await agent.stop(true);
    await server.close();
  });

  test('heartbeats queued in the database past half the lease: lease renewals go ahead of them, the task runs on, the node is never lost', async () => {
    const job = (await api('/v1/jobs', TENANT, { method: 'POST', body: JSON.stringify({ name: 'long', tasks: [{ gpus: 1, command: 'sleep 60' }] }) })).jobs[0];
    const pid = await until('the task to start', async () => {
      const m = lines.map((l) => /started \S+ \(long task 0\) pid (\d+)/.exec(l)).find((x) => x);
      return m ? Number(m[1]) : undefined;
    }, 30_000, lines);
    await until('the server to see it running', async () => ((await api(`/v1/jobs/${job.id}`, TENANT)).job.state === 'running' ? true : undefined), 30_000, lines);
    // As after a burst's plan: 30 transactions of 200 ms queue on SQLite's one connection (6 s,
    // past the whole lease); every heartbeat waits behind them, the renewals need not.
    const db = (server.store as unknown as { db: SqlDb }).db;
    const beatsBefore = agent.heartbeats;
    const t0 = Date.now();
    const hold = Promise.all(Array.from({ length: 30 }, () => db.tx(() => new Promise((r) => setTimeout(r, 200)))));
    await sleep(LEASE_MS * 0.75);
    assert.ok(agent.heartbeats <= beatsBefore + 1, `no heartbeat got through the queue for ${Date.now() - t0} ms (${agent.heartbeats - beatsBefore} did)`);
    assert.ok(groupAlive(pid), `the task still runs at three quarters of the lease; agent log:\n${lines.slice(-15).join('\n')}`);
    await hold;
    await until('a heartbeat after the queue', async () => (agent.heartbeats > beatsBefore + 1 ? true : undefined), 30_000, lines);
    assert.ok(groupAlive(pid), 'the task still runs');
    assert.deepEqual(lines.filter((l) => /stopped \d+ task|lease renewal refused/.test(l)), [], 'no fence, no refused renewal');
    assert.equal((await api(`/v1/jobs/${job.id}`, TENANT)).job.state, 'running');
    const events = await api('/v1/events?limit=1000');
    assert.deepEqual((events.events as any[]).filter((e) => e.type === 'node:lost'), [], 'the node was never lost');
    await api(`/v1/jobs/${job.id}/cancel`, TENANT, { method: 'POST', body: '{}' });
    await until('the cancelled task to be gone', async () => (groupAlive(pid) ? undefined : true), 30_000, lines);
  });
});
