/**
 * The server's own timing of the API reads (tide_http_request_duration_seconds, metrics.ts), per
 * route and phase, beside what the readers measured from their side: a read's time in the server
 * against its time through the machine (the readers' process, its turn on a core, the sockets).
 * The server's clock starts when Fastify has the request: a wait for the request thread before
 * it was read off its socket is not in it (the benchmark's "request thread delay" is).
 */
import type { Histogram } from 'prom-client';

/** Cumulative answers per bucket bound (seconds; Infinity last), per `METHOD route`. */
export type RequestBuckets = ReadonlyMap<string, ReadonlyMap<number, number>>;

export async function requestBuckets(h: Histogram): Promise<RequestBuckets> {
  const out = new Map<string, Map<number, number>>();
  for (const v of (await h.get()).values) {
    if (v.metricName !== 'tide_http_request_duration_seconds_bucket') continue;
    const key = `${String(v.labels['method'])} ${String(v.labels['route'])}`;
    const le = v.labels['le'] === '+Inf' ? Infinity : Number(v.labels['le']);
    const buckets = out.get(key) ?? new Map<number, number>();
    buckets.set(le, (buckets.get(le) ?? 0) + v.value);
    out.set(key, buckets);
  }
  return out;
}

/** The answers of `key` between two readings: how many, how many took over `targetMs`, and the bucket bound (ms) under which 99 % of them finished. */
export function serverSide(before: RequestBuckets, after: RequestBuckets, key: string, targetMs = 100): { n: number; over: number; p99AtMostMs: number | null } {
  const a = after.get(key);
  if (!a) return { n: 0, over: 0, p99AtMostMs: null };
  const b = before.get(key);
  const bounds = [...a.keys()].sort((x, y) => x - y);
  const count = (le: number): number => (a.get(le) ?? 0) - (b?.get(le) ?? 0);
  const n = count(Infinity);
  const within = count(targetMs / 1000);
  const p99 = bounds.find((le) => count(le) >= 0.99 * n);
  return { n, over: n - within, p99AtMostMs: n === 0 || p99 === undefined ? null : p99 * 1000 };
}
