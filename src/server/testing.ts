/**
 * Helpers for tests of the HTTP API: a real server on an in-memory store, and one call over real
 * HTTP, answered with its status, text and JSON.
 */
import type { QueueConfig } from '../store/store.ts';
import { callJson } from '../util/httpJson.ts';
import { startServer, type RunningServer, type ServerOptions } from './server.ts';

export interface Reply {
  readonly status: number;
  readonly text: string;
  /** The body parsed as JSON, or the text itself when it is not JSON. */
  readonly json: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests read answers freely
}

/** Calls `base + path` with a bearer token (none when null); a string body is sent as is, anything else as JSON. */
export async function httpCall(base: string, method: string, path: string, token: string | null, body?: unknown, type = 'application/json'): Promise<Reply> {
  const r = await callJson(base, method, path, { token, body, type });
  return { status: r.status, text: r.text, json: r.json };
}

/**
 * A server on an in-memory SQLite store and a free port, with tenants given as {name: tokens} and
 * queues; the other options as startServer's.
 */
export function memoryServer(o: Omit<ServerOptions, 'dataDir' | 'databaseUrl' | 'port' | 'config'> & { tenants?: Record<string, string[]>; queues?: QueueConfig[] }): Promise<RunningServer> {
  const { tenants = {}, queues = [], ...rest } = o;
  return startServer({
    ...rest,
    dataDir: '/nonexistent',
    databaseUrl: 'memory:',
    port: 0,
    config: { adminToken: null, agentToken: null, tenants: Object.entries(tenants).map(([name, tokens]) => ({ name, tokens })), queues },
  });
}
