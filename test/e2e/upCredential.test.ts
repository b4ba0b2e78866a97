/**
 * `tide up` and node credentials: its agent keeps the local node's token in DATA_DIR/agent, a
 * restart reuses it, and when that file is gone (the agent directory deleted) `tide up` resets
 * the local node's credential itself instead of leaving its agent refused (409) at every beat.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Api, freePort, tempDir, tide, waitFor } from './harness.ts';

test('tide up keeps its node token across restarts and re-keys the local node when the token file is gone', async () => {
  const dir = tempDir('up-cred');
  const tokenFile = join(dir, 'agent', 'node-token.json');
  const upOnce = async (): Promise<{ token: string; output: string }> => {
    const up = tide(['up', '--port', String(await freePort()), '--data-dir', dir, '--gpus', '1xH100']);
    try {
      await waitFor('the banner', async () => (up.output.includes('Tide is up') ? true : undefined), 30_000);
      await waitFor('the local node registered', async () => (/registered with/.test(up.output) ? true : undefined));
      const client = JSON.parse(readFileSync(join(dir, 'client.json'), 'utf8')) as { server: string; token: string };
      const api = new Api(client.server, client.token);
      const id = await api.submit({ name: 'hello', tasks: [{ gpus: 1, command: 'echo hi' }] });
      assert.equal((await api.waitState(id, ['succeeded', 'failed'], 60_000)).state, 'succeeded');
      assert.ok(existsSync(tokenFile));
      return { token: JSON.parse(readFileSync(tokenFile, 'utf8')).token as string, output: up.output };
    } finally {
      await up.stop();
    }
  };
  const first = await upOnce();
  const second = await upOnce();
  assert.equal(second.token, first.token, 'a restart reuses the node token');
  rmSync(tokenFile);
  const third = await upOnce();
  assert.notEqual(third.token, first.token, 'a new credential');
  assert.doesNotMatch(third.output, /already has a credential/);
});
