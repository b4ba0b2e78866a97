/**
 * End to end, the live core chooses by speed: a real `tide server` (default scheduler: tide) and
 * two real agents, one with a slower GPU model (A100) and one with H100s, both free. A 1-GPU job
 * goes to the H100 node, the faster; the cluster config's `gpuSpeeds` can turn that round, and a
 * job's own `gpuSpeeds` can rule a model out. (fifo takes models in the cluster's order, A100
 * first: this is the tide scheduler's choice, fed the speed table.)
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ADMIN, AGENT, Api, startAgentProcess, startServerProcess, TENANT, tempDir, waitFor, type Proc, type ServerHandle } from './harness.ts';

describe('e2e: heterogeneity-aware placement on the live server', () => {
  const dir = tempDir('hetero');
  let server: ServerHandle;
  const agents: Proc[] = [];
  let api: Api;
  let admin: Api;

  before(async () => {
    const config = join(dir, 'cluster.yaml');
    // L40S is not in the cluster: the override of a model nobody has changes nothing.
    writeFileSync(config, `adminToken: ${ADMIN}\nagentToken: ${AGENT}\ntenants:\n  - name: e2e\n    tokens: [${TENANT}]\ngpuSpeeds: {L40S: 2}\n`);
    server = await startServerProcess({ dataDir: join(dir, 'server'), config });
    api = new Api(server.url);
    admin = new Api(server.url, ADMIN);
    for (const [name, gpus] of [['node-a100', '2xA100'], ['node-h100', '2xH100']] as const) {
      agents.push(startAgentProcess({ servers: [server.url], name, gpus, dataDir: join(dir, name), checkpointRoot: join(dir, 'ckpt') }));
    }
    await waitFor('both nodes ready', async () => ((await admin.req('GET', '/v1/nodes')).json.nodes.filter((n: any) => n.state === 'ready').length === 2 ? true : undefined));
  });
  after(async () => {
    for (const a of agents) await a.stop();
    await server.proc.stop();
  });

  test('with an H100 and a slower A100 free, the job runs on the H100; a job that says A100 is 0 for it never goes there', async () => {
    const fast = await api.submit({ name: 'fast', tasks: [{ gpus: 1, command: 'sleep 0.2' }] });
    const ran = await api.waitState(fast, ['succeeded', 'failed']);
    assert.equal(ran.state, 'succeeded');
    assert.equal((await api.job(fast)).tasks[0].node, 'node-h100');
    // Both H100s busy for a while: a job that cannot use an A100 (speed 0) waits rather than go there.
    const hold = await api.submit({ name: 'hold', tasks: [{ gpus: 2, gpuModels: ['H100'], command: 'sleep 3' }] });
    await api.waitState(hold, ['running']);
    const picky = await api.submit({ name: 'picky', gpuSpeeds: { A100: 0 }, tasks: [{ gpus: 1, command: 'true' }] });
    const done = await api.waitState(picky, ['succeeded', 'failed'], 60_000);
    assert.equal(done.state, 'succeeded');
    assert.equal((await api.job(picky)).tasks[0].node, 'node-h100', 'it waited for an H100');
  });
});
