/**
 * One HTTP call to the API over real HTTP (fetch), for tests and bench scripts: a bearer token
 * (none when null), a body sent as JSON (a string as it is), and the answer's status, text,
 * headers and body parsed as JSON (or the text itself when it is not JSON).
 */
export interface JsonCall {
  readonly token: string | null;
  readonly body?: unknown;
  /** Content type of the body (default application/json). */
  readonly type?: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Abort the whole call after this long (default: no limit). */
  readonly timeoutMs?: number;
}

export interface JsonAnswer {
  readonly status: number;
  readonly text: string;
  readonly json: unknown;
  readonly headers: Headers;
}

export async function callJson(base: string, method: string, path: string, o: JsonCall): Promise<JsonAnswer> {
  const { token, body } = o;
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': o.type ?? 'application/json' } : {}), ...o.headers },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    ...(o.timeoutMs !== undefined ? { signal: AbortSignal.timeout(o.timeoutMs) } : {}),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, text, json, headers: res.headers };
}
