/**
 * Strict reading of query strings and path parameters: every value is checked and every
 * problem is named by its parameter, so a typo (`?state=bogus`, `?limt=5`) is a 400 and never
 * an empty or unfiltered 200. Which keys a route accepts is its schema's `querystring`
 * (see `unknownQueryKeys`), so /openapi.json documents exactly what is accepted.
 */
import { ApiError } from '../api/errors.ts';
import type { FieldError } from '../api/spec.ts';

/** Most items one page of a list holds (`limit` is 1..MAX_PAGE). */
export const MAX_PAGE = 1000;

const JOB_ID = /^[1-9]\d{0,14}$/;
const NAME = /^[a-zA-Z0-9][-a-zA-Z0-9_.]{0,62}$/;
const show = (v: string): string => JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);

/** Keys of `query` the route does not declare, or a repeated key; null when all is well. */
export function queryProblems(query: unknown, declared: readonly string[]): FieldError[] {
  const out: FieldError[] = [];
  if (typeof query !== 'object' || query === null) return out;
  for (const [k, v] of Object.entries(query)) {
    if (!declared.includes(k)) out.push({ path: k, message: `unknown query parameter (${declared.length ? `accepted: ${declared.join(', ')}` : 'this route takes none'})` });
    else if (typeof v !== 'string') out.push({ path: k, message: 'given more than once' });
  }
  return out;
}

/** Throws one 400 naming every problem, or returns. */
export function refuse(problems: readonly FieldError[]): void {
  if (problems.length > 0) throw new ApiError('invalid_request', problems.map((p) => `${p.path}: ${p.message}`).join('; '), problems);
}

/** Reads one route's query; collects problems, then `done()` throws them all at once. */
export class QueryReader {
  readonly problems: FieldError[] = [];
  private readonly q: Record<string, unknown>;

  constructor(query: unknown) {
    this.q = typeof query === 'object' && query !== null ? (query as Record<string, unknown>) : {};
  }

  string(key: string): string | undefined {
    const v = this.q[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v === '') {
      this.problems.push({ path: key, message: typeof v === 'string' ? 'must not be empty' : 'given more than once' });
      return undefined;
    }
    return v;
  }

  /** An integer in [min, max]. */
  int(key: string, min: number, max: number): number | undefined {
    const v = this.string(key);
    if (v === undefined) return undefined;
    const n = /^-?\d{1,16}$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      this.problems.push({ path: key, message: `must be an integer from ${min} to ${max}, got ${show(v)}` });
      return undefined;
    }
    return n;
  }

  /** An id (a positive integer): a job or event id, or a paging cursor. */
  id(key: string, what = 'an id'): number | undefined {
    const v = this.string(key);
    if (v === undefined) return undefined;
    if (!JOB_ID.test(v)) {
      this.problems.push({ path: key, message: `must be ${what} (a positive integer), got ${show(v)}` });
      return undefined;
    }
    return Number(v);
  }

  oneOf<T extends string>(key: string, allowed: readonly T[]): T | undefined {
    const v = this.string(key);
    if (v === undefined) return undefined;
    if (!(allowed as readonly string[]).includes(v)) {
      this.problems.push({ path: key, message: `must be one of ${allowed.join(', ')}, got ${show(v)}` });
      return undefined;
    }
    return v as T;
  }

  /** A comma-separated list of allowed values (at least one). */
  listOf<T extends string>(key: string, allowed: readonly T[]): T[] | undefined {
    const v = this.string(key);
    if (v === undefined) return undefined;
    const items = v.split(',').map((s) => s.trim());
    const bad = items.filter((s) => !(allowed as readonly string[]).includes(s));
    if (bad.length > 0) {
      this.problems.push({ path: key, message: `unknown ${bad.length > 1 ? 'values' : 'value'} ${bad.map(show).join(', ')}: valid ones are ${allowed.join(', ')}` });
      return undefined;
    }
    return items as T[];
  }

  done(): void {
    refuse(this.problems);
  }
}

/** A job id (or, as `what` says, an array's) from a path parameter, or a 400 naming it. */
export function jobIdParam(params: unknown, what = 'a job id'): string {
  const id = (params as { id?: unknown } | null)?.id;
  if (typeof id !== 'string' || !JOB_ID.test(id)) {
    refuse([{ path: 'id', message: `must be ${what} (a positive integer), got ${show(String(id ?? ''))}` }]);
  }
  return id as string;
}

/** A node or queue name from a path parameter (1-63 letters, digits, -, _ or .), or a 400 naming it. */
export function nameParam(params: unknown, key: string, what: string): string {
  const v = (params as Record<string, unknown> | null)?.[key];
  if (typeof v !== 'string' || !NAME.test(v)) refuse([{ path: key, message: `must be ${what} (1-63 letters, digits, -, _ or ., starting with a letter or digit), got ${show(String(v ?? ''))}` }]);
  return v as string;
}

/**
 * One page of a list: asked for `limit + 1` rows, it keeps `limit` and gives the cursor of the
 * last one kept when more exist (null at the end).
 */
export function page<T>(rows: readonly T[], limit: number, idOf: (row: T) => string | number): { items: T[]; next: string | null } {
  if (rows.length <= limit) return { items: [...rows], next: null };
  const items = rows.slice(0, limit);
  return { items, next: String(idOf(items[items.length - 1] as T)) };
}
