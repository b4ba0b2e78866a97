/**
 * End to end (docs/energy.md): a real `tide server` (SQLite) and a `tide agent` with simulated
 * GPUs. Two half-GPU jobs share one GPU beside a whole-GPU job that is preempted and requeued;
 * the agent is killed and restarted, then the server, while they run. Afterwards every attempt
 * has its usage record with measured energy, no record holds more than its GPUs could draw
 * (nothing counted twice), and per node the records plus unallocated idle equal the measured
 * energy within 0.1 %. A budget stops a tenant's admission exactly at its usage, with the reason
 * shown, and a hair above lets it through; tenant B never reads tenant A's usage.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ADMIN, AGENT, Api, ROOT, TENANT, startAgentProcess, startServerProcess, tempDir, waitFor, type Proc, type ServerHandle } from './harness.ts';

const B_TOKEN = 'e2e-bee-token';
/** The simulated H100's most (agent/gpus.ts): no record may average more per GPU it holds. */
const MAX_WATTS = 700;
/** Runs 20 s in its first attempt (long enough to be preempted after an agent restart), 5 s after. */
const TRAINER = 'n=100; [ "$TIDE_ATTEMPT" = 0 ] || n=25; i=0; while [ $i -lt $n ]; do i=$((i+1)); sleep 0.2; done';

