/**
 * The CLI's HTTP client: finds the server and token (flags, then TIDE_SERVER / TIDE_TOKEN, then
 * the .tide/client.json that `tide up` writes), calls the API, and turns API errors into one-line
 * UserErrors whose exit code comes from the error catalogue.
 *
 * Admin commands (drain, preempt, tenant …) take the token from --token, TIDE_TOKEN,
 * TIDE_ADMIN_TOKEN, then the adminToken of DATA_DIR/credentials.json (written by `tide up`)
 * when this user can read it; never client.json's tenant token.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ERROR_CODES, EXIT_UNREACHABLE, isErrorCode } from '../api/errors.ts';
import type { ApiErrorBody } from '../api/types.ts';
import { UserError } from '../util/errors.ts';
import { ApiFailure } from './errorOutput.ts';

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
export const CREDENTIALS_FILE = 'credentials.json';

/** A JSON file of `tide up`, or null when it is missing or this user may not read it. */
function readSaved(file: string): Record<string, unknown> | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
  } catch {
    throw new UserError(`${file}: not valid JSON; delete it or pass --server and --token`);
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export function resolveConnection(o: ClientOptions, role: 'tenant' | 'admin' = 'tenant'): Connection {
  const dir = o.dataDir ?? '.tide';
  let server = o.server ?? process.env['TIDE_SERVER'];
  let token = o.token ?? process.env['TIDE_TOKEN'] ?? (role === 'admin' ? process.env['TIDE_ADMIN_TOKEN'] : undefined);
  const file = join(dir, CLIENT_FILE);
  if ((!server || (!token && role === 'tenant')) && existsSync(file)) {
    const saved = readSaved(file) ?? {};
    server ??= str(saved['server']);
    if (role === 'tenant') token ??= str(saved['token']);
  }
  if (!token && role === 'admin') token = str(readSaved(join(dir, CREDENTIALS_FILE))?.['adminToken']);
  if (!server) throw new UserError('no server: pass --server URL, set TIDE_SERVER, or run `tide up` in this directory');
  if (!token && role === 'admin') {
    throw new UserError(`this command needs the admin token: pass --token, set TIDE_ADMIN_TOKEN, or run it where ${join(dir, CREDENTIALS_FILE)} (written by \`tide up\`) is readable`, 4);
  }
  if (!token) throw new UserError('no token: pass --token, set TIDE_TOKEN, or run `tide up` in this directory');
  return { servers: server.split(',').map((s) => s.trim().replace(/\/$/, '')), token };
}

export interface Reply<T> {
  readonly status: number;
  readonly body: T;
  readonly headers: IncomingHttpHeaders;
}

/** An answer read whole: status, headers (lower-case names) and body bytes. */
export interface RawReply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/** One header's value (the first, if repeated). */
export const header = (h: IncomingHttpHeaders, name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

/**
 * Calls the API with node:http, not fetch: fetch loads undici on first use, about 30-50 ms of
 * every command's start (see bench/cliStart.ts). Each server in turn until one answers.
 */
export class ApiClient {
  constructor(readonly conn: Connection) {}

  async raw(method: string, path: string, body?: string, contentType = 'application/json', extra: Record<string, string> = {}): Promise<RawReply> {
    let lastError: unknown;
    for (const base of this.conn.servers) {
      try {
        return await send(method, new URL(`${base}${path}`), { authorization: `Bearer ${this.conn.token}`, ...(body !== undefined ? { 'content-type': contentType } : {}), ...extra }, body);
      } catch (e) {
        lastError = e;
      }
    }
    throw new UserError(`cannot reach ${this.conn.servers.join(' or ')}: ${(lastError as Error)?.message}`, EXIT_UNREACHABLE);
  }

  async request<T>(method: string, path: string, body?: string, contentType?: string, extra?: Record<string, string>): Promise<Reply<T>> {
    const res = await this.raw(method, path, body, contentType, extra);
    const text = res.body.toString('utf8');
    if (res.status < 200 || res.status > 299) throw apiFailure(res.status, text);
    const type = header(res.headers, 'content-type') ?? '';
    return { status: res.status, body: (type.includes('json') ? JSON.parse(text) : text) as T, headers: res.headers };
  }

  /** A GET whose body is kept as bytes (log chunks: a chunk may end inside a UTF-8 character). */
  async bytes(path: string): Promise<{ bytes: Buffer; headers: IncomingHttpHeaders }> {
    const res = await this.raw('GET', path);
    if (res.status < 200 || res.status > 299) throw apiFailure(res.status, res.body.toString('utf8'));
    return { bytes: res.body, headers: res.headers };
  }
}

async function send(method: string, url: URL, headers: Record<string, string>, body?: string): Promise<RawReply> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`${url.protocol} is not http: or https:`);
  const { request } = url.protocol === 'https:' ? await import('node:https') : await import('node:http');
  return new Promise((resolve, reject) => {
    // Large answers (a cluster's node list) come gzipped (server/compression.ts): 15× fewer bytes over a network.
    const req = request(url, { method, headers: { 'accept-encoding': 'gzip', ...headers, ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        try {
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw });
        } catch (e) {
          reject(new Error(`the answer is not valid gzip: ${(e as Error).message}`));
        }
      });
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', reject);
    req.end(body);
  });
}

/** An API error answer as an ApiFailure (its code, fields and exit code from the catalogue). */
export function apiFailure(status: number, text: string): ApiFailure {
  let body: ApiErrorBody | undefined;
  try {
    body = JSON.parse(text) as ApiErrorBody;
  } catch {
    // not JSON: a proxy's page, say
  }
  const code = body?.error?.code;
  if (typeof code !== 'string') return new ApiFailure(`HTTP ${status}: ${text.slice(0, 200)}`, 0, status >= 500 ? 6 : 1, status >= 500 ? 'unavailable' : 'failed');
  const exit = isErrorCode(code) ? ERROR_CODES[code].exit : 1;
  return new ApiFailure(String(body?.error.message), status, exit, code, body?.error.fields);
}
