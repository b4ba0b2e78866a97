/**
 * The agent routes against a hostile agent, over real HTTP on an in-memory store: regressions for
 * what test/fuzz/agent.test.ts found (500s on null reports or GPUs; strings, NaN and 10⁵-row
 * telemetry stored and then served by /v1/nodes and /metrics).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startServer, type RunningServer } from './server.ts';

const AGENT = 'agent-token-123';
const ADMIN = 'admin-token-123';
const ALICE = 'alice-token-123';

describe('agent routes', () => {
  let server: RunningServer;
  /** Each node's credential: the nodeToken its registration answered, where the server issues one. */
  const tokens: Record<string, string> = {};
  const logged: string[] = [];
  const hb = (node: string, body: object) => call('/v1/agent/heartbeat', JSON.stringify({ node, telemetry: [], ...body }), tokens[node] ?? AGENT);
  const call = async (path: string, body: string, token = AGENT, type = 'application/json') => {
    const res = await fetch(`${server.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': type }, body });
    return { status: res.status, json: (await res.json()) as any };
  };
  const get = async (path: string) => (await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${ADMIN}` } })).status;
  const gpus = [0, 1].map((index) => ({ index, model: 'H100', memoryMib: 81559, uuid: `GPU-${index}` }));

  before(async () => {
    server = await startServer({ log: (line) => logged.push(line), dataDir: '/nonexistent', databaseUrl: 'memory:', port: 0, adminToken: ADMIN, agentToken: AGENT, tickMs: 3_600_000, nodeLeaseMs: 3_600_000, config: { adminToken: null, agentToken: null, tenants: [{ name: 'alice', tokens: [ALICE] }], queues: [] } });
    await server.loop.stop();
    for (const id of ['n1', 'n2']) {
      const r = await call('/v1/agent/register', JSON.stringify({ id, address: `http://127.0.0.1:1/${id}`, cpuMilli: 8000, memoryMib: 65536, gpus }));
      assert.equal(r.status, 200);
      tokens[id] = r.json.nodeToken ?? AGENT;
    }
  });
  after(async () => server.close());

  test('a null report or GPU is a 400 naming it, not a 500', async () => {
    const bad = await hb('n1', { reports: [null] });
    assert.equal(bad.status, 400);
    // Named once: a null report has no fields to name one by one.
    assert.deepEqual(bad.json.error.fields, [{ path: 'reports[0]', message: 'must be an object' }]);
    const reg = await call('/v1/agent/register', JSON.stringify({ id: 'n3', address: 'http://127.0.0.1:1', cpuMilli: 1, memoryMib: 1, gpus: [null] }));
    assert.equal(reg.status, 400);
    assert.equal(reg.json.error.fields[0].path, 'gpus[0]');
  });

  test('a progress report with a negative, fractional or unsafe count is a 400 naming the field', async () => {
    const bad = await hb('n1', { reports: [{ runId: '1.0.0', state: 'running', pid: 1, exitCode: null, progress: { step: -1, totalSteps: 1.5, checkpointStep: 2 ** 60 } }] });
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.json.error.fields.map((f: { path: string }) => f.path), ['reports[0].progress.step', 'reports[0].progress.totalSteps', 'reports[0].progress.checkpointStep']);
    const notObject = await hb('n1', { reports: [{ runId: '1.0.0', state: 'running', pid: 1, exitCode: null, progress: 'half' }] });
    assert.deepEqual(notObject.json.error.fields.map((f: { path: string }) => f.path), ['reports[0].progress']);
  });

  test('telemetry with strings, NaN or Infinity (YAML) or 10⁵ rows is refused; /v1/nodes and /metrics keep rendering', async () => {
    const yaml = 'node: n1\nreports: []\ntelemetry:\n  - {index: 0, utilization: .nan, memoryUsedMib: arguments, powerWatts: .inf}\n';
    const r = await call('/v1/agent/heartbeat', yaml, tokens['n1'], 'application/yaml');
    assert.equal(r.status, 400);
    assert.deepEqual(r.json.error.fields.map((f: { path: string }) => f.path), ['telemetry[0].utilization', 'telemetry[0].memoryUsedMib', 'telemetry[0].powerWatts']);
    const rows = Array.from({ length: 100_000 }, (_, index) => ({ index, utilization: 1, memoryUsedMib: 1, powerWatts: 1 }));
    const big = await hb('n1', { reports: [], telemetry: rows });
    assert.ok(big.status === 400 || big.status === 413, `got ${big.status}`);
    assert.equal(await get('/v1/nodes'), 200);
    assert.equal(await get('/metrics'), 200);
    const nodes = (await (await fetch(`${server.url}/v1/nodes`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as { nodes: { telemetry: unknown[] }[] };
    assert.ok(nodes.nodes.every((n) => n.telemetry.length === 0), 'nothing of the refused telemetry was stored');
  });

  test("reports for another node's runs are ignored; a node cannot re-register with less than its tasks hold", async () => {
    const sub = await call('/v1/jobs', JSON.stringify({ name: 'on-n2', tasks: [{ gpus: 1, command: 'sleep 9' }] }), ALICE);
    assert.equal(sub.status, 201);
    await server.loop.tick();
    const where = (await server.store.listTasks(sub.json.jobs[0].id))[0];
    const [mine, other] = where?.node === 'n1' ? ['n1', 'n2'] : ['n2', 'n1'];
    const desired = await hb(mine, { reports: [] });
    const runId = desired.json.tasks[0].runId as string;
    await hb(mine, { reports: [{ runId, state: 'running', pid: 7, exitCode: null }] });
    const hostile = await hb(other, { reports: [{ runId, state: 'exited', pid: 7, exitCode: 1, progress: { step: 66, checkpointStep: 66 } }] });
    assert.equal(hostile.status, 200);
    assert.equal((await server.store.listTasks(sub.json.jobs[0].id))[0]?.state, 'running');
    assert.equal((await server.store.getJob(sub.json.jobs[0].id))?.state, 'running');
    assert.equal((await server.store.getJob(sub.json.jobs[0].id))?.progress, null, "another node's progress report is ignored too");
    await hb(mine, { reports: [{ runId, state: 'running', pid: 7, exitCode: null, progress: { step: 3, totalSteps: 10 } }] });
    assert.deepEqual((await server.store.getJob(sub.json.jobs[0].id))?.progress?.step, 3, "the task's own node reports it");

    // Re-registering with fewer GPUs, another model under the task, or less CPU than the tasks hold:
    // a 409 naming each (it stalled every scheduling cycle: "does not fit where it runs").
    const gpu = (await server.store.listTasks(sub.json.jobs[0].id))[0]?.gpus[0] ?? 0;
    const shrunk = { id: mine, address: `http://127.0.0.1:1/${mine}`, cpuMilli: 10, memoryMib: 65536, gpus: gpus.map((g) => (g.index === gpu ? { ...g, model: 'A100' } : g)).slice(0, gpu + 1) };
    const re = await call('/v1/agent/register', JSON.stringify(shrunk), tokens[mine]);
    assert.equal(re.status, 409);
    assert.deepEqual(re.json.error.fields.map((f: { path: string }) => f.path), [`gpus[${gpu}].model`, 'cpuMilli']);
    const none = await call('/v1/agent/register', JSON.stringify({ ...shrunk, cpuMilli: 8000, gpus: [] }), tokens[mine]);
    assert.equal(none.status, 409);
    assert.equal(none.json.error.fields[0].path, 'gpus');
    assert.equal((await call('/v1/agent/register', JSON.stringify({ id: 'n3', address: 'http://127.0.0.1:1/n3', cpuMilli: 1000, memoryMib: 1024, gpus: [] }))).status, 200);
    await server.loop.tick();
    await server.loop.tick();
    assert.deepEqual(logged.filter((l) => l.startsWith('scheduling loop')), [], 'the scheduling loop keeps running');
    assert.equal((await server.store.getJob(sub.json.jobs[0].id))?.state, 'running');
    const bigger = await call('/v1/agent/register', JSON.stringify({ ...shrunk, cpuMilli: 16000, gpus: [...gpus, { index: 2, model: 'H100', memoryMib: 1, uuid: 'GPU-2' }] }), tokens[mine]);
    assert.equal(bigger.status, 200, 'growing is fine');
  });

  test("a wait is answered when the loop binds to or cancels on its node, only its own node's, and times out otherwise", async () => {
    const seqOf = async (node: string) => (await hb(node, { reports: [] })).json.wakeSeq as number;
    const wait = (node: string, after: number, timeoutMs: number, token = tokens[node] ?? AGENT) => call('/v1/agent/wait', JSON.stringify({ node, after, timeoutMs }), token);
    const seq = { n1: await seqOf('n1'), n2: await seqOf('n2') };
    const waits = { n1: wait('n1', seq.n1, 20_000), n2: wait('n2', seq.n2, 20_000) };
    const sub = await call('/v1/jobs', JSON.stringify({ name: 'wakes', tasks: [{ gpus: 1, command: 'sleep 9' }] }), ALICE);
    assert.equal(sub.status, 201);
    const id = sub.json.jobs[0].id as string;
    const t0 = performance.now();
    await server.loop.tick();
    const node = (await server.store.listTasks(id))[0]?.node as 'n1' | 'n2';
    const other = node === 'n1' ? 'n2' : 'n1';
    const woken = await waits[node];
    assert.equal(woken.status, 200);
    assert.deepEqual(woken.json, { seq: seq[node] + 1, woke: true });
    assert.ok(performance.now() - t0 < 5_000, 'answered when the task was bound, not at the timeout');
    assert.equal(await seqOf(node), seq[node] + 1, 'the heartbeat answer carries the counter');
    // The other node heard nothing: its wait runs to its timeout (short here).
    assert.deepEqual((await wait(other, seq[other], 300)).json, { seq: seq[other], woke: false });
    // Cancelling the job wakes its node again (its task is to stop).
    const stopWait = wait(node, seq[node] + 1, 20_000);
    assert.equal((await call(`/v1/jobs/${id}/cancel`, '{}', ALICE)).status, 200);
    assert.deepEqual((await stopWait).json, { seq: seq[node] + 2, woke: true });
    // The cancelled task ends (its GPU is free again).
    assert.equal((await hb(node, { reports: [{ runId: `${id}.0.0`, state: 'exited', pid: 7, exitCode: 143 }] })).status, 200);
    // A job at its time limit is stopped by the loop, and its node woken for that too.
    const limited = await call('/v1/jobs', JSON.stringify({ name: 'limited', timeLimit: 0.5, tasks: [{ gpus: 1, command: 'sleep 9' }] }), ALICE);
    await server.loop.tick();
    const where = (await server.store.listTasks(limited.json.jobs[0].id))[0]?.node as 'n1' | 'n2';
    const started = (await hb(where, { reports: [] })).json;
    await hb(where, { reports: started.tasks.map((a: { runId: string }) => ({ runId: a.runId, state: 'running', pid: 8, exitCode: null })) });
    await new Promise((r) => setTimeout(r, 600));
    const limitWait = wait(where, started.wakeSeq, 20_000);
    await server.loop.tick();
    assert.deepEqual((await limitWait).json, { seq: started.wakeSeq + 1, woke: true }, 'woken by the time limit');
    // A counter ahead of this server's (another server's, or before a restart) is answered at once.
    const current = (await wait(other, 0, 100)).json.seq as number;
    assert.deepEqual((await wait(other, current + 50, 20_000)).json, { seq: current, woke: true });
    // Only for its own node, only agents, and every bad field named.
    assert.ok(tokens['n2'], 'n2 has a node token of its own');
    assert.equal((await wait('n1', 0, 300, tokens['n2'])).status, 403);
    assert.equal((await wait('n1', 0, 300, ALICE)).status, 403);
    const bad = await call('/v1/agent/wait', JSON.stringify({ node: 'n1', after: -1, timeoutMs: 10 ** 9 }), tokens['n1'] ?? AGENT);
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.json.error.fields.map((f: { path: string }) => f.path), ['after', 'timeoutMs']);
  });

  test('a lease renewal is for its own node only, names a bad field, and is refused once the node is lost', async () => {
    const renew = (node: unknown, token = tokens['n1'] ?? AGENT) => call('/v1/agent/lease', JSON.stringify({ node }), token);
    const ok = await renew('n1');
    assert.equal(ok.status, 200);
    assert.deepEqual([ok.json.renewed, ok.json.nodeLeaseMs], [true, 3_600_000]);
    // The node list may be answered again for up to 3 s while only heartbeats (and renewals) change.
    let shown: number | undefined;
    for (const end = Date.now() + 5000; shown === undefined && Date.now() < end; await new Promise((r) => setTimeout(r, 200))) {
      const listed = (await (await fetch(`${server.url}/v1/nodes`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as { nodes: { id: string; leaseRenewedAt?: number }[] };
      shown = listed.nodes.find((n) => n.id === 'n1')?.leaseRenewedAt;
    }
    assert.equal(typeof shown, 'number', 'the node list shows the renewal');
    assert.equal((await renew('n1', tokens['n2'])).status, 403, "another node's token");
    assert.equal((await renew('n1', ALICE)).status, 403, "a tenant's token");
    const bad = await renew('bad name!');
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.json.error.fields.map((f: { path: string }) => f.path), ['node']);
    // Written off (silent past its lease): a renewal does not bring it back, a heartbeat does.
    const now = Date.now();
    assert.ok((await server.store.expireNodes(now + 60_000, now)).includes('n1'));
    const lost = await renew('n1');
    assert.equal(lost.status, 409);
    assert.match(lost.json.error.message, /node n1 is lost/);
    assert.equal((await hb('n1', { reports: [] })).status, 200);
    assert.equal((await renew('n1')).status, 200);
  });
});
