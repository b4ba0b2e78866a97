/**
 * End to end, with a real `tide server`, real `tide agent` processes and the real CLI: an agent
 * is trusted only for its own node. Each agent's first registration (with the shared bootstrap
 * token) gets a node token kept in its data directory (mode 600); node A's token cannot
 * heartbeat, register or report for node B (403), and B's task runs on untouched; the bootstrap
 * token cannot take a registered node over (409); a restarted agent (same data directory)
 * re-registers with its node token and adopts its task; a re-imaged node (new data directory)
 * is refused until `tide node reset-credential`, then joins. And `tide token create|list|revoke`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ADMIN, AGENT, Api, ROOT, startAgentProcess, startServerProcess, tempDir, waitFor, writeConfig, type Proc, type ServerHandle } from './harness.ts';
import { exitAfterOutput } from '../../src/util/childExit.ts';

describe('e2e: node credentials', () => {
  const dir = tempDir('cred');
  let server: ServerHandle;
  let api: Api;
  let admin: Api;
  const agents = new Map<string, Proc>();
  const startAgent = (name: string, dataDir = join(dir, name)): Proc => {
    const p = startAgentProcess({ servers: [server.url], name, gpus: '1xH100', dataDir, checkpointRoot: join(dir, 'ckpt') });
    agents.set(name, p);
    return p;
  };
  const node = async (id: string): Promise<any> => (await admin.req('GET', '/v1/nodes')).json.nodes.find((n: any) => n.id === id);
  const nodeToken = (name: string, dataDir = join(dir, name)): string => JSON.parse(readFileSync(join(dataDir, 'node-token.json'), 'utf8')).token;
  /** The CLI as a child process, with the admin token. */
  const cli = async (args: string[]) => {
    const env = { ...process.env };
    for (const k of ['TIDE_TOKEN', 'TIDE_ADMIN_TOKEN', 'TIDE_SERVER']) delete env[k];
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'tide.js'), ...args, '--server', server.url, '--token', ADMIN], { cwd: dir, env });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await exitAfterOutput(child);
    return { code, out, err };
  };

  before(async () => {
    // The node lease outlasts an agent restart on a loaded machine.
    server = await startServerProcess({ dataDir: join(dir, 'server'), config: writeConfig(dir), nodeLeaseMs: 10_000 });
    api = new Api(server.url);
    admin = new Api(server.url, ADMIN);
    startAgent('cred-a');
    startAgent('cred-b');
    await waitFor('both nodes ready', async () => ((await node('cred-a'))?.state === 'ready' && (await node('cred-b'))?.state === 'ready' ? true : undefined));
    // The server records a registration before its answer reaches the agent, which then keeps the token.
    await waitFor('both agents registered', async () => ([...agents.values()].every((a) => /registered with/.test(a.output)) ? true : undefined));
  });
  after(async () => {
    for (const a of agents.values()) await a.stop();
    await server.proc.stop();
  });

  test("node A's token cannot act for node B; the bootstrap token cannot take B over; a restarted B adopts its task", async () => {
    for (const name of ['cred-a', 'cred-b']) {
      assert.equal(statSync(join(dir, name, 'node-token.json')).mode & 0o777, 0o600, `${name}'s token file is private`);
    }
    const ta = nodeToken('cred-a');
    assert.notEqual(ta, nodeToken('cred-b'));
    // A task on B (A drained meanwhile).
    assert.equal((await admin.req('POST', '/v1/nodes/cred-a/drain')).status, 200);
    const id = await api.submit({ name: 'on-b', tasks: [{ gpus: 1, command: 'echo up; sleep 300' }] });
    await api.waitState(id, ['running']);
    assert.equal((await admin.req('POST', '/v1/nodes/cred-a/undrain')).status, 200);
    const task = (await api.job(id)).tasks[0];
    assert.equal(task.node, 'cred-b');
    const runId = `${id}.${task.index}.0`;

    const asA = new Api(server.url, ta);
    const hb = await asA.req('POST', '/v1/agent/heartbeat', { node: 'cred-b', reports: [{ runId, state: 'exited', pid: 1, exitCode: 1 }], telemetry: [] });
    assert.equal(hb.status, 403);
    assert.match(hb.json.error.message, /cred-a.*cred-b/);
    const before = await node('cred-b');
    const reg = await asA.req('POST', '/v1/agent/register', { id: 'cred-b', address: 'http://127.0.0.1:9/evil', cpuMilli: 16000, memoryMib: 65536, gpus: before.gpus, simulated: true });
    assert.equal(reg.status, 403);
    const asBootstrap = new Api(server.url, AGENT);
    const take = await asBootstrap.req('POST', '/v1/agent/register', { id: 'cred-b', address: 'http://127.0.0.1:9/evil', cpuMilli: 16000, memoryMib: 65536, gpus: before.gpus, simulated: true });
    assert.equal(take.status, 409);
    assert.match(take.json.error.message, /node cred-b already has a credential/);
    assert.equal((await asBootstrap.req('POST', '/v1/agent/heartbeat', { node: 'cred-b', reports: [{ runId, state: 'exited', pid: 1, exitCode: 1 }], telemetry: [] })).status, 403);
    // B's node and task are untouched: same address, still running, logs still come from B.
    assert.equal((await node('cred-b')).address, before.address);
    const after1 = await api.job(id);
    assert.equal(after1.job.state, 'running');
    assert.equal(after1.tasks[0].state, 'running');
    await waitFor('B serves the task\'s log', async () => ((await api.logs(id)) === 'up\n' ? true : undefined));

    // B's agent restarts on its data directory: it registers with its node token and adopts the task.
    const b = agents.get('cred-b') as Proc;
    await b.stop();
    const b2 = startAgent('cred-b');
    await waitFor('B re-registered', async () => (/registered with/.test(b2.output) ? true : undefined));
    await waitFor('B adopted its task', async () => (/adopted 1 running task/.test(b2.output) ? true : undefined));
    const after2 = await api.job(id);
    assert.equal(after2.job.state, 'running');
    assert.equal(after2.job.attempt, 0, 'not restarted');
    assert.equal((await node('cred-b')).state, 'ready');
    assert.doesNotMatch(b2.output, /refused/, 'no registration or heartbeat refused');
    const events = (await admin.req('GET', '/v1/events?order=desc&limit=50')).json.events.filter((e: any) => e.nodeId === 'cred-b').map((e: any) => e.type);
    assert.equal(events[0], 'node:reregistered', 'with its node token: no new credential');
    assert.equal((await api.req('POST', `/v1/jobs/${id}/cancel`)).status, 200);
  });

  test('a re-imaged node is refused until an admin resets its credential, then joins', async () => {
    const old = nodeToken('cred-a');
    await (agents.get('cred-a') as Proc).stop();
    const fresh = join(dir, 'cred-a-reimaged');
    const a2 = startAgent('cred-a', fresh);
    await waitFor('the refusal in the agent log', async () => (/already has a credential/.test(a2.output) ? true : undefined));
    const reset = await cli(['node', 'reset-credential', 'cred-a']);
    assert.equal(reset.code, 0, reset.err);
    assert.match(reset.out, /Node cred-a: credential [0-9a-f]{12} revoked/);
    await waitFor('the re-imaged node registered', async () => {
      try {
        return nodeToken('cred-a', fresh) ? true : undefined;
      } catch {
        return undefined;
      }
    });
    await waitFor('cred-a ready', async () => ((await node('cred-a'))?.state === 'ready' ? true : undefined));
    const gone = await new Api(server.url, old).req('POST', '/v1/agent/heartbeat', { node: 'cred-a', reports: [], telemetry: [] });
    assert.equal(gone.status, 401);
    assert.match(gone.json.error.message, /revoked/);
    const again = await cli(['node', 'reset-credential', 'no-such-node']);
    assert.equal(again.code, 3);
    assert.match(again.err, /node no-such-node has no credential/);
  });

  test('an agent that crashed after its offer was accepted, before it heard so, joins with its kept token', async () => {
    const data = join(dir, 'cred-c');
    const token = 'tide_node_kept-before-the-crash';
    mkdirSync(data, { recursive: true });
    writeFileSync(join(data, 'node-token.json'), JSON.stringify({ node: 'cred-c', token, pending: true }), { mode: 0o600 });
    const gpus = (await node('cred-b')).gpus;
    const accepted = await new Api(server.url, AGENT).req('POST', '/v1/agent/register', { id: 'cred-c', address: 'http://127.0.0.1:9', cpuMilli: 16000, memoryMib: 65536, gpus, simulated: true, nodeTokenHash: createHash('sha256').update(token).digest('hex') });
    assert.equal(accepted.status, 200);
    const c = startAgent('cred-c', data);
    await waitFor('cred-c registered', async () => (/registered with/.test(c.output) ? true : undefined));
    await waitFor('cred-c ready', async () => ((await node('cred-c'))?.address !== 'http://127.0.0.1:9' && (await node('cred-c'))?.state === 'ready' ? true : undefined));
    assert.deepEqual(JSON.parse(readFileSync(join(data, 'node-token.json'), 'utf8')), { node: 'cred-c', token, pending: false });
    assert.doesNotMatch(c.output, /refused/);
  });

  test('tide token create, list and revoke: the secret once, never listed; a revoked token is refused', async () => {
    const made = await cli(['token', 'create', '--tenant', 'e2e', '--expires-in-days', '7']);
    assert.equal(made.code, 0, made.err);
    const secret = made.out.trim();
    assert.match(secret, /^tide_e2e_/);
    const tenant = new Api(server.url, secret);
    assert.equal((await tenant.req('GET', '/v1/jobs')).status, 200);
    const list = await cli(['token', 'list']);
    assert.equal(list.code, 0, list.err);
    assert.match(list.out, /^ID +ROLE +OWNER +STATE +CREATED +EXPIRES +REVOKED +LAST USED/);
    assert.match(list.out, /node +cred-a +revoked/);
    assert.match(list.out, /agent \(bootstrap\)/);
    assert.ok(!list.out.includes(secret) && !list.out.includes(ADMIN) && !list.out.includes(AGENT), 'no secret listed');
    const listed = JSON.parse((await cli(['token', 'list', '-o', 'json'])).out) as any[];
    const mine = listed.find((t) => t.tenant === 'e2e' && t.expiresAt !== null);
    assert.ok(mine.expiresAt > Date.now() + 6 * 86_400_000);
    const revoked = await cli(['token', 'revoke', mine.id]);
    assert.equal(revoked.code, 0, revoked.err);
    const refused = await tenant.req('GET', '/v1/jobs');
    assert.equal(refused.status, 401);
    assert.match(refused.json.error.message, new RegExp(`token ${mine.id} revoked at`));
    const [badDays, badId, noTenant] = await Promise.all([
      cli(['token', 'create', '--tenant', 'e2e', '--expires-in-days', '-3']),
      cli(['token', 'revoke', 'zz']),
      cli(['token', 'create', '--tenant', 'nobody']),
    ]);
    assert.equal(badDays.code, 2);
    assert.match(badDays.err, /--expires-in-days/);
    assert.equal(badId.code, 2);
    assert.equal(noTenant.code, 2);
    assert.match(noTenant.err, /tenant: no tenant nobody/);
    for (const r of [badDays, badId, noTenant]) assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
    // tide tenant create takes an expiry too.
    const [tenantMade, tenantBad] = await Promise.all([cli(['tenant', 'create', 'expiring', '--expires-in-days', '2']), cli(['tenant', 'create', 'expiring', '--expires-in-days', 'soon'])]);
    assert.equal(tenantMade.code, 0, tenantMade.err);
    assert.match(tenantMade.out, /^Tenant expiring: token tide_expiring_\S+ \(expires \d{4}-/);
    assert.equal(tenantBad.code, 2);
    assert.match(tenantBad.err, /--expires-in-days/);
  });
});
