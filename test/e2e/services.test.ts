/**
 * End to end, a service (docs/services.md) on a real server and two real agents on 127.0.0.2 and
 * .3 (two simulated H100s each): the example model server as its replicas, the example router
 * and load generator in front. Under load the reactive autoscaler scales it up, reclaiming at
 * once the GPUs it had lent to training (immediate evictions); when the load stops it scales down
 * and the training jobs borrow the freed GPUs again (borrowed: true in the API, lent and borrowed
 * GPUs per queue); raising its floor with POST /v1/jobs/:id/scale reclaims a borrower the planned
 * way (SIGTERM, checkpoint, requeue). A hostile tenant cannot read, scale or stop it, and the
 * server never fetches a replica's endpoints on a node other than the one it runs on (listeners
 * on the other node's address at each replica's port record every connection).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ADMIN, AGENT, Api, metricSum, Proc, replicaPortBase, ROOT, sleep, startServerProcess, tempDir, TENANT, tide, type ServerHandle, waitFor } from './harness.ts';

const MODEL = join(ROOT, 'examples', 'service', 'model-server.mjs');
const ROUTER = join(ROOT, 'examples', 'service', 'router.mjs');
const LOADGEN = join(ROOT, 'examples', 'service', 'loadgen.mjs');
const TRAINER = join(ROOT, 'examples', 'workload', 'trainer.mjs');
const BOB = 'e2e-bob-token';
const NODES = { 'node-a': '127.0.0.2', 'node-b': '127.0.0.3' } as const;
/** Replica ports of this run's own (another cluster on the machine may hold 20000 and up on every address). */
const PORTS = replicaPortBase('services');

/** The service: each replica listens on its node's own address (its port from TIDE_SERVICE_PORT). */
const serviceSpec = {
  name: 'chat',
  kind: 'service',
  queue: 'serve',
  gracePeriodSeconds: 5,
  service: { minReplicas: 1, maxReplicas: 3, serviceSeconds: 0.2, slo: { waitSeconds: 0.5, windowSeconds: 5 }, loadSeconds: 0.5, autoscaler: 'reactive' },
  tasks: [{
    gpus: 1,
    cpu: 0.5,
    memory: '256Mi',
    env: { MODEL_LOG_REQUESTS: '1', MODEL_LOAD_SECONDS: '0.5', MODEL_SERVICE_SECONDS: '0.2' },
    command: `exec node ${MODEL} --host "$(case "$TIDE_NODE" in node-a) echo ${NODES['node-a']};; *) echo ${NODES['node-b']};; esac)"`,
  }],
};
const trainSpec = (i: number) => ({
  name: `train-${i}`,
  kind: 'training',
  queue: 'train',
  checkpoint: true,
  gracePeriodSeconds: 5,
  tasks: [{ gpus: 1, cpu: 0.5, memory: '256Mi', command: ['node', TRAINER, '--steps', '1000000', '--rate', '10', '--checkpoint-every', '1'] }],
});

