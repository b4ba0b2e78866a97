/**
 * End to end, the energy stages live (docs/energy.md, "Live"): real `tide server` processes
 * (SQLite) and `tide agent` processes on simulated GPUs, over HTTP, with times made small.
 *
 * Dry run (no programs): a job's task assignment carries the power cap the powercap stage chose
 * and the agent applies it (its dry run of `nvidia-smi -pl`), shown by the API, `tide jobs` and
 * the job's events; idle nodes are suspended after the configured second (`tide nodes` idle~, the
 * metrics), a job that needs one waits as `waiting-for-node-power-up` while it wakes and then
 * runs; a deferrable job waits as `deferred-to-cheaper-hours` with the hour it will start.
 *
 * Real programs: suspending a node stops its agent (SIGSTOP: no heartbeats, as if powered off)
 * and resuming it continues it (SIGCONT). A suspend program that fails puts the node back in
 * service and work runs there at once; a node whose resume never brings it back is marked down
 * after the resume timeout while the other node runs the work; no node is ever suspended while it
 * runs a task.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ADMIN, AGENT, Api, ROOT, TENANT, startAgentProcess, startServerProcess, tempDir, waitFor, type Proc, type ServerHandle } from './harness.ts';

const cli = (server: string, token: string, ...args: string[]): string => {
  const env = { ...process.env };
  for (const k of ['TIDE_TOKEN', 'TIDE_ADMIN_TOKEN', 'TIDE_SERVER']) delete env[k];
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'tide.js'), ...args, '--server', server, '--token', token], { env, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
};
const nodeStates = async (admin: Api): Promise<Record<string, string>> => Object.fromEntries((await admin.req('GET', '/v1/nodes')).json.nodes.map((n: any) => [n.id, n.state]));

/** No node was suspended while a task of these jobs ran on it (from the audit log). */
async function neverSuspendedUnderATask(admin: Api, jobs: readonly string[]): Promise<void> {
  const events = (await admin.req('GET', '/v1/events?limit=1000')).json.events as any[];
  for (const id of jobs) {
    const { attempts } = (await admin.req('GET', `/v1/jobs/${id}`)).json;
    for (const a of attempts as any[]) {
      const during = events.filter((e) => e.type === 'node:suspended' && e.nodeId === a.node && e.at >= a.startedAt && e.at <= (a.finishedAt ?? Date.now()));
      assert.deepEqual(during, [], `node ${a.node} suspended while job ${id} ran there`);
    }
  }
}

