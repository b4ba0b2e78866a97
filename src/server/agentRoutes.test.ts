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
  const call = async (path: string, body: string, token = AGENT, type = 'application/json') => {
    const res = await fetch(`${server.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': type }, body });
    return { status: res.status, json: (await res.json()) as any };
  };
  const get = async (path: string) => (await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${ADMIN}` } })).status;
  const gpus = [0, 1].map((index) => ({ index, model: 'H100', memoryMib: 81559, uuid: `GPU-${index}` }));

  before(async () => {
    server = await startServer({ dataDir: '/nonexistent', databaseUrl: 'memory:', port: 0, adminToken: ADMIN, agentToken: AGENT, tickMs: 3_600_000, nodeLeaseMs: 3_600_000, config: { adminToken: null, agentToken: null, tenants: [{ name: 'alice', tokens: [ALICE] }], queues: [] } });
    await server.loop.stop();
    for (const id of ['n1', 'n2']) assert.equal((await call('/v1/agent/register', JSON.stringify({ id, address: `http://127.0.0.1:1/${id}`, cpuMilli: 8000, memoryMib: 65536, gpus }))).status, 200);
  });
  after(async () => server.close());

  test('a null report or GPU is a 400 naming it, not a 500', async () => {
    const hb = await call('/v1/agent/heartbeat', JSON.stringify({ node: 'n1', reports: [null], telemetry: [] }));
    assert.equal(hb.status, 400);
    assert.deepEqual(hb.json.error.fields.map((f: { path: string }) => f.path), ['reports[0]', 'reports[0].runId', 'reports[0].state']);
    const reg = await call('/v1/agent/register', JSON.stringify({ id: 'n3', address: 'http://127.0.0.1:1', cpuMilli: 1, memoryMib: 1, gpus: [null] }));
    assert.equal(reg.status, 400);
    assert.equal(reg.json.error.fields[0].path, 'gpus[0]');
  });

  test('telemetry with strings, NaN or Infinity (YAML) or 10⁵ rows is refused; /v1/nodes and /metrics keep rendering', async () => {
    const yaml = 'node: n1\nreports: []\ntelemetry:\n  - {index: 0, utilization: .nan, memoryUsedMib: arguments, powerWatts: .inf}\n';
    const r = await call('/v1/agent/heartbeat', yaml, AGENT, 'application/yaml');
    assert.equal(r.status, 400);
    assert.deepEqual(r.json.error.fields.map((f: { path: string }) => f.path), ['telemetry[0].utilization', 'telemetry[0].memoryUsedMib', 'telemetry[0].powerWatts']);
    const rows = Array.from({ length: 100_000 }, (_, index) => ({ index, utilization: 1, memoryUsedMib: 1, powerWatts: 1 }));
    const big = await call('/v1/agent/heartbeat', JSON.stringify({ node: 'n1', reports: [], telemetry: rows }));
    assert.ok(big.status === 400 || big.status === 413, `got ${big.status}`);
    assert.equal(await get('/v1/nodes'), 200);
    assert.equal(await get('/metrics'), 200);
    const nodes = (await (await fetch(`${server.url}/v1/nodes`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as { nodes: { telemetry: unknown[] }[] };
    assert.ok(nodes.nodes.every((n) => n.telemetry.length === 0), 'nothing of the refused telemetry was stored');
  });

  test("reports for another node's runs are ignored: its tasks keep their state", async () => {
    const sub = await call('/v1/jobs', JSON.stringify({ name: 'on-n2', tasks: [{ gpus: 1, command: 'sleep 9' }] }), ALICE);
    assert.equal(sub.status, 201);
    await server.loop.tick();
    const where = (await server.store.listTasks(sub.json.jobs[0].id))[0];
    const [mine, other] = where?.node === 'n1' ? ['n1', 'n2'] : ['n2', 'n1'];
    const desired = await call('/v1/agent/heartbeat', JSON.stringify({ node: mine, reports: [], telemetry: [] }));
    const runId = desired.json.tasks[0].runId as string;
    await call('/v1/agent/heartbeat', JSON.stringify({ node: mine, reports: [{ runId, state: 'running', pid: 7, exitCode: null }], telemetry: [] }));
    const hostile = await call('/v1/agent/heartbeat', JSON.stringify({ node: other, reports: [{ runId, state: 'exited', pid: 7, exitCode: 1 }], telemetry: [] }));
    assert.equal(hostile.status, 200);
    assert.equal((await server.store.listTasks(sub.json.jobs[0].id))[0]?.state, 'running');
    assert.equal((await server.store.getJob(sub.json.jobs[0].id))?.state, 'running');
  });
});
