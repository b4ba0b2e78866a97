/**
 * A service's rate history from before Tide ran it (docs/services.md "Starting with history"):
 * `PUT /v1/jobs/{id}/history` with `{"points": [[t_seconds, value], …]}`, or `tide scale ID
 * --history FILE` with the CSV `t_seconds,value` a Prometheus export gives (`value`: requests per
 * second, e.g. `sum(rate(http_requests_total[1m]))`; `t_seconds`: Unix time). The same checks
 * run in the CLI (which names the file's lines) and the server (which names `points[i]`): at
 * least 2 points and at most MAX_HISTORY_POINTS, finite times that increase, rates from 0 to
 * MAX_HISTORY_RATE, spanning at most MAX_HISTORY_DAYS, all before the service started — the
 * autoscaler must see only the past, and what it observed itself since its start is its own.
 */
import { Type } from 'typebox';
import type { FieldError } from './spec.ts';

/** The most points one history holds (five weeks at a 30 s step is 100,800). */
export const MAX_HISTORY_POINTS = 100_000;
/** The longest a history may span: more adds nothing to daily and weekly profiles. */
export const MAX_HISTORY_DAYS = 35;
/** The highest rate (requests/s) a point may give. */
export const MAX_HISTORY_RATE = 1e6;
/** The route's body limit: MAX_HISTORY_POINTS points of about 30 bytes each, with room. */
export const HISTORY_BODY_LIMIT = 4 * 1024 * 1024;
/** Problems listed per refusal (the rest are counted). */
const MAX_LISTED = 20;

export const ServiceHistoryRequestSchema = Type.Object(
  {
    points: Type.Array(Type.Array(Type.Number(), { minItems: 2, maxItems: 2 }), {
      minItems: 2,
      maxItems: MAX_HISTORY_POINTS,
      description: `[t_seconds, requests per second], times increasing: each rate holds until the next point (at most an hour); Unix time on the service's autoscaler clock, all before the service started; 2 to ${MAX_HISTORY_POINTS} points over at most ${MAX_HISTORY_DAYS} days`,
    }),
  },
  { additionalProperties: false, description: "a service's request rate before Tide ran it, replacing any history it had" },
);

/** What the store keeps of a history, without its points. */
export interface ServiceHistorySummary {
  /** Points, and the first and last time (s). */
  readonly points: number;
  readonly fromSeconds: number;
  readonly toSeconds: number;
  /** Bumped by every PUT (the controller rebuilds the autoscaler when it moves). */
  readonly revision: number;
  readonly updatedAt: number;
  readonly updatedBy: string;
}

/**
 * The problems of a history body (none: []). `startSeconds`: the service's start on its
 * autoscaler's clock (null where it is not known yet, as in the CLI before it asks the server).
 */
export function checkHistory(body: unknown, startSeconds: number | null): FieldError[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return [{ path: '(root)', message: 'must be an object: {points: [[t_seconds, value], …]}' }];
  const extra = Object.keys(body).filter((k) => k !== 'points');
  if (extra.length > 0) return extra.slice(0, MAX_LISTED).map((k) => ({ path: k, message: 'unknown field: the body is {points: [[t_seconds, value], …]}' }));
  const points = (body as { points?: unknown }).points;
  if (!Array.isArray(points)) return [{ path: 'points', message: 'required: an array of [t_seconds, value]' }];
  if (points.length > MAX_HISTORY_POINTS) return [{ path: 'points', message: `${points.length} points, at most ${MAX_HISTORY_POINTS}` }];
  if (points.length < 2) return [{ path: 'points', message: `${points.length} point(s): at least 2 (each holds until the next)` }];
  const errors: FieldError[] = [];
  let more = 0;
  const err = (path: string, message: string): void => {
    if (errors.length < MAX_LISTED) errors.push({ path, message });
    else more++;
  };
  let prev: number | null = null;
  for (let i = 0; i < points.length; i++) {
    const p: unknown = points[i];
    if (!Array.isArray(p) || p.length !== 2) {
      err(`points[${i}]`, 'must be [t_seconds, value]');
      prev = null;
      continue;
    }
    const [t, v] = p as unknown[];
    if (typeof t !== 'number' || !Number.isFinite(t) || t <= 0) err(`points[${i}][0]`, `${JSON.stringify(t)?.slice(0, 40)} is not a time in seconds above 0`);
    else if (prev !== null && t <= prev) err(`points[${i}][0]`, `${t} does not come after ${prev}: times must increase`);
    else if (startSeconds !== null && t >= startSeconds) err(`points[${i}][0]`, `${t} is not before the service's start (${startSeconds}): a history ends before the service started`);
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > MAX_HISTORY_RATE) err(`points[${i}][1]`, `${JSON.stringify(v)?.slice(0, 40)} is not a rate from 0 to ${MAX_HISTORY_RATE} requests/s`);
    prev = typeof t === 'number' && Number.isFinite(t) ? t : null;
  }
  if (errors.length === 0) {
    const first = (points[0] as number[])[0] as number;
    const last = (points[points.length - 1] as number[])[0] as number;
    if (last - first > MAX_HISTORY_DAYS * 86_400) err('points', `spans ${((last - first) / 86_400).toFixed(1)} days, at most ${MAX_HISTORY_DAYS}: send the latest ${MAX_HISTORY_DAYS}`);
  }
  if (more > 0) errors.push({ path: 'points', message: `and ${more} more problem(s)` });
  return errors;
}
