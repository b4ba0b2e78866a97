/** Helpers for tests of the HTTP API: one call over real HTTP, answered with its status, text and JSON. */

export interface Reply {
  readonly status: number;
  readonly text: string;
  /** The body parsed as JSON, or the text itself when it is not JSON. */
  readonly json: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests read answers freely
}

/** Calls `base + path` with a bearer token (none when null); a string body is sent as is, anything else as JSON. */
export async function httpCall(base: string, method: string, path: string, token: string | null, body?: unknown, type = 'application/json'): Promise<Reply> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': type } : {}) },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, text, json };
}