describe('e2e: energy stages, dry run (powercap, consolidate, timeshift)', () => {
  const dir = tempDir('stages');
  let server: ServerHandle;
  const agents: Proc[] = [];
  let api: Api;
  let admin: Api;
  const hour = new Date().getUTCHours();

  before(async () => {
    // This hour and the next are dear, the rest cheap (UTC): a deferrable job waits for the hour after next.
    const tariff = Array.from({ length: 24 }, (_, h) => (h === hour || h === (hour + 1) % 24 ? 1 : 0.2));
    const config = join(dir, 'cluster.yaml');
    writeFileSync(
      config,
      `adminToken: ${ADMIN}\nagentToken: ${AGENT}\ntenants:\n  - {name: e2e, tokens: [${TENANT}]}\nenergy:\n  tariff: [${tariff.join(', ')}]\n  utcOffsetHours: 0\n` +
        'scheduling:\n  energy:\n    consolidate: {suspendSeconds: 1.5, resumeSeconds: 1.5, resumeTimeoutSeconds: 10}\n',
    );
    server = await startServerProcess({ dataDir: join(dir, 'server'), config });
    api = new Api(server.url);
    admin = new Api(server.url, ADMIN);
    for (const name of ['dry-a', 'dry-b']) agents.push(startAgentProcess({ servers: [server.url], name, gpus: '1xH100', dataDir: join(dir, name), checkpointRoot: join(dir, 'ckpt') }));
    await waitFor('two nodes', async () => (Object.keys(await nodeStates(admin)).length === 2 ? true : undefined));
  });
  after(async () => {
    for (const a of agents) await a.stop();
    await server.proc.stop();
  });

  test("the powercap stage's cap reaches the job's assignment and the agent applies it; API, tide jobs and events show it", async () => {
    const job = await api.submit({ name: 'capped', tasks: [{ gpus: 1, command: 'sleep 6' }] });
    const running = await api.waitState(job, ['running']);
    // The default 3 % slowdown on an H100 (core/scheduling/stages/powercap.ts; energyAdapter.test.ts checks the figure).
    assert.ok(running.powerCapWatts > 200 && running.powerCapWatts < 700, `cap ${running.powerCapWatts} W`);
    const cap = running.powerCapWatts as number;
    const node = (await api.job(job)).tasks[0].node as string;
    const agent = agents[node === 'dry-a' ? 0 : 1] as Proc;
    await waitFor('the agent applying the cap', async () => (agent.output.includes(`nvidia-smi -i 0 -pl ${cap}`) ? true : undefined));
    assert.match(agent.output, new RegExp(`power cap \\(dry run, simulated GPU 0\\): nvidia-smi -i 0 -pl ${cap}`));
    const table = cli(server.url, TENANT, 'jobs');
    assert.match(table.split('\n')[0] ?? '', /^JOBID +NAME +QUEUE +USER +ST +TIME +GPUS +POWER +PROGRESS +NODES\/REASON +BORROWED$/);
    assert.match(table, new RegExp(`^${job} +capped +default +e2e +R +\\S+ +1 +${cap}W +- *$`, 'm'));
    assert.match(cli(server.url, TENANT, 'job', job), new RegExp(`Power cap: ${cap} W per GPU \\(chosen by the powercap stage`));
    const admitted = (await api.job(job)).events.find((e: any) => e.type === 'job:admitted');
    assert.match(admitted.message, new RegExp(`, power cap ${cap} W per GPU$`));
    assert.equal((await api.waitState(job, ['succeeded', 'failed'])).state, 'succeeded');
    // The simulated GPU held under the cap (the agent's telemetry while it ran) is the energy half's concern (energy.test.ts).
  });

  test('idle nodes are suspended after the configured time; a job that needs one waits while it wakes, then runs', async () => {
    await waitFor('both nodes suspended', async () => (Object.values(await nodeStates(admin)).every((s) => s === 'suspended') ? true : undefined), 20_000);
    assert.match(cli(server.url, ADMIN, 'nodes'), /^dry-a +idle~ /m);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /^tide_nodes\{state="suspended"\} 2$/m);
    assert.match(metrics, /^tide_node_power_actions_total\{action="suspend",result="dry-run"\} 2$/m);

    const job = await api.submit({ name: 'wakes', tasks: [{ gpus: 1, command: 'sleep 2' }] });
    const waiting = await waitFor('the power-up reason', async () => {
      const { job: j } = await api.job(job);
      return j.state === 'pending' && /^waiting-for-node-power-up: node dry-[ab] is powering up \(ready in \d s\)$/.test(j.reason ?? '') ? j : undefined;
    });
    assert.ok(waiting.estimatedStart > Date.now() - 5000);
    const states = await nodeStates(admin);
    assert.deepEqual(Object.values(states).sort(), ['resuming', 'suspended'], 'one node woken, not both');
    assert.match(cli(server.url, ADMIN, 'nodes'), /idle#/);
    const woken = Object.keys(states).find((n) => states[n] === 'resuming') as string;
    assert.equal((await api.waitState(job, ['succeeded', 'failed'], 30_000)).state, 'succeeded');
    assert.equal((await api.job(job)).tasks[0].node, woken);
    const types = ((await admin.req('GET', '/v1/events?limit=1000')).json.events as any[]).filter((e) => e.nodeId === woken && e.type.startsWith('node:')).map((e) => e.type);
    assert.ok(types.join(' ').includes('node:suspended node:resuming node:ready'), types.join(' '));
    await neverSuspendedUnderATask(admin, [job]);
  });

  test('a deferrable job waits for the cheaper hour, saying until when, with its estimated start', async () => {
    const job = await api.submit({ name: 'night', deferrable: true, deadline: '1d', timeLimit: '1h', tasks: [{ gpus: 1, command: 'true' }] });
    const start = new Date();
    start.setUTCHours(hour + 2, 0, 0, 0);
    const held = await waitFor('the deferral', async () => {
      const { job: j } = await api.job(job);
      return /^deferred-to-cheaper-hours: /.test(j.reason ?? '') ? j : undefined;
    });
    // (Should the hour turn during the test, it is still one of the dear two: the same hour after next.)
    const at = `${String((hour + 2) % 24).padStart(2, '0')}:00`;
    assert.match(held.reason, new RegExp(`^deferred-to-cheaper-hours: deferred to ${at} \\(0\\.200 vs 1\\.000 yuan/kWh now\\); it must start by \\d\\d:\\d\\d to meet its deadline$`));
    assert.equal(held.estimatedStart, start.getTime());
    assert.match(cli(server.url, TENANT, 'job', job), new RegExp(`Estimated start: ${start.toISOString()}`));
    assert.equal((await api.req('POST', `/v1/jobs/${job}/cancel`)).status, 200);
  });
});

