/**
 * End to end, idle allocation (docs/idle.md): a real `tide server` (SQLite) with `idle:
 * {afterMinutes: 0.1, action: reclaim}` and a `tide agent` process on simulated GPUs running real
 * tasks. A job that holds a GPU and only sleeps is reported (`job:idle`, GET /v1/idle, `tide
 * idle`, the metrics) once it has read idle for the configured 6 s, and reclaimed (its process
 * gone, the job `cancelled` with a reason naming its idle time); with `idlePolicy: report` it
 * keeps running; a job beside them that writes its progress is never reported. A second tenant
 * sees none of it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ADMIN, AGENT, Api, ROOT, TENANT, startAgentProcess, startServerProcess, tempDir, waitFor, type Proc, type ServerHandle } from './harness.ts';

const OTHER = 'e2e-other-tenant-token';
const AFTER_S = 6;

function alive(pid: number): boolean {
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('e2e: idle allocation', () => {
  const dir = tempDir('idle');
  let server: ServerHandle;
  let agent: Proc;
  let api: Api;
  let admin: Api;
  let other: Api;

  before(async () => {
    const config = join(dir, 'cluster.yaml');
    writeFileSync(config, `adminToken: ${ADMIN}\nagentToken: ${AGENT}\ntenants:\n  - {name: e2e, tokens: [${TENANT}]}\n  - {name: other, tokens: [${OTHER}]}\nidle:\n  afterMinutes: ${AFTER_S / 60}\n  action: reclaim\n`);
    server = await startServerProcess({ dataDir: join(dir, 'server'), config, nodeLeaseMs: 7000 });
    api = new Api(server.url);
    admin = new Api(server.url, ADMIN);
    other = new Api(server.url, OTHER);
    agent = startAgentProcess({ servers: [server.url], name: 'node-i', gpus: '4xH100', dataDir: join(dir, 'node-i'), checkpointRoot: join(dir, 'checkpoints') });
    await waitFor('a ready node', async () => ((await admin.req('GET', '/v1/nodes')).json.nodes.some((n: any) => n.state === 'ready') ? true : undefined));
  });
  after(async () => {
    await agent.stop();
    await server.proc.stop();
  });

  test('a job that holds a GPU and sleeps is reported after the idle time and reclaimed; with policy report it keeps running; a busy job is never reported', async (t) => {
    const pidFile = join(dir, 'reclaimed.pid');
    const reclaimed = await api.submit({ name: 'sleeper', gracePeriodSeconds: 2, tasks: [{ gpus: 1, command: `echo $$ > ${pidFile}; exec sleep 300` }] });
    const reported = await api.submit({ name: 'notebook', idlePolicy: 'report', tasks: [{ gpus: 1, command: 'sleep 300' }] });
    const busy = await api.submit({
      name: 'trainer',
      tasks: [{ gpus: 1, command: 'i=0; while :; do i=$((i+1)); printf \'{"step": %d}\' $i > "$TIDE_PROGRESS_FILE.tmp"; mv "$TIDE_PROGRESS_FILE.tmp" "$TIDE_PROGRESS_FILE"; sleep 0.5; done' }],
    });
    const started = await api.waitState(reclaimed, ['running']);
    await api.waitState(reported, ['running']);
    await api.waitState(busy, ['running']);

    // Reported: a job:idle event once the GPU has read idle for the configured time (the wait's
    // deadline bounds it: the idle time plus a few heartbeats and cycles).
    const idleEvent = await waitFor('job:idle of the sleeper', async () => (await api.job(reclaimed)).events.find((e: any) => e.type === 'job:idle'), (AFTER_S + 20) * 1000);
    assert.match(idleEvent.message, /^1 GPU idle for \d+s \(node-i GPU \d; utilization ≤ 5 %, memory ≤ 5 %\): idle policy reclaim$/);
    assert.ok(Number(/idle for (\d+)s/.exec(idleEvent.message)?.[1]) >= AFTER_S, idleEvent.message);
    assert.ok(idleEvent.at - started.startedAt >= AFTER_S * 1000, 'not before it had been idle for the configured time');
    t.diagnostic(`job:idle ${((idleEvent.at - started.startedAt) / 1000).toFixed(1)} s after the sleeper started (idle time ${AFTER_S} s): ${idleEvent.message}`);

    // Reclaimed: stopped like a time limit stops a job, its process gone, ended cancelled with the idle time named.
    const gone = await api.waitState(reclaimed, ['cancelled'], 20_000);
    assert.match(gone.reason, /^idle: its GPU idle for \d+s \(node-i GPU \d; utilization ≤ 5 %, memory ≤ 5 %\), reclaimed by idle policy reclaim$/);
    const { events, tasks } = await api.job(reclaimed);
    assert.deepEqual(events.filter((e: any) => e.type.startsWith('job:')).map((e: any) => e.type), ['job:submitted', 'job:admitted', 'job:running', 'job:idle', 'job:idle-reclaimed']);
    assert.match(events.find((e: any) => e.type === 'job:idle-reclaimed').message, /idle for \d+s .*: stopping its tasks \(SIGTERM, SIGKILL after 2 s\)$/);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    await waitFor(`the sleeper's process ${pid} to end`, async () => (alive(pid) ? undefined : true), 20_000);
    await waitFor('its task to stop', async () => ((await api.job(reclaimed)).tasks[0].state === 'stopped' ? true : undefined), 20_000);
    t.diagnostic(`reclaimed: ${gone.reason}`);
    assert.equal(tasks.length, 1);

    // Policy report: reported, and still running at twice the idle time.
    const twice = await waitFor('the notebook idle for twice the idle time', async () => {
      const r = await api.req('GET', '/v1/idle');
      const v = r.json.jobs.find((j: any) => j.job === reported);
      return v && v.idleSeconds >= 2 * AFTER_S ? v : undefined;
    }, (2 * AFTER_S + 20) * 1000);
    assert.deepEqual([twice.policy, twice.idleGpus, twice.heldGpus, twice.allIdle, twice.reclaimAt, twice.tenant], ['report', 1, 1, true, null, 'e2e']);
    const notebook = await api.job(reported);
    assert.equal(notebook.job.state, 'running');
    assert.ok(notebook.events.some((e: any) => e.type === 'job:idle') && !notebook.events.some((e: any) => e.type === 'job:idle-reclaimed'));
    assert.deepEqual((notebook as any).idle.gpus.map((g: any) => [g.node, g.pastThreshold]), [['node-i', true]], 'GET /v1/jobs/:id shows its idle GPU');

    // The busy job: never reported, its view empty.
    const trainer = await api.job(busy);
    assert.equal(trainer.job.state, 'running');
    assert.equal(trainer.events.filter((e: any) => e.type.startsWith('job:idle')).length, 0, JSON.stringify(trainer.events));
    assert.equal((trainer as any).idle, null);
    const mine = (await api.req('GET', '/v1/idle')).json;
    assert.deepEqual(mine.jobs.map((j: any) => j.job), [reported]);
    assert.deepEqual(mine.settings, { afterMinutes: AFTER_S / 60, utilizationPercent: 5, memoryPercent: 5, action: 'reclaim', jobsMayOptOut: true });

    // The other tenant sees none of it; the admin sees it all.
    const theirs = await other.req('GET', '/v1/idle?all=true');
    assert.deepEqual([theirs.status, theirs.json.jobs], [200, []]);
    assert.equal((await other.req('GET', '/v1/idle?tenant=e2e')).status, 403);
    assert.equal((await other.req('GET', `/v1/jobs/${reported}`)).status, 404);
    assert.doesNotMatch(JSON.stringify(theirs.json), /notebook|e2e/);
    assert.deepEqual((await admin.req('GET', '/v1/idle')).json.jobs.map((j: any) => j.job), [reported]);
    assert.deepEqual((await admin.req('GET', '/v1/idle?tenant=other')).json.jobs, []);
    assert.equal((await admin.req('GET', '/v1/idle?tenant=nobody')).status, 404);
    assert.equal((await api.req('GET', '/v1/idle?all=yes')).status, 400);

    // `tide idle`, as the tenant.
    const env = { ...process.env };
    for (const k of ['TIDE_TOKEN', 'TIDE_ADMIN_TOKEN', 'TIDE_SERVER']) delete env[k];
    const cli = spawnSync(process.execPath, [join(ROOT, 'bin', 'tide.js'), 'idle', '--server', server.url, '--token', TENANT], { cwd: dir, env, encoding: 'utf8' });
    assert.equal(cli.status, 0, cli.stderr);
    const [head, row, ...rest] = cli.stdout.trim().split('\n');
    assert.match(head ?? '', /^JOBID +NAME +USER +NODE:GPUS +IDLE\/HELD +IDLE FOR +SINCE +ACTION$/);
    assert.match(row ?? '', new RegExp(`^${reported} +notebook +e2e +node-i:\\d +1/1 +00:\\d\\d +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d +report$`));
    assert.deepEqual(rest, []);
    assert.match(cli.stderr, /^idle: utilization ≤ 5 % and memory ≤ 5 % for 00:06; cluster action reclaim$/m);

    // The metrics.
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /^tide_idle_gpus\{tenant="e2e"\} 1$/m);
    const seconds = Number(/^tide_idle_gpu_seconds_total\{tenant="e2e"\} ([\d.]+)$/m.exec(metrics)?.[1]);
    assert.ok(seconds >= 3 * AFTER_S, `two idle GPUs past ${AFTER_S} s, one of them for twice that: ${seconds}`);

    for (const id of [reported, busy]) assert.equal((await api.req('POST', `/v1/jobs/${id}/cancel`)).status, 200);
  });
});