describe('e2e: a service scales on its load and lends its idle GPUs to training', () => {
  const dir = tempDir('services');
  let server: ServerHandle;
  let api: Api;
  let admin: Api;
  let bob: Api;
  const procs: Proc[] = [];
  let svc = '';
  const trainers: string[] = [];

  const status = async (): Promise<any> => (await api.req('GET', `/v1/jobs/${svc}`)).json;
  const readyReplicas = async (): Promise<any[]> => ((await status()).service?.replicas ?? []).filter((r: any) => r.ready);
  const metric = (pattern: RegExp): Promise<number> => metricSum(server.url, pattern);
  const jobs = async (): Promise<any[]> => api.allJobs();
  const borrowedTrainers = async (): Promise<any[]> => (await jobs()).filter((j) => trainers.includes(j.id) && j.state === 'running' && j.borrowed === true);

  before(async () => {
    const config = join(dir, 'cluster.yaml');
    writeFileSync(config, [
      `adminToken: ${ADMIN}`, `agentToken: ${AGENT}`,
      'tenants:', '  - name: e2e', `    tokens: [${TENANT}]`, '  - name: bob', `    tokens: [${BOB}]`,
      'queues:',
      '  - name: serve', '    cohort: tidal', '    nominalQuota: 4', '    tenants: [e2e]',
      '  - name: train', '    cohort: tidal', '    nominalQuota: 0', '    tenants: [e2e]',
      '  - name: default', '    tenants: [e2e, bob]', '',
    ].join('\n'));
    server = await startServerProcess({ dataDir: join(dir, 'server'), config, nodeLeaseMs: 10_000, extra: ['--service-decide-ms', '1500', '--service-reconcile-ms', '200', '--service-ports', `${PORTS}-${PORTS + 49}`] });
    api = new Api(server.url);
    admin = new Api(server.url, ADMIN);
    bob = new Api(server.url, BOB);
    for (const [name, ip] of Object.entries(NODES)) {
      procs.push(tide(['agent', '--server', server.url, '--token', AGENT, '--name', name, '--gpus', '2xH100', '--simulate', '--listen', ip, '--data-dir', join(dir, name), '--checkpoint-root', join(dir, 'ckpt'), '--heartbeat-ms', '250', '--cpus', '16', '--memory-gib', '64']));
    }
    await waitFor('two nodes ready', async () => {
      const nodes = (await admin.req('GET', '/v1/nodes')).json.nodes as any[];
      return Object.keys(NODES).every((id) => nodes.find((n) => n.id === id)?.state === 'ready') ? true : undefined;
    }, 60_000);
  });
  after(async () => {
    for (const id of [svc, ...trainers]) if (id) await api.req('POST', `/v1/jobs/${id}/cancel`).catch(() => {});
    await sleep(500);
    for (const p of procs) await p.stop();
    await server.proc.stop();
  });

  test('a service spec is checked like any job: the good one passes, every bad field is named', async () => {
    const good = (await api.req('POST', '/v1/jobs/validate', serviceSpec)).json;
    assert.equal(good.ok, true, JSON.stringify(good));
    const bad = { ...serviceSpec, preemptible: true, service: { minReplicas: 4, maxReplicas: 2, autoscaler: 'psychic', metrics: { path: 'http://evil/' } } };
    const r = await api.req('POST', '/v1/jobs', bad);
    assert.equal(r.status, 400);
    const paths = (r.json.error.fields as any[]).map((f) => f.path).sort();
    assert.deepEqual(paths, ['preemptible', 'service.autoscaler', 'service.maxReplicas', 'service.metrics.path']);
    const file = join(dir, 'bad-service.json');
    writeFileSync(file, JSON.stringify({ ...serviceSpec, service: { maxReplicas: 0 } }));
    const v = tide(['validate', file]);
    assert.equal(await v.exited, 2);
    assert.match(v.output, /service\.maxReplicas: must be an integer from minReplicas to 1024/);
    const okFile = join(dir, 'service.json');
    writeFileSync(okFile, JSON.stringify(serviceSpec));
    const ok = tide(['validate', okFile]);
    assert.equal(await ok.exited, 0, ok.output);
  });

  test('scales up under load (reclaiming lent GPUs at once), down when it stops; training borrows the rest, and a planned reclaim checkpoints', async () => {
    svc = await api.submit(serviceSpec);
    await waitFor('one ready replica', async () => ((await readyReplicas()).length === 1 ? true : undefined), 30_000);
    // Four training jobs: the service keeps 1 of its queue's 4 GPUs, so three borrow the other three.
    for (let i = 0; i < 4; i++) trainers.push(await api.submit(trainSpec(i)));
    await waitFor('three borrowing trainers', async () => ((await borrowedTrainers()).length === 3 ? true : undefined), 30_000);
    const queues = (await api.req('GET', '/v1/queues')).json.queues as any[];
    assert.equal(queues.find((q) => q.name === 'serve')?.lentGpus, 3);
    assert.equal(queues.find((q) => q.name === 'train')?.borrowedGpus, 3);
    assert.equal((await jobs()).filter((j) => trainers.includes(j.id) && j.state === 'pending').length, 1, 'the fourth waits');
    assert.equal(await metric(/^tide_lent_gpus\{queue="serve"\}/), 3);
    // The CLI shows it too: a BORROWED column in `tide jobs`, LENT in `tide queues`, the replicas in `tide job`.
    const cli = async (args: string[]): Promise<string> => {
      const p = tide([...args, '--server', server.url, '--token', TENANT]);
      assert.equal(await p.exited, 0, p.output);
      return p.output;
    };
    const table = (await cli(['jobs'])).split('\n');
    assert.match(table[0] ?? '', /BORROWED$/);
    assert.equal(table.filter((l) => /^\d+\s+train-\d.*\syes$/.test(l)).length, 3, table.join('\n'));
    assert.match((await cli(['queues'])).split('\n').find((l) => l.startsWith('serve')) ?? '', /\s3$/);
    assert.match(await cli(['job', svc]), /Service: +1 ready of 1 wanted \(between 1 and 3\)[\s\S]*Replicas:[\s\S]*http:\/\/127\.0\.0\.[23]:\d+\s+yes/);

    // Load: 10 requests/s for 10 s through the router (reactive: 2 Erlangs × 1.5 → 3 replicas, the most).
    const router = new Proc(spawn(process.execPath, [ROUTER, '--server', server.url, '--service', svc, '--token', TENANT, '--listen', '127.0.0.1:0', '--poll-ms', '200'], { stdio: ['ignore', 'pipe', 'pipe'] }));
    procs.push(router);
    const routerPort = Number((await waitFor('the router', async () => /on 127\.0\.0\.1:(\d+)/.exec(router.output)?.[1])));
    const curve = join(dir, 'flat.csv');
    writeFileSync(curve, 't_seconds,value\n0,1\n');
    const summaryFile = join(dir, 'load.json');
    const load = new Proc(spawn(process.execPath, [LOADGEN, '--target', `http://127.0.0.1:${routerPort}`, '--curve', curve, '--peak', '10', '--duration', '10', '--slo-wait', '0.5', '--window', '5', '--json', summaryFile], { stdio: ['ignore', 'pipe', 'pipe'] }));
    await waitFor('three ready replicas', async () => ((await readyReplicas()).length === 3 ? true : undefined), 40_000);
    assert.equal(await load.exited, 0, load.output);
    const summary = JSON.parse(readFileSync(summaryFile, 'utf8'));
    assert.ok(summary.requests > 50, `requests ${summary.requests}`);
    assert.equal(summary.failed, 0, 'every request was answered');
    const events = (await status()).events as any[];
    assert.ok(events.some((e) => e.type === 'service:scale-up' && /1 → [23] replicas/.test(e.message)), events.map((e) => `${e.type} ${e.message}`).join('\n'));
    assert.ok(events.some((e) => e.type === 'service:reclaim' && /immediate/.test(e.message)));
    assert.ok((await metric(/^tide_evictions_total\{kind="immediate"\}/)) >= 2);

    // No load: back to one replica, and the trainers borrow the freed GPUs again.
    await waitFor('one replica wanted', async () => ((await status()).service.desiredReplicas === 1 ? true : undefined), 30_000);
    await waitFor('three borrowing trainers again', async () => ((await borrowedTrainers()).length === 3 ? true : undefined), 30_000);
    assert.ok((await status()).events.some((e: any) => e.type === 'service:scale-down'));

    // The operator raises the floor ahead of a known peak: one borrower is reclaimed the planned way.
    const before = (await jobs()).filter((j) => trainers.includes(j.id));
    const scaled = await api.req('POST', `/v1/jobs/${svc}/scale`, { minReplicas: 2 });
    assert.equal(scaled.status, 200, JSON.stringify(scaled.json));
    await waitFor('two ready replicas', async () => ((await readyReplicas()).length === 2 ? true : undefined), 30_000);
    const victim = await waitFor('a planned eviction', async () => {
      for (const j of before) {
        const ev = ((await api.job(j.id)).events as any[]).find((e) => e.type === 'job:preempted' && /planned: checkpoint, then stop/.test(e.message));
        if (ev) return j.id as string;
      }
      return undefined;
    }, 30_000).catch(async (e: Error) => {
      // What the service and the trainers did instead (one CI run timed out here, unexplained).
      const story = [`trainers before: ${before.map((j) => `${j.id} ${j.state}${j.borrowed ? ' borrowed' : ''}`).join(', ')}`];
      for (const j of before) story.push(`${j.id}: ${((await api.job(j.id)).events as any[]).map((x) => `${x.type} ${x.message}`).join(' | ')}`);
      story.push(`service: ${((await status()).events as any[]).slice(-12).map((x) => `${x.type} ${x.message}`).join(' | ')}`);
      throw new Error(`${e.message}\n${story.join('\n')}`);
    });
    const after = await api.job(victim);
    assert.ok(after.job.progress?.checkpointStep >= 1, `the victim saved a checkpoint: ${JSON.stringify(after.job.progress)}`);
    const attempts = (await api.req('GET', `/v1/jobs/${victim}`)).json.attempts as any[];
    assert.ok(attempts.some((a) => a.endReason === 'stopped'), `its run was stopped as asked: ${JSON.stringify(attempts)}`);
    assert.ok((await metric(/^tide_evictions_total\{kind="planned"\}/)) >= 1);
    assert.equal(await metric(new RegExp(`^tide_service_replicas\\{service="${svc}",state="ready"\\}`)), 2);
  });

  test('another tenant cannot read, scale or stop the service; its replicas are reached only on their own node', async () => {
    assert.equal((await bob.req('GET', `/v1/jobs/${svc}`)).status, 404);
    assert.equal((await bob.req('POST', `/v1/jobs/${svc}/scale`, { maxReplicas: 1 })).status, 404);
    assert.equal((await bob.req('POST', `/v1/jobs/${svc}/cancel`)).status, 404);
    const replicas = (await status()).service.replicas.filter((r: any) => r.ready) as any[];
    assert.ok(replicas.length >= 2);
    for (const r of replicas) assert.equal((await bob.req('GET', `/v1/jobs/${r.id}`)).status, 404, `replica ${r.id}`);
    const seen = (await bob.allJobs()).map((j) => j.id);
    assert.deepEqual(seen.filter((id) => id === svc || replicas.some((r) => r.id === id)), []);

    // A listener on the other node's address at each replica's port: the server must never connect there.
    // Closed whatever happens: a listener left open would keep the test process from ending.
    const decoys: { server: Server; hits: number }[] = [];
    try {
      for (const r of replicas) {
        const url = new URL(r.url);
        const other = Object.values(NODES).find((ip) => ip !== url.hostname) as string;
        const d = { server: createServer((s) => { d.hits++; s.destroy(); }), hits: 0 };
        decoys.push(d);
        await new Promise<void>((ok, fail) => d.server.once('error', fail).listen(Number(url.port), other, ok));
      }
      await sleep(4000); // two or three scrape rounds
    } finally {
      for (const d of decoys) d.server.close();
    }
    assert.deepEqual(decoys.map((d) => d.hits), decoys.map(() => 0));
    // What each replica saw: scrapes and probes, all on its own node's address.
    for (const r of replicas) {
      const log = await api.logs(r.id);
      const gets = log.split('\n').filter((l) => l.startsWith('GET '));
      assert.ok(gets.some((l) => l.startsWith('GET /metrics')), `replica ${r.id} was scraped`);
      const host = new URL(r.url).hostname;
      assert.deepEqual([...new Set(gets.map((l) => /on (\S+):\d+$/.exec(l)?.[1]))], [host], `replica ${r.id} on ${r.node}`);
    }
    // Cancelling the service (its owner may) ends its replicas too.
    assert.equal((await api.req('POST', `/v1/jobs/${svc}/cancel`)).status, 200);
    await waitFor('no open replica', async () => ((await status()).service.replicas.every((r: any) => r.state === 'cancelled') ? true : undefined), 20_000);
  });
});
