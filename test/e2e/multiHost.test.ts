/**
 * End to end, a cluster on several addresses: a real `tide server` on 127.0.0.1 and three real
 * `tide agent` processes listening on (and connecting from) 127.0.0.2, .3 and .4 (Linux routes
 * all of 127/8 to lo, so each is a host of its own as far as sockets go), each with simulated
 * GPUs of another model. Jobs run on all three and their logs come back from each. Agent B's
 * credentials (its node token, the bootstrap token, the log key it is given) cannot report,
 * claim or read logs for node A's tasks; a registration whose address is not the one it came
 * from is refused naming both; and the server never connects to an address that is not the
 * node's registered one (listeners record every connection), and reads a node's logs only with
 * that node's own key. Also `tide server|up --listen` and the flags' errors.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingHttpHeaders } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ServerLink } from '../../src/agent/serverLink.ts';
import { ADMIN, AGENT, Api, freePort, sleep, startServerProcess, tempDir, tide, waitFor, writeConfig, type Proc, type ServerHandle } from './harness.ts';

const HOSTS = { 'node-a': { ip: '127.0.0.2', model: 'H100' }, 'node-b': { ip: '127.0.0.3', model: 'A100' }, 'node-c': { ip: '127.0.0.4', model: 'L40S' } } as const;
type NodeName = keyof typeof HOSTS;

/** A TCP listener that counts the connections it is offered. */
async function recorder(ip: string): Promise<{ server: TcpServer; port: number; connections: () => number }> {
  let n = 0;
  const server = createTcpServer((s) => {
    n++;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, ip, r));
  return { server, port: (server.address() as { port: number }).port, connections: () => n };
}

const noStack = (out: string): void => assert.doesNotMatch(out, /\n\s+at /, 'no stack trace');

