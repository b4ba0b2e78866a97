/**
 * End to end (docs/energy.md, "Services"): a real `tide server` (SQLite) and `tide agent` with
 * simulated GPUs run the example service (examples/service/model-server.mjs, 128 tokens per
 * request) as two replicas. Requests sent to each replica show up in the usage records of its
 * attempt — requests served, tokens, J per request and yuan per million tokens — per job, per
 * service and per tenant, in the API and the CLI (table, CSV, JSON). The server is killed and
 * restarted: its new controller scrapes the same cumulative counters again and counts nothing
 * twice. A scale-down scrapes the stopped replica once more, so its last requests are kept.
 * Another tenant sees none of it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ADMIN, AGENT, Api, replicaPortBase, ROOT, sleep, startServerProcess, tempDir, TENANT, tide, type Proc, type ServerHandle, waitFor } from './harness.ts';

const MODEL = join(ROOT, 'examples', 'service', 'model-server.mjs');
/**
 * A loopback address and replica ports of this run's own: other clusters on the machine (other
 * tests, a live benchmark) hand out replica ports from 20000 and bind them on every address.
 */
const IP = `127.${100 + (process.pid % 150)}.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`;
const FIRST_PORT = replicaPortBase('serviceUsage');
const BOB = 'e2e-bob-token';
const TOKENS = 128;
const DECIDE_MS = 600;

const serviceSpec = {
  name: 'chat',
  kind: 'service',
  gracePeriodSeconds: 5,
  service: { minReplicas: 2, maxReplicas: 2, serviceSeconds: 0.02, loadSeconds: 0.3, autoscaler: 'reactive' },
  tasks: [{ gpus: 1, cpu: 0.5, memory: '256Mi', command: `exec node ${MODEL} --host ${IP} --load-seconds 0.3 --service-seconds 0.02 --tokens-per-request ${TOKENS}` }],
};

