/** `tide up` (what `npm start` runs): one process brings up a cluster that runs the README's examples. */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { Api, freePort, ROOT, sleep, tempDir, tide, waitFor } from './harness.ts';

test('tide up: simulated GPUs announced, URL printed, the examples run to completion', async () => {
  const dir = tempDir('up');
  const port = await freePort();
  const up = tide(['up', '--port', String(port), '--data-dir', dir, '--gpus', '4xH100']);
  try {
    await waitFor('the banner', async () => (up.output.includes('Tide is up') ? true : undefined), 30_000);
    assert.match(up.output, new RegExp(`Tide is up: http://127\\.0\\.0\\.1:${port}`));
    assert.match(up.output, /4 SIMULATED GPUs/);
    assert.match(up.output, /npx tide submit examples\/hello\.yaml/);
    const client = JSON.parse(readFileSync(join(dir, 'client.json'), 'utf8')) as { server: string; token: string };
    const api = new Api(client.server, client.token);
    const ids: string[] = [];
    const arrays: { id: string; size: number }[] = [];
    for (const f of ['hello.yaml', 'train-gang.yaml', 'inference-fraction.yaml', 'batch-array.json']) {
      const spec: unknown = parse(readFileSync(join(ROOT, 'examples', f), 'utf8'));
      const r = await api.req('POST', '/v1/jobs', spec);
      assert.equal(r.status, 201, `${f}: ${JSON.stringify(r.json)}`);
      // An array is answered as one, and followed by its counts.
      if (r.json.array) arrays.push(r.json.array);
      else ids.push(...r.json.jobs.map((j: any) => j.id));
    }
    assert.deepEqual([ids.length, arrays.map((a) => a.size)], [3, [4]]);
    for (const id of ids) assert.equal((await api.waitState(id, ['succeeded', 'failed'], 60_000)).state, 'succeeded', `job ${id}`);
    for (const a of arrays) {
      const done = await waitFor(`array ${a.id} done`, async () => {
        const shown = (await api.req('GET', `/v1/arrays/${a.id}`)).json.array;
        return shown.unfinished === 0 ? shown : undefined;
      }, 60_000);
      assert.equal(done.counts.succeeded, a.size, JSON.stringify(done.counts));
    }
    assert.match(await api.logs(ids[0] ?? ''), /hello from job \d+ on local, GPU \d/);
    assert.match(await api.logs(ids[2] ?? ''), /with 50% of its SMs, memory 0=40960M/);
  } finally {
    await up.stop();
  }
});

test('a second tide up on the same data directory refuses to start, names the first, and leaves it working', async () => {
  const dir = tempDir('up-twice');
  const first = tide(['up', '--port', String(await freePort()), '--data-dir', dir, '--gpus', '2xH100']);
  try {
    await waitFor('the first banner', async () => (first.output.includes('Tide is up') ? true : undefined), 30_000);
    const before = readFileSync(join(dir, 'client.json'), 'utf8');
    const second = tide(['up', '--port', String(await freePort()), '--data-dir', dir, '--gpus', '2xH100']);
    const code = await Promise.race([second.exited, sleep(30_000).then(() => 'still running')]);
    await second.stop();
    assert.equal(code, 5, second.output);
    assert.match(second.output, new RegExp(`in use by tide up \\(http://127\\.0\\.0\\.1:\\d+\\), pid ${first.child.pid}`));
    assert.doesNotMatch(second.output, /\n\s+at /, 'no stack trace');
    assert.equal(readFileSync(join(dir, 'client.json'), 'utf8'), before, 'client.json untouched');
    const client = JSON.parse(before) as { server: string; token: string };
    const api = new Api(client.server, client.token);
    const r = await api.req('POST', '/v1/jobs', { name: 'after-refusal', tasks: [{ gpus: 1, command: 'echo still here' }] });
    assert.equal(r.status, 201);
    assert.equal((await api.waitState(r.json.jobs[0].id, ['succeeded', 'failed'], 30_000)).state, 'succeeded');
    const nodes = await api.req('GET', '/v1/nodes');
    assert.equal(nodes.json.nodes[0].address.startsWith('http://127.0.0.1'), true);
  } finally {
    await first.stop();
  }
  // A lock left by a process that is gone (kill -9) is stale: the next start takes it over.
  writeFileSync(join(dir, 'server.lock'), JSON.stringify({ pid: 2 ** 22 + 1, host: hostname(), what: 'tide up', since: 'earlier' }));
  const third = tide(['up', '--port', String(await freePort()), '--data-dir', dir, '--gpus', '2xH100']);
  try {
    await waitFor('the third banner', async () => (third.output.includes('Tide is up') ? true : undefined), 30_000);
  } finally {
    await third.stop();
  }
  assert.equal(existsSync(join(dir, 'server.lock')), false, 'released on exit');
});
