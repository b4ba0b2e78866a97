/**
 * End to end, a service that starts with history (docs/services.md "Starting with history") on
 * a real server and agent: the history interface (PUT /v1/jobs/:id/history and `tide scale
 * --history FILE`: good, bad rows named by line, too large, another tenant refused), then the
 * live predictive path on a fast clock (--service-time-scale 720: a day in two minutes). The
 * `tide` autoscaler keeps its whole pool while it has nothing to learn from; once its history
 * (two days of a quiet curve with a 4-hour plateau a day) is imported it lends the GPUs the
 * forecast does not need to training, and ahead of the next plateau — with no load yet, so only
 * the forecast can know — takes them back the planned way (checkpoint, then stop), its lead
 * covering the scale-up time the controller measured per replica.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ADMIN, AGENT, Api, metricSum, Proc, replicaPortBase, ROOT, sleep, startServerProcess, tempDir, TENANT, tide, type ServerHandle, waitFor } from './harness.ts';

const MODEL = join(ROOT, 'examples', 'service', 'model-server.mjs');
const TRAINER = join(ROOT, 'examples', 'workload', 'trainer.mjs');
const BOB = 'e2e-bob-token';
/** Seconds of the services' clock per wall second. */
const SCALE = 720;
const DAY = 86_400;
/** Replica ports of this test's own (other clusters on the machine hold the default range's first ports). */
const PORTS = replicaPortBase('serviceHistory');

const service = (name: string, queue: string, autoscaler: string, maxReplicas: number) => ({
  name,
  kind: 'service',
  queue,
  gracePeriodSeconds: 2,
  service: { minReplicas: 1, maxReplicas, serviceSeconds: 2, slo: { waitSeconds: 5, windowSeconds: 300 }, loadSeconds: { median: 20, p90: 40 }, evictSeconds: 30, autoscaler },
  tasks: [{ gpus: 1, cpu: 0.25, memory: '128Mi', command: ['node', MODEL, '--time-scale', String(SCALE), '--load-seconds', '20', '--load-sigma', '0', '--service-seconds', '2'] }],
});
const trainSpec = (i: number) => ({
  name: `train-${i}`,
  kind: 'training',
  queue: 'train',
  checkpoint: true,
  gracePeriodSeconds: 2,
  tasks: [{ gpus: 1, cpu: 0.25, memory: '128Mi', command: ['node', TRAINER, '--steps', '100000000', '--rate', '10', '--checkpoint-every', '1', '--save-seconds', '0.05'] }],
});

/** The status of a PUT announcing a body of `bytes` (its first KiB sent): the server refuses one over its limit before reading it. */
function putStatus(url: string, bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'PUT', headers: { authorization: `Bearer ${TENANT}`, 'content-type': 'application/json', 'content-length': String(bytes) } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
      req.destroy();
    });
    req.on('error', reject);
    req.write(`{"points": [${'[1, 1], '.repeat(128)}`);
  });
}