describe("e2e: a service's requests and tokens in its usage records, across a server restart and a scale-down", () => {
  const dir = tempDir('service-usage');
  const config = join(dir, 'cluster.yaml');
  let server: ServerHandle;
  let agent: Proc;
  let api: Api;
  let svc = '';
  const startServer = (port?: number) =>
    startServerProcess({ dataDir: join(dir, 'server'), config, nodeLeaseMs: 12_000, ...(port !== undefined ? { port } : {}), extra: ['--service-decide-ms', String(DECIDE_MS), '--service-reconcile-ms', '200', '--service-ports', `${FIRST_PORT}-${FIRST_PORT + 49}`] });

  before(async () => {
    writeFileSync(config, `adminToken: ${ADMIN}\nagentToken: ${AGENT}\ntenants:\n  - name: e2e\n    tokens: [${TENANT}]\n  - name: bob\n    tokens: [${BOB}]\nenergy:\n  tariff: 0.5\n  pue: 1.2\n  gpuHourYuan: {H100: 20}\n`);
    server = await startServer();
    api = new Api(server.url);
    agent = tide(['agent', '--server', server.url, '--token', AGENT, '--name', 'serve-a', '--gpus', '2xH100', '--simulate', '--listen', IP, '--data-dir', join(dir, 'agent'), '--checkpoint-root', join(dir, 'ckpt'), '--heartbeat-ms', '250', '--cpus', '16', '--memory-gib', '64']);
    await waitFor('the node', async () => ((await new Api(server.url, ADMIN).req('GET', '/v1/nodes')).json.nodes?.some((n: any) => n.id === 'serve-a' && n.state === 'ready') ? true : undefined));
  });
  after(async () => {
    if (svc) await api.req('POST', `/v1/jobs/${svc}/cancel`).catch(() => {});
    await sleep(500);
    await agent.stop();
    await server.proc.stop();
  });

  const replicas = async (): Promise<{ id: string; url: string; ready: boolean; state: string }[]> => (await api.req('GET', `/v1/jobs/${svc}`)).json.service?.replicas ?? [];
  /** Sends n requests to a replica, one after another; each answer counts the imitation's tokens. */
  const infer = async (url: string, n: number): Promise<void> => {
    for (let i = 0; i < n; i++) {
      const r = await fetch(`${url}/infer`, { method: 'POST', body: '{}' });
      assert.equal(r.status, 200);
      assert.equal(((await r.json()) as { tokens: number }).tokens, TOKENS);
    }
  };
  const usage = async (query: string, as: Api = api): Promise<any> => (await as.req('GET', `/v1/usage?from=0&${query}`)).json;
  const served = (want: number) => async (): Promise<any> => {
    const r = await usage('by=service');
    return r.totals.requests === want ? r : undefined;
  };

  test('each replica attempt records the requests it served and their tokens; J per request and yuan per million tokens follow', async () => {
    svc = await api.submit(serviceSpec);
    const [a, b] = await waitFor('two ready replicas', async () => {
      const reps = (await replicas()).filter((r) => r.ready);
      return reps.length === 2 ? reps : undefined;
    });
    assert.ok(a && b);
    assert.deepEqual([new URL(a.url).port, new URL(b.url).port].map(Number).sort(), [FIRST_PORT, FIRST_PORT + 1], 'ports from --service-ports');
    await Promise.all([infer(a.url, 20), infer(b.url, 10)]);
    const bySvc = await waitFor('30 requests served', served(30), 20_000);
    assert.deepEqual(bySvc.rows.map((r: any) => [r.key, r.tenant, r.records, r.requests, r.tokens]), [[svc, 'e2e', 2, 30, 30 * TOKENS]]);

    const rows = new Map<string, any>((await usage('by=job')).rows.map((r: any) => [r.key, r]));
    for (const [rep, n] of [[a, 20], [b, 10]] as const) {
      const row = rows.get(rep.id);
      assert.ok(row, `a record for replica ${rep.id}`);
      assert.deepEqual([row.requests, row.tokens], [n, n * TOKENS], `replica ${rep.id}`);
      assert.ok(row.energyJ > 0, 'the simulated GPU was metered');
      assert.ok(Math.abs(row.joulesPerRequest - row.energyJ / n) <= 1e-9 * row.joulesPerRequest, 'GPU joules per request');
      // Cost = energy at its tariff (0.5 yuan/kWh at the meter, PUE 1.2) + GPU-hours at 20 yuan.
      assert.ok(Math.abs(row.gpuYuan - (20 * row.gpuSeconds) / 3600) < 1e-9 && Math.abs(row.costYuan - row.energyYuan - row.gpuYuan) < 1e-12);
      assert.ok(Math.abs(row.energyYuan - (0.5 * 1.2 * row.energyJ) / 3.6e6) < 1e-12);
      assert.ok(Math.abs(row.yuanPerMillionTokens - (row.costYuan / (n * TOKENS)) * 1e6) <= 1e-9 * row.yuanPerMillionTokens, 'cost per million tokens');
    }
    const byTenant = (await usage('by=tenant')).rows.find((r: any) => r.key === 'e2e');
    assert.deepEqual([byTenant.requests, byTenant.tokens], [30, 30 * TOKENS], 'a tenant report sums its services');
  });

  test('a restarted server scrapes the same counters again and counts nothing twice', async () => {
    const [a] = (await replicas()).filter((r) => r.ready);
    assert.ok(a);
    await server.proc.kill9();
    server = await startServer(server.port);
    await infer(a.url, 5);
    await waitFor('35 requests served', served(35), 20_000);
    await sleep(4 * DECIDE_MS); // several more scrapes of unchanged counters
    const r = await usage('by=service');
    assert.deepEqual([r.totals.requests, r.totals.tokens], [35, 35 * TOKENS], 'every scrape after the restart added only increases');
  });

  test('a scale-down keeps the last requests of the replica it stops; the CLI reports it; another tenant sees none of it', async () => {
    const reps = (await replicas()).filter((r) => r.ready);
    assert.equal(reps.length, 2);
    await Promise.all(reps.map((r) => infer(r.url, 3)));
    assert.equal((await api.req('POST', `/v1/jobs/${svc}/scale`, { minReplicas: 1, maxReplicas: 1 })).status, 200);
    await waitFor('one replica stopped', async () => ((await replicas()).filter((r) => r.state !== 'cancelled').length === 1 ? true : undefined), 20_000);
    const r = await waitFor('41 requests served', served(41), 20_000);
    assert.equal(r.totals.tokens, 41 * TOKENS);

    const cli = (token: string, ...args: string[]): string => execFileSync(process.execPath, [join(ROOT, 'bin', 'tide.js'), ...args, '--server', server.url, '--token', token], { encoding: 'utf8' });
    const csv = cli(TENANT, 'report', 'cost', '--by', 'service', '--from', '0', '-o', 'csv').trim().split('\n');
    assert.equal(csv[0], 'service,tenant,queue,gpu_hours,energy_yuan,gpu_yuan,cost_yuan,requests,tokens,j_req,yuan_mtok');
    assert.match(csv[1] ?? '', new RegExp(`^${svc},e2e,default,[\\d.e-]+,[\\d.e-]+,[\\d.e-]+,[\\d.e-]+,41,${41 * TOKENS},[\\d.e-]+,[\\d.e-]+$`));
    const json = JSON.parse(cli(TENANT, 'report', 'usage', '--by', 'service', '--from', '0', '-o', 'json'));
    assert.deepEqual([json.rows[0].requests, json.rows[0].tokens], [41, 41 * TOKENS]);
    assert.ok(json.rows[0].joulesPerRequest > 0 && json.rows[0].yuanPerMillionTokens > 0);
    const table = cli(TENANT, 'usage', '--from', '0');
    assert.match(table.split('\n').find((l) => l.startsWith('JOBID')) ?? '', /REQUESTS\s+TOKENS\s+J\/REQ\s+YUAN\/MTOK/);

    const bob = new Api(server.url, BOB);
    assert.deepEqual((await usage('by=service', bob)).rows, []);
    assert.equal((await usage('by=job', bob)).totals.requests, 0);
  });
});
