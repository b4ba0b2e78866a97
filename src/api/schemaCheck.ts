/**
 * Runs a JSON Schema (written with TypeBox in api/*Schema.ts) through Ajv, compiled once per
 * schema, and turns Ajv's errors into Tide's `FieldError`s: one per bad field, by the path users
 * write (`tasks[0].gpus`, `env.BAD-NAME`, `(root)`), with the message the schema gives that
 * field in its `x-message` annotation (`must be a number of GPUs from 0 to 64, …`), never Ajv's
 * raw `/tasks/0/gpus must be number`.
 *
 * `x-message` is a string, or a map from an Ajv keyword to a message with `default` for the rest;
 * `{n}` in a message is replaced by the size of the value (items, keys or characters), so
 * `{maxProperties: '{n} variables, at most 256'}` reads `300 variables, at most 256`. A value that
 * matches no branch of an `anyOf` gets the message of the field that holds the `anyOf`, not one per
 * branch. OpenAPI allows `x-` keys in a schema, so the messages are published with it.
 *
 * This module loads Ajv: import it only where something is validated (the CLI's `tide jobs`
 * never does).
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { FieldError } from './spec.ts';

export const MESSAGE = 'x-message';

/** Ajv as Tide uses it: every error, the data and schema with each (for messages), strict schemas. */
export function newAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictRequired: false, allowUnionTypes: true });
  ajv.addKeyword({ keyword: MESSAGE, schemaType: ['string', 'object'] });
  // OpenAPI annotations that may appear in schemas the API publishes.
  ajv.addKeyword({ keyword: 'example' });
  return ajv;
}

let shared: Ajv | null = null;
const compiled = new WeakMap<object, ValidateFunction>();

/** The compiled validator of a schema (compiled on first use, then kept). */
export function validatorOf(schema: object): ValidateFunction {
  let v = compiled.get(schema);
  if (!v) {
    shared ??= newAjv();
    v = shared.compile(schema);
    compiled.set(schema, v);
  }
  return v;
}

/** Every bad field of `value` under `schema`, in the order Ajv finds them (none: []). */
export function checkSchema(schema: object, value: unknown): FieldError[] {
  const validate = validatorOf(schema);
  return validate(value) ? [] : fieldErrors(validate.errors ?? [], value);
}

type Messages = string | Readonly<Record<string, string>>;

/**
 * Maps Ajv errors (from a validator compiled with `verbose`) to one FieldError per path. A value
 * that fails an anyOf is reported at the anyOf with its field's message, unless exactly one
 * branch has the value's type (a `{step}` object where an object or null is wanted): then that
 * branch's errors are reported, so the deeper field is named (`progress.totalSteps`).
 */
export function fieldErrors(errors: readonly ErrorObject[], root: unknown): FieldError[] {
  const dropped = new Set<ErrorObject>();
  /** Errors of a chosen branch at the anyOf's own path take the message of the field holding the anyOf. */
  const holder = new Map<ErrorObject, ErrorObject>();
  for (const a of errors) {
    if (a.keyword !== 'anyOf' && a.keyword !== 'oneOf') continue;
    const inside = errors.filter((e) => e.schemaPath.startsWith(`${a.schemaPath}/`) && (e.instancePath === a.instancePath || e.instancePath.startsWith(`${a.instancePath}/`)));
    const branches = new Map<string, ErrorObject[]>();
    for (const e of inside) {
      const b = e.schemaPath.slice(a.schemaPath.length + 1).split('/')[0] ?? '';
      branches.set(b, [...(branches.get(b) ?? []), e]);
    }
    const typed = [...branches.keys()].filter((b) => !typeFails(inside, `${a.schemaPath}/${b}`, a.instancePath)).map((b) => branches.get(b) ?? []);
    const chosen = typed.length === 1 ? typed[0] : undefined;
    if (chosen) {
      dropped.add(a);
      for (const e of inside) if (!chosen.includes(e)) dropped.add(e);
      for (const e of chosen) if (e.instancePath === a.instancePath) holder.set(e, a);
    } else for (const e of inside) dropped.add(e);
  }
  // A list or map over its bound is named once, not with each of its items (there may be 100,000).
  const over = errors.filter((e) => e.keyword === 'maxItems' || e.keyword === 'maxProperties').map((e) => `${e.instancePath}/`);
  const out = new Map<string, string>();
  for (const e of errors) {
    if (dropped.has(e) || over.some((p) => e.instancePath.startsWith(p))) continue;
    if ((e as { propertyName?: string }).propertyName !== undefined) continue; // reported by its propertyNames error
    const parent = (e.parentSchema ?? {}) as Record<string, unknown>;
    let pointer = e.instancePath;
    let message: string;
    if (e.keyword === 'additionalProperties') {
      pointer = `${pointer}/${escape((e.params as { additionalProperty: string }).additionalProperty)}`;
      message = 'unknown field';
    } else if (e.keyword === 'required') {
      const missing = (e.params as { missingProperty: string }).missingProperty;
      pointer = `${pointer}/${escape(missing)}`;
      const property = (parent['properties'] as Record<string, Record<string, unknown>> | undefined)?.[missing];
      message = pick(property?.[MESSAGE] as Messages | undefined, 'required', undefined) ?? 'required';
    } else if (e.keyword === 'propertyNames') {
      pointer = `${pointer}/${escape((e.params as { propertyName: string }).propertyName)}`;
      const names = parent['propertyNames'] as Record<string, unknown> | undefined;
      message = pick(names?.[MESSAGE] as Messages | undefined, 'pattern', undefined) ?? 'not a valid name';
    } else {
      const field = ((holder.get(e) ?? e).parentSchema ?? {}) as Record<string, unknown>;
      message = pick(field[MESSAGE] as Messages | undefined, e.keyword, e.data) ?? (e.message ?? 'is invalid');
    }
    const path = toPath(pointer, root);
    if (!out.has(path)) out.set(path, message);
  }
  return [...out].map(([path, message]) => ({ path, message }));
}


