import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { test } from 'node:test';
import { agentAddressProblem, agentLogKey, agentLogKeys, boundedBody } from './agentLink.ts';
import { startServer } from './server.ts';

test('an agent address must be on the IP its registration came from', () => {
  assert.equal(agentAddressProblem('http://127.0.0.1:9000', '127.0.0.1'), null);
  assert.equal(agentAddressProblem('http://127.0.0.1:9000', '::ffff:127.0.0.1'), null);
  assert.equal(agentAddressProblem('http://[::1]:9000', '::1'), null);
  assert.match(agentAddressProblem('http://169.254.169.254/latest/meta-data', '127.0.0.1') ?? '', /host 169\.254\.169\.254 is not the address this registration came from \(127\.0\.0\.1\)/);
  assert.match(agentAddressProblem('http://127.0.0.2:9000', '127.0.0.1') ?? '', /not the address/);
  assert.match(agentAddressProblem('http://localhost:5432', '127.0.0.1') ?? '', /not the address/);
  assert.match(agentAddressProblem('file:///etc/passwd', '127.0.0.1') ?? '', /http or https/);
  assert.match(agentAddressProblem('http://u:p@127.0.0.1:1', '127.0.0.1') ?? '', /no credentials/);
  assert.match(agentAddressProblem('not a url', '127.0.0.1') ?? '', /URL/);
});

test('a registration pointing the server at another host is a 400 naming address; a log read takes a bounded answer and follows no redirect', async () => {
  // A hostile "agent" that redirects to a secret and, on another path, floods.
  const secret = createServer((_req, res) => res.end('SECRET'));
  await new Promise<void>((r) => secret.listen(0, '127.0.0.1', r));
  const secretPort = (secret.address() as { port: number }).port;
  const hostile = createServer((req, res) => {
    if (req.url?.startsWith('/redirect/')) {
      res.writeHead(302, { location: `http://127.0.0.1:${secretPort}/` }).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    const block = Buffer.alloc(64 * 1024, 120);
    let sent = 0;
    const pump = (): void => {
      while (sent < 64 * 1024 * 1024 && res.write(block)) sent += block.length;
      if (sent < 64 * 1024 * 1024) res.once('drain', pump);
      else res.end();
    };
    pump();
  });
  await new Promise<void>((r) => hostile.listen(0, '127.0.0.1', r));
  const hostilePort = (hostile.address() as { port: number }).port;
  const server = await startServer({ dataDir: '/nonexistent', databaseUrl: 'memory:', port: 0, adminToken: 'link-admin-token', agentToken: 'link-agent-token', tickMs: 50 });
  try {
    const call = async (path: string, token: string, body?: unknown) => {
      const res = await fetch(`${server.url}${path}`, { method: body === undefined ? 'GET' : 'POST', headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
      return { status: res.status, text: await res.text() };
    };
    const gpus = [{ index: 0, model: 'H100', memoryMib: 81920, uuid: 'GPU-link-0' }];
    const elsewhere = await call('/v1/agent/register', 'link-agent-token', { id: 'n-far', address: 'http://169.254.169.254:80', cpuMilli: 8000, memoryMib: 65536, gpus, simulated: true });
    assert.equal(elsewhere.status, 400);
    assert.match(elsewhere.text, /address/);
    for (const [id, path] of [['n-redirect', '/redirect'], ['n-flood', '']] as const) {
      const reg = await call('/v1/agent/register', 'link-agent-token', { id, address: `http://127.0.0.1:${hostilePort}${path}`, cpuMilli: 8000, memoryMib: 65536, gpus, simulated: true });
      assert.equal(reg.status, 200, reg.text);
      const nodeToken = (JSON.parse(reg.text) as { nodeToken: string }).nodeToken;
      await call('/v1/agent/heartbeat', nodeToken, { node: id, telemetry: [], reports: [] });
    }
    const tenant = (JSON.parse((await call('/v1/tenants', 'link-admin-token', { name: 'link' })).text) as { token: string }).token;
    const ids: Record<string, string> = {};
    for (const node of ['n-redirect', 'n-flood']) {
      await call(`/v1/nodes/${node === 'n-redirect' ? 'n-flood' : 'n-redirect'}/drain`, 'link-admin-token', {});
      await call(`/v1/nodes/${node}/undrain`, 'link-admin-token', {});
      const sub = await call('/v1/jobs', tenant, { name: node, tasks: [{ gpus: 1, command: 'sleep 60' }] });
      assert.equal(sub.status, 201, sub.text);
      ids[node] = (JSON.parse(sub.text) as { jobs: { id: string }[] }).jobs[0]!.id;
      for (let i = 0; i < 100; i++) {
        const job = JSON.parse((await call(`/v1/jobs/${ids[node]}`, tenant)).text) as { tasks: { node: string | null }[] };
        if (job.tasks[0]?.node) break;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const redirected = await call(`/v1/jobs/${ids['n-redirect']}/logs`, tenant);
    assert.equal(redirected.status, 503);
    assert.doesNotMatch(redirected.text, /SECRET/);
    const flooded = await call(`/v1/jobs/${ids['n-flood']}/logs`, tenant);
    assert.equal(flooded.status, 503);
    assert.match(flooded.text, /larger than/);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  } finally {
    await server.close();
    secret.close();
    hostile.closeAllConnections();
    hostile.close();
  }
});

test('boundedBody returns a small body whole, as bytes', async () => {
  assert.deepEqual(await boundedBody(new Response('héllo'), 10), Buffer.from('héllo'));
  await assert.rejects(boundedBody(new Response('x'.repeat(11)), 10), /larger than 10 bytes/);
});

test('agentLogKeys gives each node the key agentLogKey makes, under its own admin token', () => {
  const keys = agentLogKeys('admin-a');
  assert.equal(keys('n1'), agentLogKey('admin-a', 'n1'));
  assert.equal(keys('n1'), agentLogKey('admin-a', 'n1'), 'asked again');
  assert.equal(keys('n2'), agentLogKey('admin-a', 'n2'));
  assert.notEqual(keys('n1'), keys('n2'));
  assert.notEqual(agentLogKeys('admin-b')('n1'), keys('n1'), 'another admin token, another key');
});