describe('e2e: a cluster on several addresses', () => {
  const dir = tempDir('hosts');
  let server: ServerHandle;
  let api: Api;
  let admin: Api;
  const agents: Proc[] = [];
  const jobs: Record<string, string> = {};
  const startAgent = (name: string, listen: string, gpus: string, extra: string[] = []): Proc => {
    const p = tide([
      'agent', '--server', server.url, '--token', AGENT, '--name', name, '--gpus', gpus, '--simulate', '--listen', listen,
      '--data-dir', join(dir, name), '--checkpoint-root', join(dir, 'ckpt'), '--heartbeat-ms', '250', '--cpus', '16', '--memory-gib', '64', ...extra,
    ]);
    agents.push(p);
    return p;
  };
  const nodes = async (): Promise<any[]> => (await admin.req('GET', '/v1/nodes')).json.nodes;
  const node = async (id: string): Promise<any> => (await nodes()).find((n) => n.id === id);
  const nodeToken = (name: string): string => JSON.parse(readFileSync(join(dir, name, 'node-token.json'), 'utf8')).token;
  /** A registration body for a node as its agent sends it, at another address. */
  const registration = async (id: string, address: string) => {
    const n = await node(id);
    return { id, address, cpuMilli: 16000, memoryMib: 65536, gpus: n.gpus, simulated: true };
  };
  /** The agent API as seen from `ip` (the test connects from that address, as an agent there would). */
  const from = (ip: string) => new ServerLink(ip);

  before(async () => {
    server = await startServerProcess({ dataDir: join(dir, 'server'), config: writeConfig(dir), nodeLeaseMs: 10_000, extra: ['--host', '127.0.0.1'] });
    api = new Api(server.url);
    admin = new Api(server.url, ADMIN);
    for (const [name, h] of Object.entries(HOSTS)) startAgent(name, h.ip, `2x${h.model}`);
    await waitFor('three nodes ready', async () => {
      const list = await nodes();
      return Object.keys(HOSTS).every((id) => list.find((n) => n.id === id)?.state === 'ready') ? true : undefined;
    }, 60_000);
    await waitFor('the agents to hold their node tokens', async () => (agents.every((a) => /registered with/.test(a.output)) ? true : undefined));
  });
  after(async () => {
    for (const id of Object.values(jobs)) await api.req('POST', `/v1/jobs/${id}/cancel`).catch(() => {});
    await sleep(1000);
    for (const a of agents) await a.stop();
    await server.proc.stop();
  });

  test('each agent listens on, connects from and registers its own address; jobs run on all three models and their logs come back from each', async () => {
    for (const [name, h] of Object.entries(HOSTS)) {
      const n = await node(name);
      assert.match(n.address, new RegExp(`^http://${h.ip.replaceAll('.', '\\.')}:\\d+$`), `${name} registered its own address`);
      assert.deepEqual([...new Set(n.gpus.map((g: any) => g.model))], [h.model]);
    }
    for (const [name, h] of Object.entries(HOSTS)) {
      jobs[name] = await api.submit({ name: `on-${h.model}`, tasks: [{ gpus: 1, gpuModels: [h.model], command: `echo "hello from ${h.model}"` }] });
    }
    for (const [name, h] of Object.entries(HOSTS)) {
      const id = jobs[name] as string;
      assert.equal((await api.waitState(id, ['succeeded', 'failed'], 60_000)).state, 'succeeded', `job on ${name}`);
      assert.equal((await api.job(id)).tasks[0].node, name);
      assert.equal((await api.logs(id)).trim(), `hello from ${h.model}`, `the log of ${name}'s job, read from ${h.ip}`);
    }
  });

  test('an agent on every interface (--listen 0.0.0.0) warns once and registers the address it reaches the server from', async () => {
    const wide = startAgent('node-w', '0.0.0.0', '1xT4');
    const n = await waitFor('node-w ready', async () => {
      const w = await node('node-w');
      return w?.state === 'ready' ? w : undefined;
    });
    assert.match(n.address, /^http:\/\/127\.0\.0\.1:\d+$/);
    const warnings = wide.output.split('\n').filter((l) => /warning/.test(l));
    assert.equal(warnings.length, 1, wide.output);
    assert.match(warnings[0] ?? '', /the agent's log endpoint listens on every interface \(0\.0\.0\.0\) over plain HTTP/);
    jobs['node-w'] = await api.submit({ name: 'on-T4', tasks: [{ gpus: 1, gpuModels: ['T4'], command: 'echo "hello from T4"' }] });
    assert.equal((await api.waitState(jobs['node-w'], ['succeeded', 'failed'], 60_000)).state, 'succeeded');
    assert.equal((await api.logs(jobs['node-w'])).trim(), 'hello from T4');
    // It serves on every address of this machine (its key is still the only way in).
    const port = new URL(n.address).port;
    assert.equal((await fetch(`http://127.0.0.9:${port}/logs/1/0`)).status, 401);
  });

  test("agent B's credentials cannot report, claim or read logs for node A's tasks", async () => {
    const id = await api.submit({ name: 'a-long', tasks: [{ gpus: 1, gpuModels: ['H100'], command: 'echo "a secret line"; sleep 300' }] });
    jobs['a-long'] = id;
    await api.waitState(id, ['running'], 60_000);
    await waitFor("A's output", async () => ((await api.logs(id)).includes('a secret line') ? true : undefined));
    const runId = `${id}.0.0`;
    const tb = nodeToken('node-b');
    const b = from(HOSTS['node-b'].ip);
    try {
      // Report A's task as exited, as node A or as node B.
      const asA = await b.post(`${server.url}/v1/agent/heartbeat`, tb, { node: 'node-a', reports: [{ runId, state: 'exited', pid: 1, exitCode: 1 }], telemetry: [] }, 10_000);
      assert.equal(asA.status, 403);
      assert.match((asA.json as any).error.message, /node-b.*node-a|node-a.*node-b/);
      const asB = await b.post(`${server.url}/v1/agent/heartbeat`, tb, { node: 'node-b', reports: [{ runId, state: 'exited', pid: 1, exitCode: 1 }], telemetry: [] }, 10_000);
      assert.equal(asB.status, 200, 'B may heartbeat for itself');
      const keyB = (asB.json as any).logKey as string;
      assert.match(keyB, /^tide_logkey_/, "B's own answers carry B's log key");
      const after = await api.job(id);
      assert.equal(after.job.state, 'running', "a report for A's run from node B changes nothing");
      assert.equal(after.tasks[0].node, 'node-a');
      // Claim node A: with B's node token (403), with the bootstrap token (409: A has a credential).
      const claim = await b.post(`${server.url}/v1/agent/register`, tb, await registration('node-a', `http://${HOSTS['node-b'].ip}:9`), 10_000);
      assert.equal(claim.status, 403);
      const boot = await b.post(`${server.url}/v1/agent/register`, AGENT, await registration('node-a', `http://${HOSTS['node-b'].ip}:9`), 10_000);
      assert.equal(boot.status, 409);
      assert.equal((await node('node-a')).address.startsWith(`http://${HOSTS['node-a'].ip}:`), true, "A's address unchanged");
      // Logs: through the API (not a tenant: 403), and straight from A's agent with everything B holds (401).
      for (const token of [tb, AGENT]) assert.equal((await new Api(server.url, token).req('GET', `/v1/jobs/${id}/logs`)).status, 403);
      const addressA = (await node('node-a')).address as string;
      for (const [what, token] of [['bootstrap token', AGENT], ["B's node token", tb], ["B's log key", keyB]] as const) {
        const r = await fetch(`${addressA}/logs/${id}/0`, { headers: { authorization: `Bearer ${token}` } });
        assert.equal(r.status, 401, `A's agent refuses ${what}`);
        assert.doesNotMatch(await r.text(), /secret/);
      }
      const addressB = (await node('node-b')).address as string;
      assert.equal((await fetch(`${addressB}/logs/${jobs['node-b']}/0`, { headers: { authorization: `Bearer ${keyB}` } })).status, 200, "B's key opens B's logs: it is a real key");
      assert.match(await api.logs(id), /a secret line/, 'the server still reads A');
    } finally {
      b.close();
    }
  });

  test('an agent registering an address it does not connect from is refused, naming both addresses', async () => {
    const liar = startAgent('node-e', '127.0.0.5', '1xT4', ['--advertise', '127.0.0.6']);
    await waitFor('the refusal', async () => (/registration refused/.test(liar.output) ? true : undefined));
    assert.match(liar.output, /registration refused \(400\):.*address: host 127\.0\.0\.6 is not the address this registration came from \(127\.0\.0\.5\)/);
    noStack(liar.output);
    assert.equal(liar.alive, true, 'it keeps trying rather than dying');
    assert.equal(await node('node-e'), undefined);
    await liar.stop();
    // By hand, with B's own token: B's node at A's address.
    const b = from(HOSTS['node-b'].ip);
    try {
      const r = await b.post(`${server.url}/v1/agent/register`, nodeToken('node-b'), await registration('node-b', `http://${HOSTS['node-a'].ip}:9`), 10_000);
      assert.equal(r.status, 400);
      assert.match((r.json as any).error.message, /address: host 127\.0\.0\.2 is not the address this registration came from \(127\.0\.0\.3\)/);
    } finally {
      b.close();
    }
  });

  test("the server connects to a node's registered address only, with that node's key only", async () => {
    const atA = await recorder(HOSTS['node-a'].ip);
    const atB = await recorder(HOSTS['node-b'].ip);
    const seen: IncomingHttpHeaders[] = [];
    const fakeB = createHttpServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(200, { 'content-type': 'text/plain', 'x-tide-next-offset': '4' }).end('fake');
    });
    await new Promise<void>((r) => fakeB.listen(0, HOSTS['node-b'].ip, r));
    const fakeBPort = (fakeB.address() as { port: number }).port;
    const a = from(HOSTS['node-a'].ip);
    const b = from(HOSTS['node-b'].ip);
    try {
      const tb = nodeToken('node-b');
      const toA = `http://${HOSTS['node-a'].ip}:${atA.port}`;
      // Every way B (or the bootstrap token, from A's own address) might point the server at a recorder for node A.
      assert.equal((await b.post(`${server.url}/v1/agent/register`, tb, await registration('node-a', toA), 10_000)).status, 403);
      assert.equal((await b.post(`${server.url}/v1/agent/register`, tb, await registration('node-b', toA), 10_000)).status, 400);
      assert.equal((await a.post(`${server.url}/v1/agent/register`, AGENT, await registration('node-a', toA), 10_000)).status, 409);
      assert.equal((await b.post(`${server.url}/v1/agent/register`, AGENT, await registration('node-a', `http://${HOSTS['node-b'].ip}:${atB.port}`), 10_000)).status, 409);
      for (const name of Object.keys(HOSTS) as NodeName[]) assert.match(await api.logs(jobs[name] as string), new RegExp(`hello from ${HOSTS[name].model}`));
      assert.match(await api.logs(jobs['a-long'] as string), /a secret line/);
      assert.equal(atA.connections(), 0, 'nothing reached the recorder on A\'s address');
      assert.equal(atB.connections(), 0, 'nothing reached the recorder on B\'s address');
      // B may move its own node's endpoint on its own address: the server then reads B's logs there, with B's key alone.
      const moved = await b.post(`${server.url}/v1/agent/register`, tb, await registration('node-b', `http://${HOSTS['node-b'].ip}:${fakeBPort}`), 10_000);
      assert.equal(moved.status, 200, JSON.stringify(moved.json));
      const keyB = (moved.json as any).logKey as string;
      assert.equal(await api.logs(jobs['node-b'] as string), 'fake');
      assert.match(await api.logs(jobs['node-a'] as string), /hello from H100/, 'A is still read from A');
      assert.deepEqual(seen.map((h) => h.authorization), [`Bearer ${keyB}`], "one read at B's address, with B's key (not the bootstrap token)");
      assert.equal(atA.connections(), 0);
    } finally {
      a.close();
      b.close();
      atA.server.close();
      atB.server.close();
      fakeB.close();
    }
  });
});

