/**
 * High availability on PostgreSQL (runs when TIDE_TEST_DATABASE_URL is set; CI sets it): two
 * servers share one database, one holds the scheduler lease; kill -9 the leader and the other
 * takes over, the agent fails over to it, and nothing is lost.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { freshPostgresUrl, postgresSkipReason } from '../../src/store/testing.ts';
import { Api, startAgentProcess, startServerProcess, tempDir, waitFor, writeConfig, type Proc, type ServerHandle } from './harness.ts';

const base = process.env['TIDE_TEST_DATABASE_URL'];

// Without a PostgreSQL the suite is one skipped test with the reason (never silently absent).
if (!base) test('e2e: two servers on PostgreSQL', { skip: postgresSkipReason() ?? true }, () => {});
else {
  describe('e2e: two servers on PostgreSQL', () => {
    const dir = tempDir('ha');
    let db: { url: string; drop(): Promise<void> };
    const servers: ServerHandle[] = [];
    let agent: Proc;

    const leaderOf = async (): Promise<ServerHandle | undefined> => {
      const states = await Promise.all(
        servers.map(async (s) => {
          if (!s.proc.alive) return false;
          try {
            return ((await (await fetch(`${s.url}/healthz`)).json()) as { leader: boolean }).leader;
          } catch {
            return false;
          }
        }),
      );
      return states.filter(Boolean).length === 1 ? servers[states.indexOf(true)] : undefined;
    };

    before(async () => {
      db = await freshPostgresUrl(base);
      const config = writeConfig(dir);
      servers.push(await startServerProcess({ databaseUrl: db.url, config, nodeLeaseMs: 8000, extra: ['--server-id', 'alpha'] }));
      servers.push(await startServerProcess({ databaseUrl: db.url, config, nodeLeaseMs: 8000, extra: ['--server-id', 'beta'] }));
      agent = startAgentProcess({ servers: servers.map((s) => s.url), name: 'ha-node', gpus: '4xA100', dataDir: join(dir, 'agent'), checkpointRoot: join(dir, 'ckpt') });
    });
    after(async () => {
      await agent.stop();
      for (const s of servers) await s.proc.stop();
      await db.drop();
    });

    test('one leader; kill -9 it and the other takes over; running and new jobs finish', async (t) => {
      const leader = await waitFor('exactly one leader', leaderOf);
      const follower = servers.find((s) => s !== leader) as ServerHandle;
      const api = new Api(follower.url);
      await waitFor('node ready', async () => ((await api.req('GET', '/v1/nodes')).json.nodes?.[0]?.state === 'ready' ? true : undefined));
      // The follower serves the API; the leader schedules what it accepted.
      const running = await api.submit({ name: 'long', tasks: [{ gpus: 2, command: 'echo start; sleep 4; echo done' }] }, 'ha-long');
      await api.waitState(running, ['running']);

      const killedAt = Date.now();
      await leader.proc.kill9();
      await waitFor('the follower leads', async () => ((await leaderOf()) === follower ? true : undefined), 20_000, 50);
      t.diagnostic(`failover: follower leading ${Date.now() - killedAt} ms after the leader was killed`);

      const after = await api.submit({ name: 'after-failover', tasks: [{ gpus: 1, command: 'echo after' }] }, 'ha-after');
      assert.equal((await api.waitState(after, ['succeeded', 'failed'])).state, 'succeeded');
      const job = await api.waitState(running, ['succeeded', 'failed']);
      assert.equal(job.state, 'succeeded');
      assert.equal(job.attempt, 0, 'the running job was not disturbed');
      assert.equal(await api.logs(running), 'start\ndone\n');
      assert.equal(await api.submit({ name: 'long', tasks: [{ gpus: 2, command: 'echo start; sleep 4; echo done' }] }, 'ha-long'), running, 'idempotent across servers');
    });
  });
}