describe('e2e: node power programs (suspend stops the agent, resume continues it), failures', () => {
  const dir = tempDir('power');
  let server: ServerHandle;
  const agents = new Map<string, Proc>();
  let api: Api;
  let admin: Api;
  const log = join(dir, 'programs.log');
  const failFlag = join(dir, 'fail-suspend');
  const neverFlag = join(dir, 'never-resume-pw-d');

  before(async () => {
    const program = (name: string, body: string): string => {
      const file = join(dir, name);
      writeFileSync(file, `#!/bin/sh\necho "${name} $1" >> ${log}\n${body}\n`);
      chmodSync(file, 0o755);
      return file;
    };
    const suspend = program('suspend.sh', `[ -e ${failFlag} ] && { echo "BMC refused" >&2; exit 4; }\nkill -STOP "$(cat ${dir}/$1.pid)"`);
    const resume = program('resume.sh', `[ "$1" = pw-d ] && [ -e ${neverFlag} ] && exit 0\nkill -CONT "$(cat ${dir}/$1.pid)"`);
    writeFileSync(failFlag, '');
    const config = join(dir, 'cluster.yaml');
    writeFileSync(
      config,
      `adminToken: ${ADMIN}\nagentToken: ${AGENT}\ntenants:\n  - {name: e2e, tokens: [${TENANT}]}\n` +
        `scheduling:\n  energy:\n    consolidate: {suspendSeconds: 1, resumeSeconds: 1, resumeTimeoutSeconds: 4, suspendProgram: ${suspend}, resumeProgram: ${resume}, programTimeoutSeconds: 5}\n`,
    );
    server = await startServerProcess({ dataDir: join(dir, 'server'), config, nodeLeaseMs: 3000 });
    api = new Api(server.url);
    admin = new Api(server.url, ADMIN);
    for (const name of ['pw-c', 'pw-d']) {
      const a = startAgentProcess({ servers: [server.url], name, gpus: '1xH100', dataDir: join(dir, name), checkpointRoot: join(dir, 'ckpt') });
      writeFileSync(join(dir, `${name}.pid`), String(a.child.pid));
      agents.set(name, a);
    }
    await waitFor('two nodes', async () => (Object.keys(await nodeStates(admin)).length === 2 ? true : undefined));
  });
  after(async () => {
    for (const a of agents.values()) {
      if (a.alive && a.child.pid) process.kill(a.child.pid, 'SIGCONT');
      await a.stop();
    }
    await server.proc.stop();
  });

  test('a suspend program that fails puts the node back in service, and work runs there at once', async () => {
    const failed = await waitFor('a failed suspend', async () => {
      const events = (await admin.req('GET', '/v1/events?limit=1000')).json.events as any[];
      return events.find((e) => e.type === 'node:ready' && /^suspend program failed \(exit 4: BMC refused\): back in service$/.test(e.message));
    });
    assert.ok(failed.nodeId === 'pw-c' || failed.nodeId === 'pw-d');
    const job = await api.submit({ name: 'not-stalled', tasks: [{ gpus: 1, command: 'sleep 1' }] });
    assert.equal((await api.waitState(job, ['succeeded', 'failed'], 15_000)).state, 'succeeded');
    assert.ok(server.proc.output.includes('suspend program failed (exit 4: BMC refused)'));
    await neverSuspendedUnderATask(admin, [job]);
  });

  test('suspended nodes stop heartbeating without being lost; a node that never comes back is marked down at the resume timeout, and the work runs on the other', async () => {
    rmSync(failFlag);
    writeFileSync(neverFlag, '');
    await waitFor('both nodes suspended (their agents stopped)', async () => (Object.values(await nodeStates(admin)).every((s) => s === 'suspended') ? true : undefined), 20_000);
    assert.match(readFileSync(log, 'utf8'), /^suspend\.sh pw-c$/m);
    // Longer than the node lease (3 s) in silence: still suspended, not lost.
    const silentSince = Math.max(...(await admin.req('GET', '/v1/nodes')).json.nodes.map((n: any) => n.lastHeartbeat));
    await waitFor('a node lease of silence', async () => (Date.now() - silentSince > 3500 ? true : undefined), 10_000);
    assert.deepEqual(Object.values(await nodeStates(admin)), ['suspended', 'suspended']);

    const jobs = [await api.submit({ name: 'one', tasks: [{ gpus: 1, command: 'sleep 1' }] }), await api.submit({ name: 'two', tasks: [{ gpus: 1, command: 'sleep 1' }] })];
    await waitFor('a job waiting for a node to power up', async () => {
      const reasons = await Promise.all(jobs.map(async (id) => (await api.job(id)).job.reason ?? ''));
      return reasons.some((r) => r.startsWith('waiting-for-node-power-up: ')) ? true : undefined;
    });
    for (const id of jobs) assert.equal((await api.waitState(id, ['succeeded', 'failed'], 30_000)).state, 'succeeded');
    for (const id of jobs) assert.equal((await api.job(id)).tasks[0].node, 'pw-c', 'all the work ran on the node that came back');
    const down = await waitFor('pw-d marked down', async () => {
      const events = (await admin.req('GET', '/v1/events?limit=1000')).json.events as any[];
      return events.find((e) => e.type === 'node:lost' && e.nodeId === 'pw-d');
    });
    assert.equal(down.message, 'did not come back within 4 s of its resume (ResumeTimeout): marked down');
    assert.match(readFileSync(log, 'utf8'), /^resume\.sh pw-d$/m);
    assert.match(cli(server.url, ADMIN, 'nodes'), /^pw-d +down /m);
    await neverSuspendedUnderATask(admin, jobs);
    assert.ok(existsSync(neverFlag));
  });
});
