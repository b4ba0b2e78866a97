/**
 * A real Tide server for the fuzzers: startServer over an in-memory SQLite store, driven with
 * fastify's inject(). Its scheduling loop is stopped and ticked by hand (`tick()`), so a case
 * and the cycle after it run in a fixed order; loop errors are collected, not just logged.
 */
import assert from 'node:assert/strict';
import { startServer, type RunningServer } from '../../src/server/server.ts';

export const ADMIN = 'fuzz-admin-token';
export const AGENT = 'fuzz-agent-token';
export const ALICE = 'fuzz-alice-token';
export const BOB = 'fuzz-bob-token-1';

export interface Reply {
  readonly status: number;
  readonly json: any;
  readonly text: string;
}

export interface FuzzServer {
  readonly server: RunningServer;
  /** Lines the scheduling loop logged (an error there stalls the cluster). */
  readonly loopErrors: string[];
  call(method: string, url: string, token: string | null, body?: string, type?: string, headers?: Record<string, string>): Promise<Reply>;
  /** One scheduling tick (lease, node expiry, plan, apply); throws if the loop reported an error. */
  tick(): Promise<void>;
  close(): Promise<void>;
}

export async function fuzzServer(): Promise<FuzzServer> {
  const loopErrors: string[] = [];
  const server = await startServer({
    dataDir: '/nonexistent',
    databaseUrl: 'memory:',
    port: 0,
    adminToken: ADMIN,
    agentToken: AGENT,
    bodyLimit: 1024 * 1024,
    tickMs: 3_600_000,
    nodeLeaseMs: 3_600_000_000,
    log: (line) => {
      if (line.startsWith('scheduling loop')) loopErrors.push(line);
    },
    config: {
      adminToken: null,
      agentToken: null,
      tenants: [
        { name: 'alice', tokens: [ALICE] },
        { name: 'bob', tokens: [BOB] },
      ],
      queues: [{ name: 'research', gpuQuota: 4, borrowingLimit: 2 }],
    },
  });
  await server.loop.stop();
  const call: FuzzServer['call'] = async (method, url, token, body, type = 'application/json', headers = {}) => {
    const res = await server.app.inject({
      method: method as 'GET',
      url,
      headers: { ...headers, ...(token !== null ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': type } : {}) },
      ...(body !== undefined ? { payload: body } : {}),
    });
    let json: any;
    try {
      json = JSON.parse(res.body);
    } catch {
      json = null;
    }
    return { status: res.statusCode, json, text: res.body };
  };
  return {
    server,
    loopErrors,
    call,
    async tick() {
      const before = loopErrors.length;
      await server.loop.tick();
      assert.equal(loopErrors.length, before, `the scheduling loop failed: ${loopErrors.slice(before).join('; ')}`);
    },
    close: () => server.close(),
  };
}

/** Asserts the shape every 4xx/5xx must have: {error: {code, message}}. */
export function assertErrorBody(r: Reply, what: string): void {
  assert.ok(r.status < 500, `${what}: server error ${r.status} ${r.text.slice(0, 300)}`);
  if (r.status >= 400 && r.text !== '') {
    assert.equal(typeof r.json?.error?.code, 'string', `${what}: ${r.status} without error.code: ${r.text.slice(0, 300)}`);
    assert.equal(typeof r.json?.error?.message, 'string', `${what}: ${r.status} without error.message`);
  }
}
