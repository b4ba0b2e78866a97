/** The dashboard's only way to the server: the public HTTP API with the signed-in bearer token. */

export interface FieldError {
  readonly path: string;
  readonly message: string;
}

/** An API error answer: status, code, message and the fields it names. */
export class ApiFailure extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly fields: readonly FieldError[] = []) {
    super(message);
  }
}

const KEY = 'tide.token';
let token: string | null = localStorage.getItem(KEY);

export const currentToken = (): string | null => token;
export function setToken(t: string | null): void {
  token = t;
  if (t === null) localStorage.removeItem(KEY);
  else localStorage.setItem(KEY, t);
}

/** Calls the API; a non-2xx answer throws ApiFailure with the API's own message and fields. */
export async function api<T>(path: string, init: { method?: string; body?: unknown; signal?: AbortSignal; raw?: boolean } = {}): Promise<T> {
  const res = await fetch(path, {
    method: init.method ?? 'GET',
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    ...(init.signal ? { signal: init.signal } : {}),
  });
  if (!res.ok) {
    let body: { error?: { code?: string; message?: string; fields?: FieldError[] } } = {};
    try {
      body = (await res.json()) as typeof body;
    } catch {
      // not JSON
    }
    throw new ApiFailure(res.status, body.error?.code ?? 'error', body.error?.message ?? `${res.status} ${res.statusText}`, body.error?.fields ?? []);
  }
  return (init.raw ? res : await res.json()) as T;
}

/** A query string from the defined, non-empty values. */
export function qs(params: Record<string, string | number | undefined | null>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}