describe('e2e: a service starts with history; the tide autoscaler plans its reclaims from it', () => {
  const dir = tempDir('service-history');
  let server: ServerHandle;
  let api: Api;
  let bob: Api;
  const procs: Proc[] = [];
  const jobs: string[] = [];

  const metric = (pattern: RegExp): Promise<number> => metricSum(server.url, pattern);
  /** The service's start on its autoscaler's clock (s). */
  const startOf = async (id: string): Promise<number> => ((await api.job(id)).job.startedAt / 1000) * SCALE;

  before(async () => {
    const config = join(dir, 'cluster.yaml');
    writeFileSync(config, [
      `adminToken: ${ADMIN}`, `agentToken: ${AGENT}`,
      'tenants:', '  - name: e2e', `    tokens: [${TENANT}]`, '  - name: bob', `    tokens: [${BOB}]`,
      'queues:',
      '  - name: serve', '    cohort: tidal', '    nominalQuota: 4', '    tenants: [e2e]',
      '  - name: train', '    cohort: tidal', '    nominalQuota: 0', '    tenants: [e2e]',
      '  - name: default', '    nominalQuota: 1', '    tenants: [e2e, bob]', '',
    ].join('\n'));
    server = await startServerProcess({ dataDir: join(dir, 'server'), config, nodeLeaseMs: 10_000, extra: ['--service-decide-ms', String(Math.round(30_000 / SCALE)), '--service-reconcile-ms', '100', '--service-time-scale', String(SCALE), '--service-ports', `${PORTS}-${PORTS + 49}`] });
    api = new Api(server.url);
    bob = new Api(server.url, BOB);
    procs.push(tide(['agent', '--server', server.url, '--token', AGENT, '--name', 'node-a', '--gpus', '5xH100', '--simulate', '--data-dir', join(dir, 'agent'), '--checkpoint-root', join(dir, 'ckpt'), '--heartbeat-ms', '100', '--cpus', '16', '--memory-gib', '64']));
    await waitFor('the node', async () => (((await new Api(server.url, ADMIN).req('GET', '/v1/nodes')).json.nodes as any[]).some((n) => n.state === 'ready') ? true : undefined), 60_000);
  });
  after(async () => {
    for (const id of jobs) await api.req('POST', `/v1/jobs/${id}/cancel`).catch(() => {});
    await sleep(500);
    for (const p of procs) await p.stop();
    await server.proc.stop();
  });

  test('the history interface: good points are kept, bad rows are named, too large is refused, another tenant cannot', async () => {
    const svc = await api.submit(service('hist', 'default', 'reactive', 1));
    jobs.push(svc);
    const start = await startOf(svc);
    const good = { points: [[start - 600, 0.5], [start - 300, 0.75], [start - 60, 0]] };
    const put = await api.req('PUT', `/v1/jobs/${svc}/history`, good);
    assert.equal(put.status, 200, JSON.stringify(put.json));
    assert.deepEqual(put.json.service.history, { points: 3, fromSeconds: start - 600, toSeconds: start - 60, updatedAt: put.json.service.history.updatedAt });
    assert.equal((await api.job(svc) as any).service.history.points, 3);
    assert.ok((await api.job(svc)).events.some((e: any) => e.type === 'service:history' && /3 points/.test(e.message)));

    const bad = await api.req('PUT', `/v1/jobs/${svc}/history`, { points: [[start - 600, 1], [start - 700, 1], [start - 500, -2], [start + 10, 1]] });
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.json.error.fields.map((f: any) => f.path), ['points[1][0]', 'points[2][1]', 'points[3][0]']);
    assert.match(bad.json.error.fields[2].message, /not before the service's start/);
    const many = await api.req('PUT', `/v1/jobs/${svc}/history`, { points: Array.from({ length: 100_001 }, (_, i) => [i + 1, 1]) });
    assert.equal(many.status, 400);
    assert.deepEqual(many.json.error.fields, [{ path: 'points', message: '100001 points, at most 100000' }]);
    assert.equal(await putStatus(`${server.url}/v1/jobs/${svc}/history`, 5 * 1024 * 1024), 413, 'a body over 4 MiB is not read');
    assert.equal((await bob.req('PUT', `/v1/jobs/${svc}/history`, good)).status, 404, 'another tenant cannot see it, let alone feed it');
    const notService = await api.submit({ name: 'plain', queue: 'default', tasks: [{ gpus: 0, cpu: 0.1, memory: '64Mi', command: 'sleep 60' }] });
    jobs.push(notService);
    assert.equal((await api.req('PUT', `/v1/jobs/${notService}/history`, good)).status, 409);
    assert.equal((await api.job(svc) as any).service.history.points, 3, 'the refused ones changed nothing');

    // The CLI reads the CSV, names bad rows by line, and sends good files.
    const cli = (args: string[]): Proc => tide([...args, '--server', server.url, '--token', TENANT]);
    const badFile = join(dir, 'bad.csv');
    writeFileSync(badFile, `t_seconds,value\n${start - 600},1\n${start - 700},1\noops,2\n`);
    const refused = cli(['scale', svc, '--history', badFile]);
    assert.equal(await refused.exited, 2, refused.output);
    assert.match(refused.output, /bad\.csv:3: field 't_seconds': \d+(\.\d+)? does not come after/);
    assert.match(refused.output, /bad\.csv:4: field 't_seconds': 'oops' is not a number of seconds/);
    const lateFile = join(dir, 'late.csv');
    writeFileSync(lateFile, `t_seconds,value\n${start - 600},1\n${start + 600},1\n`);
    const late = cli(['scale', svc, '--history', lateFile]);
    assert.equal(await late.exited, 2, late.output);
    assert.match(late.output, /late\.csv:3: field 't_seconds': .*not before the service's start/);
    const goodFile = join(dir, 'good.csv');
    writeFileSync(goodFile, `t_seconds,value\n${Array.from({ length: 120 }, (_, i) => `${start - 7200 + 60 * i},${(i % 7) / 10}`).join('\n')}\n`);
    const ok = cli(['scale', svc, '--history', goodFile]);
    assert.equal(await ok.exited, 0, ok.output);
    assert.match(ok.output, /history: 120 points over 2\.0 h/);
    const shown = cli(['job', svc]);
    assert.equal(await shown.exited, 0, shown.output);
    assert.match(shown.output, /History: +120 points over 2\.0 h before its start/);
    await api.req('POST', `/v1/jobs/${svc}/cancel`);
    await api.req('POST', `/v1/jobs/${notService}/cancel`);
  });

  test('with history, tide lends the quiet hours and takes the GPUs back ahead of the forecast rise, planned; its lead covers the measured scale-up', async () => {
    const svc = await api.submit(service('chat', 'serve', 'tide', 4));
    jobs.push(svc);
    for (let i = 0; i < 4; i++) jobs.push(await api.submit(trainSpec(i)));
    const trainers = jobs.slice(-4);
    // Nothing to learn from yet: it keeps the whole pool (learning), and no trainer borrows.
    await waitFor('a decision', async () => (/learning/.test((await api.job(svc) as any).service.reason ?? '') ? true : undefined), 30_000);
    await waitFor('four ready replicas', async () => (((await api.job(svc) as any).service.replicas as any[]).filter((r) => r.ready).length === 4 ? true : undefined), 60_000);

    // Two days of history: 0.005 requests/s, and 1/s for 4 h a day — the next plateau begins 25 s (wall) from now.
    const start = await startOf(svc);
    const riseWallMs = Date.now() + 25_000;
    const rise = (riseWallMs / 1000) * SCALE;
    const rateAt = (t: number): number => ((((t - rise) % DAY) + DAY) % DAY < 4 * 3600 ? 1 : 0.005);
    const points: [number, number][] = [];
    for (let t = start - 2 * DAY; t < start - 1; t += 60) points.push([t, rateAt(t)]);
    const putAt = Date.now();
    const put = await api.req('PUT', `/v1/jobs/${svc}/history`, { points });
    assert.equal(put.status, 200, JSON.stringify(put.json));
    const immediateBefore = await metric(/^tide_evictions_total\{kind="immediate"\}/);
    const plannedBefore = await metric(/^tide_evictions_total\{kind="planned"\}/);

    // It forecasts the quiet hours: it scales down and lends; two trainers borrow.
    const borrowing = await waitFor('trainers borrowing', async () => {
      const running = (await api.allJobs()).filter((j) => trainers.includes(j.id) && j.state === 'running' && j.borrowed === true);
      return running.length >= 2 ? running.map((j) => j.id as string) : undefined;
    }, 20_000).catch(async (e: Error) => {
      const st = (await api.job(svc)) as any;
      const all = (await api.allJobs()).filter((j) => trainers.includes(j.id)).map((j) => `${j.id} ${j.state} ${j.borrowed} ${j.reason}`);
      throw new Error(`${e.message}\n${st.service.reason} keep ${st.service.keepGpus} desired ${st.service.desiredReplicas}\n${all.join('\n')}\n${st.events.slice(-15).map((x: any) => `${x.type} ${x.message}`).join('\n')}\n${server.proc.output.slice(-3000)}`);
    });
    assert.ok(Date.now() < riseWallMs - 5000, 'the lending began well before the rise');
    assert.match((await api.job(svc) as any).service.reason, /^tide: forecast/);

    // Ahead of the rise, with no load at all: the service keeps its whole pool again and evicts the borrowers the planned way.
    const planned = await waitFor('planned evictions', async () => {
      const found: { id: string; at: number }[] = [];
      for (const id of borrowing) {
        const ev = ((await api.job(id)).events as any[]).find((e) => e.type === 'job:preempted' && e.at > putAt && /planned: checkpoint, then stop/.test(e.message));
        if (ev) found.push({ id, at: ev.at as number });
      }
      return found.length === borrowing.length ? found : undefined;
    }, 40_000);
    for (const p of planned) assert.ok(p.at < riseWallMs, `trainer ${p.id} was evicted ${((riseWallMs - p.at) / 1000).toFixed(1)} s before the rise`);
    assert.equal(await metric(/^tide_evictions_total\{kind="immediate"\}/), immediateBefore, 'nothing was taken back at once');
    assert.ok((await metric(/^tide_evictions_total\{kind="planned"\}/)) >= plannedBefore + 2);
    const events = ((await api.job(svc)).events as any[]).filter((e) => e.at > putAt);
    const raised = events.find((e) => (e.type === 'service:keep' || e.type === 'service:scale-up') && /keeps 4 GPU/.test(e.message));
    assert.ok(raised && raised.at < riseWallMs && /tide: forecast/.test(raised.message), events.map((e) => `${e.type} ${e.message}`).join('\n'));
    assert.ok(events.some((e) => e.type === 'service:reclaim' && /planned/.test(e.message) && !/immediate/.test(e.message)));

    // The margin's lead: the controller timed each replica from the decision that asked for it to ready.
    const scaleUp = await metric(new RegExp(`^tide_service_scale_up_seconds\\{service="${svc}"\\}`));
    assert.ok(scaleUp > 0, `a measured scale-up time: ${scaleUp}`);
    assert.ok(events.some((e) => /measured scale-up \d+ s/.test(e.message)), 'the decisions say their lead covers the measured scale-up');
  });
});
