/**
 * The CLI's HTTP client: finds the server and token (flags, then TIDE_SERVER / TIDE_TOKEN, then
 * the .tide/client.json that `tide up` writes), calls the API, and turns API errors into one-line
 * UserErrors whose exit code comes from the error catalogue.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CODES, EXIT_UNREACHABLE, isErrorCode } from '../api/errors.ts';
import type { ApiErrorBody } from '../api/types.ts';
import { UserError } from '../util/errors.ts';

export interface ClientOptions {
  server?: string;
  token?: string;
  dataDir?: string;
}

export interface Connection {
  readonly servers: readonly string[];
  readonly token: string;
}

export const CLIENT_FILE = 'client.json';

export function resolveConnection(o: ClientOptions): Connection {
  let server = o.server ?? process.env['TIDE_SERVER'];
  let token = o.token ?? process.env['TIDE_TOKEN'];
  const file = join(o.dataDir ?? '.tide', CLIENT_FILE);
  if ((!server || !token) && existsSync(file)) {
    try {
      const saved = JSON.parse(readFileSync(file, 'utf8')) as { server?: string; token?: string };
      server ??= saved.server;
      token ??= saved.token;
    } catch {
      throw new UserError(`${file}: not valid JSON; delete it or pass --server and --token`);
    }
  }
  if (!server) throw new UserError('no server: pass --server URL, set TIDE_SERVER, or run `tide up` in this directory');
  if (!token) throw new UserError('no token: pass --token, set TIDE_TOKEN, or run `tide up` in this directory');
  return { servers: server.split(',').map((s) => s.trim().replace(/\/$/, '')), token };
}

export interface Reply<T> {
  readonly status: number;
  readonly body: T;
  readonly headers: Headers;
}

export class ApiClient {
  constructor(readonly conn: Connection) {}

  async raw(method: string, path: string, body?: string, contentType = 'application/json', extra: Record<string, string> = {}): Promise<Response> {
    let lastError: unknown;
    for (const base of this.conn.servers) {
      try {
        return await fetch(`${base}${path}`, {
          method,
          headers: { authorization: `Bearer ${this.conn.token}`, ...(body !== undefined ? { 'content-type': contentType } : {}), ...extra },
          ...(body !== undefined ? { body } : {}),
          signal: AbortSignal.timeout(30_000),
        });
      } catch (e) {
        lastError = e;
      }
    }
    throw new UserError(`cannot reach ${this.conn.servers.join(' or ')}: ${(lastError as Error)?.cause ? String(((lastError as Error).cause as Error).message) : String((lastError as Error)?.message)}`, EXIT_UNREACHABLE);
  }

  async request<T>(method: string, path: string, body?: string, contentType?: string, extra?: Record<string, string>): Promise<Reply<T>> {
    const res = await this.raw(method, path, body, contentType, extra);
    const text = await res.text();
    if (!res.ok) throw apiFailure(res.status, text);
    const type = res.headers.get('content-type') ?? '';
    return { status: res.status, body: (type.includes('json') ? JSON.parse(text) : text) as T, headers: res.headers };
  }
}

function apiFailure(status: number, text: string): UserError {
  try {
    const body = JSON.parse(text) as ApiErrorBody;
    const code = body.error.code;
    const exit = isErrorCode(code) ? ERROR_CODES[code].exit : 1;
    return new UserError(`${body.error.message} (${code}, HTTP ${status})`, exit);
  } catch {
    return new UserError(`HTTP ${status}: ${text.slice(0, 200)}`, 1);
  }
}
