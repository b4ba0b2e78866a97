/**
 * End to end, a real `tide server` and two real agents (2 and 4 simulated H100s, 16 cores
 * each): the CLI's submission of what no node could run exits 2 naming the field; a job that
 * fits only a drained node holds back nothing (the 1-GPU job behind it runs to the end), and
 * runs once the node is back.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ADMIN, Api, startAgentProcess, startServerProcess, TENANT, tempDir, tide, waitFor, writeConfig, type Proc, type ServerHandle } from './harness.ts';

describe('e2e: a job no node could run never blocks its queue', () => {
  const dir = tempDir('unsched');
  let server: ServerHandle;
  const agents: Proc[] = [];
  let api: Api;
  let admin: Api;

  before(async () => {
    server = await startServerProcess({ dataDir: join(dir, 'server'), config: writeConfig(dir), nodeLeaseMs: 10_000 });
    api = new Api(server.url);
    admin = new Api(server.url, ADMIN);
    for (const [name, gpus] of [['small', '2xH100'], ['big', '4xH100']] as const) {
      agents.push(startAgentProcess({ servers: [server.url], name, gpus, dataDir: join(dir, name), checkpointRoot: join(dir, 'ckpt') }));
    }
    await waitFor('both nodes ready', async () => ((await admin.req('GET', '/v1/nodes')).json.nodes.filter((n: any) => n.state === 'ready').length === 2 ? true : undefined));
  });
  after(async () => {
    for (const a of agents) await a.stop();
    await server.proc.stop();
  });

  test('tide submit of what no node could run exits 2 with the field and the largest node', async () => {
    for (const [file, task, line] of [
      ['five.yaml', 'gpus: 5', 'tasks[0].gpus: 5 GPUs on one node, but the largest node has 4 (H100)'],
      ['cpu.yaml', 'gpus: 1\n    cpu: 100', 'tasks[0].cpu: 100 cores, the largest node has 16'],
    ] as const) {
      writeFileSync(join(dir, file), `name: never\ntasks:\n  - ${task}\n    command: "true"\n`);
      const p = tide(['submit', join(dir, file), '--server', server.url, '--token', TENANT]);
      assert.equal(await p.exited, 2, p.output);
      assert.ok(p.output.includes(line), p.output);
      assert.ok(!/\n\s+at /.test(p.output), 'no stack trace');
    }
  });

  test('a job that fits only a drained node waits as unschedulable; the 1-GPU job behind it runs; it runs once the node is back', async () => {
    assert.equal((await admin.req('POST', '/v1/nodes/big/drain')).status, 200);
    const four = await api.submit({ name: 'four', tasks: [{ gpus: 4, command: 'true' }] });
    const one = await api.submit({ name: 'one', tasks: [{ gpus: 1, command: 'true' }] });
    const done = await api.waitState(one, ['succeeded', 'failed'], 60_000);
    assert.equal(done.state, 'succeeded');
    const waiting = (await api.job(four)).job;
    assert.equal(waiting.state, 'pending');
    assert.equal(waiting.reason, 'unschedulable: 4 GPUs on one node, but the largest schedulable node has 2 (H100)');
    assert.equal((await admin.req('POST', '/v1/nodes/big/undrain')).status, 200);
    assert.equal((await api.waitState(four, ['succeeded', 'failed'], 60_000)).state, 'succeeded');
  });
});