describe('e2e: measured energy, usage records and budgets across restarts', () => {
  const dir = tempDir('energy');
  const agentDir = join(dir, 'agent');
  let server: ServerHandle;
  let agent: Proc;
  let api: Api;
  let admin: Api;
  let bee: Api;
  const startedAt = Date.now();
  const config = join(dir, 'cluster.yaml');
  const startServer = (port?: number) => startServerProcess({ dataDir: join(dir, 'server'), config, nodeLeaseMs: 12_000, ...(port !== undefined ? { port } : {}) });
  const startAgent = (): Proc => startAgentProcess({ servers: [server.url], name: 'meter-a', gpus: '2xH100', dataDir: agentDir, checkpointRoot: join(dir, 'ckpt') });
  const ready = async (): Promise<true | undefined> => ((await admin.req('GET', '/v1/nodes')).json.nodes?.some((n: any) => n.id === 'meter-a' && n.state === 'ready') ? true : undefined);
  const epoch = (): { epoch: string; seq: number } => JSON.parse(readFileSync(join(agentDir, 'energy.json'), 'utf8'));

  before(async () => {
    writeFileSync(
      config,
      `adminToken: ${ADMIN}\nagentToken: ${AGENT}\ntenants:\n  - name: e2e\n    tokens: [${TENANT}]\n  - name: bee\n    tokens: [${B_TOKEN}]\nenergy:\n  tariff: [{from: 0, to: 8, yuanPerKwh: 0.3}, {from: 8, to: 24, yuanPerKwh: 0.9}]\n  pue: 1.25\n  gpuHourYuan: {H100: 20}\n`,
    );
    server = await startServer();
    api = new Api(server.url);
    admin = new Api(server.url, ADMIN);
    bee = new Api(server.url, B_TOKEN);
    agent = startAgent();
    await waitFor('the node', ready);
  });
  after(async () => {
    await agent.stop();
    await server.proc.stop();
  });

  const jobIds: string[] = [];

  test('a fractional pair and a preempted job run through an agent restart and a server restart', async () => {
    const trainer = await api.submit({ name: 'trainer', gracePeriodSeconds: 2, tasks: [{ gpus: 1, command: TRAINER }] });
    await api.waitState(trainer, ['running']);
    const halves = [await api.submit({ name: 'half-a', tasks: [{ gpus: 0.5, command: 'sleep 7' }] }), await api.submit({ name: 'half-b', tasks: [{ gpus: 0.5, command: 'sleep 7' }] })];
    for (const id of halves) await api.waitState(id, ['running']);
    jobIds.push(trainer, ...halves);
    const gpuOf = async (id: string) => (await api.job(id)).tasks[0].gpus.join(',');
    assert.equal(await gpuOf(halves[0] as string), await gpuOf(halves[1] as string), 'the two halves share one GPU');
    assert.notEqual(await gpuOf(halves[0] as string), await gpuOf(trainer));

    // The agent dies and comes back: it adopts the runs and its meter goes on in the same epoch.
    await waitFor('a few energy observations', async () => (epoch().seq >= 4 ? true : undefined));
    const before = epoch();
    await agent.kill9();
    agent = startAgent();
    await waitFor('the agent metering again', async () => (epoch().seq > before.seq ? true : undefined));
    assert.equal(epoch().epoch, before.epoch, 'the counters survive the restart');

    assert.equal((await admin.req('POST', `/v1/jobs/${trainer}/preempt`)).status, 200);
    await waitFor('the trainer requeued and running again', async () => {
      const { job } = await api.job(trainer);
      return job.attempt === 1 && job.state === 'running' ? true : undefined;
    });

    // The server dies and comes back on the same port and database.
    await server.proc.kill9();
    server = await startServer(server.port);
    for (const id of jobIds) assert.equal((await api.waitState(id, ['succeeded', 'failed'], 60_000)).state, 'succeeded');
  });

  test('every attempt has its record with measured energy; none holds more than its GPUs could draw', async () => {
    const attempts = (await Promise.all(jobIds.map(async (id) => (await api.req('GET', `/v1/jobs/${id}`)).json.attempts.map((a: any) => ({ id, ...a }))))).flat();
    assert.equal(attempts.length, 4, 'trainer twice, each half once');
    const records = await waitFor('energy on every record', async () => {
      const r = (await api.req('GET', '/v1/usage?by=job&from=0')).json;
      const byJob = new Map<string, any>(r.rows.map((x: any) => [x.key, x]));
      return jobIds.every((id) => (byJob.get(id)?.energyJ ?? 0) > 0) ? byJob : undefined;
    });
    assert.equal(records.get(jobIds[0] as string)?.records, 2, 'the preempted attempt is a record of its own');
    for (const id of jobIds) {
      const runs = attempts.filter((a) => a.id === id);
      const seconds = runs.reduce((n, a) => n + (a.finishedAt - a.startedAt) / 1000, 0);
      const gpus = runs[0].gpuMilli / 1000;
      const row = records.get(id);
      assert.ok(Math.abs(row.gpuSeconds - gpus * seconds) < 1e-6, `job ${id}: GPU-seconds ${row.gpuSeconds} = ${gpus} × ${seconds}`);
      // Ends are known to the heartbeat (250 ms) and a restart's gap is one interval: a second of slack per attempt.
      const most = MAX_WATTS * Math.ceil(gpus) * (seconds + runs.length);
      assert.ok(row.energyJ <= most, `job ${id}: ${row.energyJ} J over ${seconds} s on ${gpus} GPU(s), at most ${most}`);
      assert.ok(row.energyJ >= 0.1 * MAX_WATTS * gpus * (seconds - 2 * runs.length), `job ${id}: ${row.energyJ} J is at least idle power over its run`);
      assert.ok(row.costYuan > row.energyYuan && Math.abs(row.gpuYuan - (20 * row.gpuSeconds) / 3600) < 1e-9, `job ${id}: GPU-hours at 20 yuan`);
      assert.ok(Math.abs(row.facilityKwh - (1.25 * row.energyJ) / 3.6e6) < 1e-12, 'PUE 1.25');
    }
  });

  test('per node, jobs + unallocated idle = measured energy within 0.1 %, and the node energy is physical', async (t) => {
    const nodes = (await admin.req('GET', '/v1/usage/nodes')).json.nodes as any[];
    const n = nodes.find((x) => x.node === 'meter-a');
    assert.ok(n && n.energyJ > 0);
    t.diagnostic(`node meter-a: ${JSON.stringify(n)}`);
    assert.ok(Math.abs(n.jobsJ + n.unallocatedJ - n.energyJ) <= 0.001 * n.energyJ, `${n.jobsJ} + ${n.unallocatedJ} vs ${n.energyJ}`);
    assert.ok(Math.abs(n.unattributedJ) <= 0.001 * n.energyJ);
    const elapsed = (Date.now() - startedAt) / 1000;
    assert.ok(n.energyJ <= 2 * MAX_WATTS * elapsed, `${n.energyJ} J in ${elapsed} s on 2 GPUs`);
    assert.ok(n.energyJ >= 2 * 0.1 * MAX_WATTS * (elapsed - 15) * 0.9, `${n.energyJ} J: at least idle power since the agent started`);
  });

  test('a budget stops admission exactly at the tenant\'s usage, with the reason shown; a hair above lets it in', async () => {
    // Capped at 150 W: the simulated GPU honours the cap (a dry run of nvidia-smi -pl), so its record shows it.
    const first = await bee.submit({ name: 'bee-one', powerCapWatts: 150, tasks: [{ gpus: 1, command: 'sleep 2' }] });
    assert.equal((await bee.waitState(first, ['succeeded', 'failed'])).state, 'succeeded');
    const capped = await waitFor('the capped record\'s energy', async () => {
      const row = (await bee.req('GET', '/v1/usage?by=job&from=0')).json.rows.find((r: any) => r.key === first);
      return row?.energyJ > 0 ? row : undefined;
    });
    assert.ok(capped.energyJ <= 150 * (capped.gpuSeconds + 0.5), `${capped.energyJ} J over ${capped.gpuSeconds} s under a 150 W cap`);
    assert.match(agent.output, /power cap \(dry run, simulated GPU \d\): nvidia-smi -i \d -pl 150/);
    const used = (await admin.req('GET', '/v1/usage?by=tenant&from=0&tenant=bee')).json.totals.gpuHours as number;
    assert.ok(used > 0);
    const set = await admin.req('PUT', '/v1/budgets/bee', { period: 'total', gpuHours: used });
    assert.equal(set.status, 200);
    assert.equal(set.json.budget.reached, 'gpuHours');
    const held = await bee.submit({ name: 'bee-two', tasks: [{ gpus: 1, command: 'true' }] });
    const reason = await waitFor('the budget reason', async () => {
      const { job } = await bee.job(held);
      assert.equal(job.state, 'pending', 'never admitted while at the limit');
      return /^budget-exhausted: /.test(job.reason ?? '') ? job.reason : undefined;
    });
    assert.match(reason, /tenant bee has used .* of its .* GPU-hours in all/);
    const squeue = execFileSync(process.execPath, [join(ROOT, 'bin', 'tide.js'), 'jobs', '--server', server.url, '--token', B_TOKEN], { encoding: 'utf8' });
    assert.match(squeue, new RegExp(`^${held}\\s+bee-two\\s+default\\s+bee\\s+PD.*\\(budget-exhausted: `, 'm'));
    // Still held a few cycles later (the loop ticks every 200 ms).
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await bee.job(held)).job.state, 'pending');
    assert.equal((await admin.req('PUT', '/v1/budgets/bee', { period: 'total', gpuHours: used * (1 + 1e-9) })).json.budget.reached, null);
    assert.equal((await bee.waitState(held, ['succeeded', 'failed'])).state, 'succeeded');
    const list = (await bee.req('GET', '/v1/budgets')).json.budgets;
    assert.deepEqual(list.map((b: any) => [b.tenant, b.period]), [['bee', 'total']]);
  });

  test('tenant B reads its own usage only; the CLI reports usage, energy and cost', async () => {
    assert.equal((await bee.req('GET', '/v1/usage?tenant=e2e')).status, 403);
    const mine = (await bee.req('GET', '/v1/usage?by=job&from=0')).json.rows.map((r: any) => r.key);
    assert.equal(mine.length, 2);
    for (const id of jobIds) assert.ok(!mine.includes(id), `B sees none of A's jobs (${id})`);
    assert.deepEqual((await bee.req('GET', '/v1/usage?by=tenant&from=0')).json.rows.map((r: any) => r.key), ['bee']);
    assert.equal((await bee.req('GET', '/v1/usage/nodes')).status, 403);
    const cli = (token: string, ...args: string[]): string => execFileSync(process.execPath, [join(ROOT, 'bin', 'tide.js'), ...args, '--server', server.url, '--token', token], { encoding: 'utf8' });
    const csv = cli(ADMIN, 'report', 'energy', '--by', 'tenant', '--from', '0', '-o', 'csv').trim().split('\n');
    assert.equal(csv[0], 'tenant,energy_kwh,idle_kwh,facility_kwh,co2_kg,kwh_gpu_h,requests,tokens,j_req,yuan_mtok');
    assert.deepEqual(csv.slice(1).map((l) => l.split(',')[0]), ['bee', 'e2e']);
    assert.match(cli(ADMIN, 'report', 'cost', '--by', 'job', '--from', '0'), new RegExp(`^${jobIds[0]}\\s+e2e\\s+default\\s+[\\d.]+\\s+[\\d.]+\\s+[\\d.]+\\s+[\\d.]+$`, 'm'));
    const own = cli(TENANT, 'usage', '--from', '0');
    for (const id of jobIds) assert.match(own, new RegExp(`^${id}\\s+e2e\\s+default\\s+1\\b|^${id}\\s+e2e\\s+default\\s+2\\b`, 'm'));
    assert.doesNotMatch(own, /\bbee\b/);
  });
});