describe('e2e: --listen for tide server and tide up', () => {
  test('tide server --listen 0.0.0.0:PORT serves every interface and says so in one warning line', async () => {
    const dir = tempDir('listen');
    const port = await freePort();
    const p = tide(['server', '--listen', `0.0.0.0:${port}`, '--data-dir', dir, '--config', writeConfig(dir)]);
    try {
      await waitFor('the server', async () => ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok ? true : undefined));
      assert.equal((await fetch(`http://127.0.0.9:${port}/healthz`)).status, 200, 'reached on another address of this machine');
      const warnings = p.output.split('\n').filter((l) => /warning/.test(l));
      assert.equal(warnings.length, 1, p.output);
      assert.match(warnings[0] ?? '', /the API listens on every interface \(0\.0\.0\.0\) over plain HTTP: tokens cross the network in clear; keep it on a private network or behind a TLS proxy/);
      noStack(p.output);
    } finally {
      await p.stop();
    }
  });

  test('tide server listens on 127.0.0.1 by default and warns of nothing', async () => {
    const dir = tempDir('listen-default');
    const port = await freePort();
    const p = tide(['server', '--port', String(port), '--data-dir', dir, '--config', writeConfig(dir)]);
    try {
      await waitFor('the server', async () => ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok ? true : undefined));
      await assert.rejects(fetch(`http://127.0.0.9:${port}/healthz`), 'not on another address');
      assert.doesNotMatch(p.output, /warning/);
      assert.match(p.output, new RegExp(`listening on http://127\\.0\\.0\\.1:${port}`));
    } finally {
      await p.stop();
    }
  });

  test('tide up --listen HOST:PORT puts the API and the local agent on that address', async () => {
    const dir = tempDir('up-listen');
    const port = await freePort();
    const up = tide(['up', '--listen', `127.0.0.7:${port}`, '--data-dir', dir, '--gpus', '1xH100']);
    try {
      await waitFor('the banner', async () => (up.output.includes('Tide is up') ? true : undefined), 30_000);
      assert.match(up.output, new RegExp(`Tide is up: http://127\\.0\\.0\\.7:${port}`));
      const client = JSON.parse(readFileSync(join(dir, 'client.json'), 'utf8')) as { server: string; token: string };
      const api = new Api(client.server, client.token);
      const id = await api.submit({ name: 'up-listen', tasks: [{ gpus: 1, command: 'echo up here' }] });
      assert.equal((await api.waitState(id, ['succeeded', 'failed'], 60_000)).state, 'succeeded');
      assert.equal((await api.logs(id)).trim(), 'up here');
      const nodes = (await api.req('GET', '/v1/nodes')).json.nodes as any[];
      assert.match(nodes[0].address, /^http:\/\/127\.0\.0\.7:\d+$/);
      assert.doesNotMatch(up.output, /warning/, 'a loopback address is not exposed');
    } finally {
      await up.stop();
    }
  });

  test('bad or doubled addresses are one-line errors naming the flag', async () => {
    const cases: [string[], RegExp][] = [
      [['server', '--listen', '127.0.0.1:8470', '--port', '8471'], /--listen 127\.0\.0\.1:8470 and --port 8471: give the port once/],
      [['server', '--listen', '127.0.0.1', '--host', '127.0.0.2'], /give the address once/],
      [['server', '--listen', '127.0.0.1:99999'], /--listen: port must be 0-65535, got '99999'/],
      [['server', '--listen', '[127.0.0.1]:80'], /--listen: brackets hold an IPv6 address/],
      [['server', '--listen', '127.0.0.1:8470:1'], /--listen: an IPv6 address with a port goes in brackets/],
      [['server', '--listen', '192.0.2.1'], /cannot listen on 192\.0\.2\.1: not an address of this machine \(EADDRNOTAVAIL\)/],
      [['agent', '--server', 'http://127.0.0.1:9', '--token', 't', '--simulate', '--listen', '192.0.2.1:9100', '--data-dir', tempDir('bad-agent')], /--listen: the log endpoint cannot listen on 192\.0\.2\.1:9100 \(EADDRNOTAVAIL: not an address of this machine\)/],
      [['agent', '--server', 'http://127.0.0.1:9', '--token', 't', '--advertise', 'node.example', '--data-dir', tempDir('bad-agent')], /--advertise: must be an IP address/],
      [['agent', '--server', 'http://127.0.0.1:9', '--token', 't', '--listen', 'node.example', '--data-dir', tempDir('bad-agent')], /--listen: the agent needs an IP address/],
    ];
    for (const [args, message] of cases) {
      const p = tide([...args, ...(args[0] === 'server' ? ['--data-dir', tempDir('bad')] : [])]);
      const code = await p.exited;
      assert.notEqual(code, 0, args.join(' '));
      assert.match(p.output, message);
      noStack(p.output);
    }
  });
});
