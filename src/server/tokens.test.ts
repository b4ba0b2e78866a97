/**
 * Token lifecycle and node credentials over real HTTP on a real store: listing without secrets,
 * issuing with an expiry, revocation and expiry as 401s that say so, rotation of the admin token
 * by a restart, and a node token that acts only for its own node (the bootstrap token cannot
 * take a registered node over; an admin reset lets it join again).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { hashToken } from './auth.ts';
import { httpCall, memoryServer } from './testing.ts';
import { startServer, type RunningServer } from './server.ts';

const ADMIN = 'tok-admin-token';
const AGENT = 'tok-agent-token';
const ALICE = 'tok-alice-token';
const gpus = [{ index: 0, model: 'H100', memoryMib: 81920, uuid: 'GPU-0' }];
const reg = (id: string, address = `http://127.0.0.1:1/${id}`) => ({ id, address, cpuMilli: 8000, memoryMib: 65536, gpus, simulated: true });


describe('tokens', () => {
  let server: RunningServer;
  const api = (method: string, path: string, token: string | null, body?: unknown) => httpCall(server.url, method, path, token, body);
  before(async () => {
    server = await memoryServer({ adminToken: ADMIN, agentToken: AGENT, tickMs: 3_600_000, nodeLeaseMs: 3_600_000, tenants: { alice: [ALICE] } });
    await server.loop.stop();
  });
  after(async () => server.close());

  test('GET /v1/tokens lists ids, roles and owners, never a secret or a hash', async () => {
    const r = await api('GET', '/v1/tokens', ADMIN);
    assert.equal(r.status, 200, r.text);
    const byRole = Object.fromEntries(r.json.tokens.map((t: { role: string }) => [t.role, t]));
    assert.deepEqual(Object.keys(byRole).sort(), ['admin', 'agent', 'tenant']);
    assert.deepEqual(Object.keys(byRole.tenant).sort(), ['createdAt', 'expiresAt', 'id', 'lastUsedAt', 'node', 'revokedAt', 'role', 'tenant']);
    assert.equal(byRole.tenant.id, hashToken(ALICE).slice(0, 12));
    assert.equal(byRole.tenant.tenant, 'alice');
    for (const secret of [ADMIN, AGENT, ALICE]) {
      assert.ok(!r.text.includes(secret), 'no secret');
      assert.ok(!r.text.includes(hashToken(secret)), 'no hash');
    }
    assert.equal((await api('GET', '/v1/tokens', ALICE)).status, 403);
    assert.equal((await api('GET', '/v1/tokens', AGENT)).status, 403);
  });

  test('POST /v1/tokens issues a tenant token once, with an expiry; bad bodies are 400s naming the field', async () => {
    const before = Date.now();
    const r = await api('POST', '/v1/tokens', ADMIN, { role: 'tenant', tenant: 'alice', expiresInDays: 30 });
    assert.equal(r.status, 201, r.text);
    assert.match(r.json.secret, /^tide_alice_/);
    assert.equal(r.json.token.id, hashToken(r.json.secret).slice(0, 12));
    assert.ok(r.json.token.expiresAt >= before + 30 * 86_400_000 && r.json.token.expiresAt <= Date.now() + 30 * 86_400_000);
    assert.equal((await api('GET', '/v1/jobs', r.json.secret)).status, 200, 'the new token works');
    const listed = await api('GET', '/v1/tokens', ADMIN);
    assert.ok(!listed.text.includes(r.json.secret));
    const bad: [unknown, string][] = [
      [{ tenant: 'nobody' }, 'tenant'],
      [{ role: 'admin', tenant: 'alice' }, 'role'],
      [{ role: 'node', tenant: 'alice' }, 'role'],
      [{ tenant: 'alice', expiresInDays: -1 }, 'expiresInDays'],
      [{ tenant: 'alice', expiresInDays: '30' }, 'expiresInDays'],
      [{ tenant: 'alice', expiresInDays: 1e9 }, 'expiresInDays'],
      [{ tenant: 'alice', expires: 3 }, 'expires'],
      [{}, 'tenant'],
      [[], '(root)'],
    ];
    for (const [body, field] of bad) {
      const b = await api('POST', '/v1/tokens', ADMIN, body);
      assert.equal(b.status, 400, `${JSON.stringify(body)}: ${b.text}`);
      assert.ok(b.json.error.fields.some((f: { path: string }) => f.path === field), `${JSON.stringify(body)} names ${field}: ${b.text}`);
    }
  });

  test('POST /v1/tenants takes expiresInDays and answers the token id', async () => {
    const r = await api('POST', '/v1/tenants', ADMIN, { name: 'carol', expiresInDays: 1 });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.id, hashToken(r.json.token).slice(0, 12));
    assert.ok(r.json.expiresAt > Date.now());
    const plain = await api('POST', '/v1/tenants', ADMIN, { name: 'carol' });
    assert.equal(plain.json.expiresAt, null);
    const bad = await api('POST', '/v1/tenants', ADMIN, { name: 'carol', expiresInDays: 0 });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.fields[0].path, 'expiresInDays');
  });

  test('a revoked token is a 401 that says so; rotation is issue, then revoke', async () => {
    const old = (await api('POST', '/v1/tokens', ADMIN, { tenant: 'alice' })).json;
    const fresh = (await api('POST', '/v1/tokens', ADMIN, { tenant: 'alice' })).json;
    const del = await api('DELETE', `/v1/tokens/${old.token.id}`, ADMIN);
    assert.equal(del.status, 200, del.text);
    assert.ok(del.json.token.revokedAt > 0);
    const r = await api('GET', '/v1/jobs', old.secret);
    assert.equal(r.status, 401);
    assert.match(r.json.error.message, new RegExp(`^token ${old.token.id} revoked at \\d{4}-`));
    assert.equal((await api('GET', '/v1/jobs', fresh.secret)).status, 200, 'the new one works');
    assert.equal((await api('DELETE', `/v1/tokens/${old.token.id}`, ADMIN)).status, 200, 'revoking twice is harmless');
    const notHex = await api('DELETE', '/v1/tokens/not-an-id', ADMIN);
    assert.equal(notHex.status, 400);
    assert.equal(notHex.json.error.fields[0].path, 'id');
    assert.equal((await api('DELETE', '/v1/tokens/0123456789ab', ADMIN)).status, 404);
    const admin = await api('DELETE', `/v1/tokens/${hashToken(ADMIN).slice(0, 12)}`, ADMIN);
    assert.equal(admin.status, 409, 'the admin token is the config\'s');
    assert.equal((await api('DELETE', `/v1/tokens/${fresh.token.id}`, ALICE)).status, 403);
  });

  test('an expired token is a 401 that says when it expired', async () => {
    const secret = 'tok-expired-secret';
    await server.store.putToken(hashToken(secret), { role: 'tenant', tenant: 'alice' }, 1000, Date.now() - 1000);
    const r = await api('GET', '/v1/jobs', secret);
    assert.equal(r.status, 401);
    assert.match(r.json.error.message, /^token [0-9a-f]{12} expired at \d{4}-\d\d-\d\dT/);
  });

  test('a node token acts only for its own node; the bootstrap token cannot take a registered node over', async () => {
    const a = await api('POST', '/v1/agent/register', AGENT, reg('node-a'));
    const b = await api('POST', '/v1/agent/register', AGENT, reg('node-b'));
    assert.equal(a.status, 200, a.text);
    assert.match(a.json.nodeToken, /^tide_node_/);
    const [ta, tb] = [a.json.nodeToken as string, b.json.nodeToken as string];
    // B runs a task.
    const sub = await api('POST', '/v1/jobs', ALICE, { name: 'on-b', tasks: [{ gpus: 1, command: 'sleep 9' }] });
    assert.equal(sub.status, 201, sub.text);
    await server.store.setNodeDrained('node-a', true, Date.now());
    await server.loop.tick();
    const desired = await api('POST', '/v1/agent/heartbeat', tb, { node: 'node-b', reports: [], telemetry: [] });
    assert.equal(desired.status, 200, desired.text);
    const runId = desired.json.tasks[0].runId as string;
    assert.equal((await api('POST', '/v1/agent/heartbeat', tb, { node: 'node-b', reports: [{ runId, state: 'running', pid: 7, exitCode: null }], telemetry: [] })).status, 200);

    // A's token, for B: heartbeat (reporting B's run as exited) and register are 403s naming both.
    const hb = await api('POST', '/v1/agent/heartbeat', ta, { node: 'node-b', reports: [{ runId, state: 'exited', pid: 7, exitCode: 1 }], telemetry: [] });
    assert.equal(hb.status, 403, hb.text);
    assert.match(hb.json.error.message, /node-a.*node-b/);
    const rr = await api('POST', '/v1/agent/register', ta, reg('node-b', 'http://evil:1'));
    assert.equal(rr.status, 403, rr.text);
    assert.match(rr.json.error.message, /node-a.*node-b/);
    // The bootstrap token: no heartbeat for a node with a credential, no second registration.
    assert.equal((await api('POST', '/v1/agent/heartbeat', AGENT, { node: 'node-b', reports: [{ runId, state: 'exited', pid: 7, exitCode: 1 }], telemetry: [] })).status, 403);
    const take = await api('POST', '/v1/agent/register', AGENT, reg('node-b', 'http://evil:1'));
    assert.equal(take.status, 409, take.text);
    assert.equal(take.json.error.message, 'node node-b already has a credential; start its agent with its data directory, or an admin can reset it (tide node reset-credential node-b)');
    assert.equal(take.json.nodeToken, undefined);
    // B's node and task are untouched.
    assert.equal((await server.store.getNode('node-b'))?.address, 'http://127.0.0.1:1/node-b');
    assert.equal((await server.store.listTasks(sub.json.jobs[0].id))[0]?.state, 'running');
    assert.equal((await server.store.getJob(sub.json.jobs[0].id))?.state, 'running');
    // Each token for its own node works.
    assert.equal((await api('POST', '/v1/agent/register', ta, reg('node-a'))).status, 200);
    assert.equal((await api('POST', '/v1/agent/heartbeat', ta, { node: 'node-a', reports: [], telemetry: [] })).status, 200);
    // Node tokens are for agent routes only.
    assert.equal((await api('GET', '/v1/jobs', ta)).status, 403);
    assert.equal((await api('GET', '/v1/tokens', ta)).status, 403);

    // The admin reset: A's old token is a 401; the bootstrap token registers A again, with a new token.
    assert.equal((await api('DELETE', '/v1/nodes/node-a/credential', ALICE)).status, 403);
    const reset = await api('DELETE', '/v1/nodes/node-a/credential', ADMIN);
    assert.equal(reset.status, 200, reset.text);
    assert.deepEqual(reset.json.revoked, [hashToken(ta).slice(0, 12)]);
    assert.equal((await api('DELETE', '/v1/nodes/node-a/credential', ADMIN)).status, 404, 'no credential left');
    const gone = await api('POST', '/v1/agent/heartbeat', ta, { node: 'node-a', reports: [], telemetry: [] });
    assert.equal(gone.status, 401);
    assert.match(gone.json.error.message, /revoked/);
    const again = await api('POST', '/v1/agent/register', AGENT, reg('node-a'));
    assert.equal(again.status, 200, again.text);
    assert.notEqual(again.json.nodeToken, ta);
    assert.equal((await api('POST', '/v1/agent/heartbeat', again.json.nodeToken, { node: 'node-a', reports: [], telemetry: [] })).status, 200);
    const listed = await api('GET', '/v1/tokens', ADMIN);
    const nodeTokens = listed.json.tokens.filter((t: { role: string; node: string }) => t.role === 'node' && t.node === 'node-a');
    assert.equal(nodeTokens.length, 2);
    assert.equal(nodeTokens.filter((t: { revokedAt: number | null }) => t.revokedAt === null).length, 1);
  });

  test('an agent may offer the hash of a token it made: that token becomes the credential; a bad or taken hash is refused', async () => {
    const mine = 'tide_node_made-by-the-agent-itself';
    const r = await api('POST', '/v1/agent/register', AGENT, { ...reg('offered'), nodeTokenHash: hashToken(mine) });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.nodeToken, undefined, 'the server never had the secret');
    assert.equal((await api('POST', '/v1/agent/heartbeat', mine, { node: 'offered', reports: [], telemetry: [] })).status, 200);
    for (const bad of ['abc', 42, hashToken(mine).toUpperCase()]) {
      const b = await api('POST', '/v1/agent/register', AGENT, { ...reg('offered-2'), nodeTokenHash: bad });
      assert.equal(b.status, 400, b.text);
      assert.equal(b.json.error.fields[0].path, 'nodeTokenHash');
    }
    // Alice's token hash offered as a node credential: refused, and Alice's token stays hers.
    const taken = await api('POST', '/v1/agent/register', AGENT, { ...reg('offered-3'), nodeTokenHash: hashToken(ALICE) });
    assert.equal(taken.status, 409, taken.text);
    assert.equal(taken.json.error.fields[0].path, 'nodeTokenHash');
    assert.equal((await api('GET', '/v1/jobs', ALICE)).status, 200);
    assert.equal((await server.store.getNode('offered-3')), null);
  });

  test('a node registered before node credentials keeps heartbeating with the bootstrap token, and gets a credential at its next registration', async () => {
    await server.store.registerNode(reg('legacy'), Date.now()); // as an older server did: no credential
    assert.equal((await api('POST', '/v1/agent/heartbeat', AGENT, { node: 'legacy', reports: [], telemetry: [] })).status, 200);
    const r = await api('POST', '/v1/agent/register', AGENT, reg('legacy'));
    assert.equal(r.status, 200, r.text);
    assert.match(r.json.nodeToken, /^tide_node_/);
    assert.equal((await api('POST', '/v1/agent/heartbeat', AGENT, { node: 'legacy', reports: [], telemetry: [] })).status, 403);
    assert.equal((await api('POST', '/v1/agent/heartbeat', r.json.nodeToken, { node: 'legacy', reports: [], telemetry: [] })).status, 200);
  });
});

test('a restart with a new admin or agent token revokes the old one; node credentials survive a new bootstrap token', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tide-tokens-'));
  const start = (admin: string, agent: string) => startServer({ dataDir: dir, port: 0, adminToken: admin, agentToken: agent, tickMs: 3_600_000 });
  try {
    let s = await start('admin-one-token', 'agent-one-token');
    const nodeToken = (await httpCall(s.url, 'POST', '/v1/agent/register', 'agent-one-token', reg('kept'))).json.nodeToken as string;
    await s.close();
    s = await start('admin-two-token', 'agent-two-token');
    try {
      const old = await httpCall(s.url, 'GET', '/v1/tokens', 'admin-one-token');
      assert.equal(old.status, 401);
      assert.match(old.json.error.message, /revoked/);
      assert.equal((await httpCall(s.url, 'GET', '/v1/tokens', 'admin-two-token')).status, 200);
      assert.equal((await httpCall(s.url, 'POST', '/v1/agent/register', 'agent-one-token', reg('new-node'))).status, 401);
      assert.equal((await httpCall(s.url, 'POST', '/v1/agent/register', 'agent-two-token', reg('new-node'))).status, 200);
      assert.equal((await httpCall(s.url, 'POST', '/v1/agent/heartbeat', nodeToken, { node: 'kept', reports: [], telemetry: [] })).status, 200, 'the node keeps its credential');
    } finally {
      await s.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
