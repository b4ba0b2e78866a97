/** `tide up` (what `npm start` runs): one process brings up a cluster that runs the README's examples. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { Api, freePort, ROOT, tempDir, tide, waitFor } from './harness.ts';

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
    for (const f of ['hello.yaml', 'train-gang.yaml', 'inference-fraction.yaml', 'batch-array.json']) {
      const spec: unknown = parse(readFileSync(join(ROOT, 'examples', f), 'utf8'));
      const r = await api.req('POST', '/v1/jobs', spec);
      assert.equal(r.status, 201, `${f}: ${JSON.stringify(r.json)}`);
      ids.push(...r.json.jobs.map((j: any) => j.id));
    }
    assert.equal(ids.length, 7);
    for (const id of ids) assert.equal((await api.waitState(id, ['succeeded', 'failed'], 60_000)).state, 'succeeded', `job ${id}`);
    assert.match(await api.logs(ids[0] ?? ''), /hello from job \d+ on local, GPU \d/);
    assert.match(await api.logs(ids[2] ?? ''), /with 50% of its SMs, memory 0=40960M/);
  } finally {
    await up.stop();
  }
});