/** Whether the value at `instancePath` has none of the types the schema at `schemaPath` allows (through nested anyOfs too). */
function typeFails(errors: readonly ErrorObject[], schemaPath: string, instancePath: string): boolean {
  const here = errors.filter((e) => e.instancePath === instancePath);
  if (here.some((e) => e.keyword === 'type' && e.schemaPath === `${schemaPath}/type`)) return true;
  if (!here.some((e) => (e.keyword === 'anyOf' || e.keyword === 'oneOf') && e.schemaPath === `${schemaPath}/${e.keyword}`)) return false;
  const inner = new Set(here.filter((e) => /\/(anyOf|oneOf)\/\d+\//.test(e.schemaPath.slice(schemaPath.length))).map((e) => e.schemaPath.slice(schemaPath.length + 1).split('/').slice(0, 2).join('/')));
  return inner.size > 0 && [...inner].every((b) => typeFails(errors, `${schemaPath}/${b}`, instancePath));
}

function pick(m: Messages | undefined, keyword: string, data: unknown): string | undefined {
  const text = typeof m === 'string' || m === undefined ? m : (m[keyword] ?? m['default']);
  if (text === undefined || !text.includes('{n}')) return text;
  const n = typeof data === 'string' || Array.isArray(data) ? data.length : typeof data === 'object' && data !== null ? Object.keys(data).length : 0;
  return text.replaceAll('{n}', String(n));
}

const escape = (key: string): string => key.replaceAll('~', '~0').replaceAll('/', '~1');

/** `/tasks/0/env/A` → `tasks[0].env.A` (array indexes in brackets), '' → `(root)`. */
export function toPath(pointer: string, root: unknown): string {
  if (pointer === '') return '(root)';
  let path = '';
  let at: unknown = root;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (Array.isArray(at)) {
      path += `[${key}]`;
      at = at[Number(key)];
    } else {
      // A key that is not a plain name is quoted, so "", " x" or "a b" stay readable.
      const shown = /^[A-Za-z_][\w-]*$/.test(key) ? key : JSON.stringify(key);
      path += path === '' ? shown : `.${shown}`;
      at = typeof at === 'object' && at !== null && Object.hasOwn(at, key) ? (at as Record<string, unknown>)[key] : undefined;
    }
  }
  return path;
}

/**
 * Errors in the order a reader meets the fields: by the schema's property order (unknown fields
 * first, as they are often typos of the others), list items by index, map entries in the order
 * of the data. Ties keep their order. `sortAs` (by error) places a check that is about a whole
 * object after the object's own fields (`command and env take … bytes together`).
 */
export function inSchemaOrder<E extends FieldError>(errors: readonly E[], schema: object, root: unknown, sortAs?: ReadonlyMap<E, string>): E[] {
  const keyed = errors.map((e, i) => ({ e, i, key: rankOf(sortAs?.get(e) ?? e.path, schema, root) }));
  keyed.sort((a, b) => compareRanks(a.key, b.key) || a.i - b.i);
  return keyed.map((k) => k.e);
}

const END = Number.MAX_SAFE_INTEGER;

function rankOf(path: string, schema: object, root: unknown): number[] {
  if (path === '(root)') return [-2];
  const ranks: number[] = [];
  let s: Record<string, unknown> | undefined = schema as Record<string, unknown>;
  let at: unknown = root;
  for (const m of path.matchAll(/\[(\d+)\]|([^.[\]]+)/g)) {
    s = objectBranch(s);
    if (m[1] !== undefined) {
      const i = Number(m[1]);
      ranks.push(i);
      s = s?.['items'] as Record<string, unknown> | undefined;
      at = Array.isArray(at) ? at[i] : undefined;
      continue;
    }
    const key = m[2] ?? '';
    const props = s?.['properties'] as Record<string, unknown> | undefined;
    const obj = typeof at === 'object' && at !== null && !Array.isArray(at) ? (at as Record<string, unknown>) : null;
    if (key === '~end') ranks.push(END);
    else if (props) ranks.push(Object.hasOwn(props, key) ? Object.keys(props).indexOf(key) : -1);
    else ranks.push(obj ? Object.keys(obj).indexOf(key) : 0);
    s = (props?.[key] ?? (typeof s?.['additionalProperties'] === 'object' ? s['additionalProperties'] : undefined)) as Record<string, unknown> | undefined;
    at = obj && Object.hasOwn(obj, key) ? obj[key] : undefined;
  }
  return ranks;
}

/** The branch of an anyOf that has fields or items (a nullable object's object). */
function objectBranch(s: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  const branches = s?.['anyOf'] as Record<string, unknown>[] | undefined;
  return branches?.find((b) => b['properties'] !== undefined || b['items'] !== undefined) ?? s;
}

function compareRanks(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return (a[i] ?? 0) - (b[i] ?? 0);
  return a.length - b.length;
}
