/**
 * Building blocks for the fuzzers: hostile values (wrong types, NaN-like strings, huge and
 * negative numbers, unicode, very long strings, deep nesting, prototype keys) and "near-valid"
 * documents: a valid one with a single field replaced, deleted or added.
 */
import fc from 'fast-check';

/** Keys that trip code which indexes plain objects with untrusted names. */
export const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'] as const;

const nestedArray = (depth: number): unknown => {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
};

const nestedObject = (depth: number): unknown => {
  let v: unknown = 'leaf';
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
};

/** An object whose own keys include a prototype key (as JSON.parse or YAML would produce). */
export const withOwnKey = (key: string, value: unknown, base: Record<string, unknown> = {}): Record<string, unknown> => {
  const o: Record<string, unknown> = { ...base };
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
  return o;
};

const constants: unknown[] = [
  null, true, false, 0, -0, -1, 1, 0.5, 1.5, 2 ** 31, 2 ** 32, 2 ** 53 + 2, -(2 ** 53), 1e21, 1e308, -1e308, Number.MAX_VALUE, Number.MIN_VALUE,
  Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY,
  '', ' ', '0', '-1', '1.5', 'NaN', 'nan', 'Infinity', '-Infinity', '.inf', '1e400', '1e3', '0x10', '0b1', '9'.repeat(400), '1'.repeat(30) + 'Pi',
  '500m', '64Gi', '-1Gi', '1.5.5', '\u0000', '\uFFFF', '\uD800', '💥', 'e\u0301', 'ß', '𝟙', 'null', 'true', '__proto__', '../../etc/passwd',
  [], [null], {}, { a: 1 }, [1, 2, 3],
];

/** One hostile value. `big` adds very long strings and deep nesting (slower cases). */
export const nasty = (big = true): fc.Arbitrary<unknown> => {
  const parts: fc.WeightedArbitrary<unknown>[] = [
    { weight: 24, arbitrary: fc.constantFrom(...constants) },
    { weight: 12, arbitrary: fc.anything({ maxDepth: 3, withNullPrototype: true, withObjectString: true, withBoxedValues: true }) },
    { weight: 8, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
    { weight: 8, arbitrary: fc.double() },
    { weight: 8, arbitrary: fc.integer({ min: -(2 ** 31), max: 2 ** 31 }) },
    { weight: 4, arbitrary: fc.constantFrom(...PROTO_KEYS).map((k) => withOwnKey(k, { polluted: true })) },
  ];
  if (big) {
    const huge = fc.oneof(
      fc.integer({ min: 1_000, max: 100_000 }).map((n) => 'x'.repeat(n)),
      fc.integer({ min: 50, max: 1_500 }).map((d) => nestedArray(d)),
      fc.integer({ min: 50, max: 500 }).map((d) => nestedObject(d)),
    );
    parts.push({ weight: 1, arbitrary: huge });
  }
  return fc.oneof(...parts);
};

/** Every path in a JSON-like document (keys and indexes), the root excluded. */
export function pathsOf(doc: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  if (Array.isArray(doc)) doc.forEach((v, i) => { out.push([...prefix, i]); pathsOf(v, [...prefix, i], out); });
  else if (typeof doc === 'object' && doc !== null) {
    for (const k of Object.keys(doc)) {
      out.push([...prefix, k]);
      pathsOf((doc as Record<string, unknown>)[k], [...prefix, k], out);
    }
  }
  return out;
}

export type Mutation =
  | { readonly op: 'set'; readonly path: readonly (string | number)[]; readonly value: unknown }
  | { readonly op: 'delete'; readonly path: readonly (string | number)[] }
  | { readonly op: 'add'; readonly at: readonly (string | number)[]; readonly key: string; readonly value: unknown };

/** A copy of `doc` with one mutation applied (own keys set with defineProperty, so `__proto__` stays a key). */
export function applyMutation(doc: unknown, m: Mutation): unknown {
  const copy = structuredClone(doc) as unknown;
  const target = m.op === 'add' ? m.at : m.path.slice(0, -1);
  let node: unknown = copy;
  for (const p of target) node = (node as Record<string | number, unknown>)[p];
  if (typeof node !== 'object' || node === null) return copy;
  const key = m.op === 'add' ? m.key : (m.path[m.path.length - 1] as string | number);
  if (m.op === 'delete') {
    if (Array.isArray(node) && typeof key === 'number') node.splice(key, 1);
    else delete (node as Record<string, unknown>)[key];
  } else Object.defineProperty(node, key, { value: m.value, enumerable: true, writable: true, configurable: true });
  return copy;
}

/** `base` with one field replaced by a hostile value, deleted, or a field added (a prototype key or an unknown one). */
export function nearValid(base: fc.Arbitrary<unknown>, big = true): fc.Arbitrary<{ base: unknown; mutation: Mutation; doc: unknown }> {
  return base.chain((b) => {
    const paths = pathsOf(b);
    const containers = [[] as (string | number)[], ...paths.filter((p) => {
      let v: unknown = b;
      for (const k of p) v = (v as Record<string | number, unknown>)[k];
      return typeof v === 'object' && v !== null && !Array.isArray(v);
    })];
    const mutation: fc.Arbitrary<Mutation> = fc.oneof(
      { weight: 6, arbitrary: fc.record({ op: fc.constant('set' as const), path: fc.constantFrom(...(paths.length ? paths : [['x']])), value: nasty(big) }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), path: fc.constantFrom(...(paths.length ? paths : [['x']])) }) },
      { weight: 2, arbitrary: fc.record({ op: fc.constant('add' as const), at: fc.constantFrom(...containers), key: fc.oneof(fc.constantFrom(...PROTO_KEYS), fc.string({ maxLength: 12 })), value: nasty(false) }) },
    );
    return mutation.map((m) => ({ base: b, mutation: m, doc: applyMutation(b, m) }));
  });
}

const name = fc.stringMatching(/^[a-z0-9][-a-z0-9_.]{0,20}$/);

/** Valid job spec documents (as a user would write them). */
export const validSpecDoc: fc.Arbitrary<Record<string, unknown>> = fc
  .record(
    {
      name,
      queue: fc.constantFrom('default', 'research'),
      priority: fc.integer({ min: -1_000_000, max: 1_000_000 }),
      kind: fc.constantFrom('training', 'batch'),
      preemptible: fc.boolean(),
      checkpoint: fc.boolean(),
      gracePeriodSeconds: fc.integer({ min: 0, max: 3600 }),
      clientKey: fc.string({ minLength: 1, maxLength: 30 }),
      tasks: fc.array(
        fc.record(
          {
            replicas: fc.integer({ min: 1, max: 4 }),
            gpus: fc.oneof(fc.integer({ min: 0, max: 8 }), fc.constantFrom(0.5, 0.25, 0.125, '0.5')),
            gpuModels: fc.array(fc.constantFrom('H100', 'A100', 'T4'), { maxLength: 2 }),
            cpu: fc.oneof(fc.integer({ min: 0, max: 64 }), fc.constantFrom('500m', '2', 2.5)),
            memory: fc.oneof(fc.constantFrom('64Gi', '512Mi', '1G', '100M'), fc.integer({ min: 0, max: 2 ** 40 })),
            command: fc.oneof(fc.string({ minLength: 1, maxLength: 30 }).filter((s) => s.trim() !== ''), fc.array(fc.string({ maxLength: 10 }), { minLength: 1, maxLength: 3 })),
            env: fc.dictionary(fc.stringMatching(/^[A-Z][A-Z0-9_]{0,8}$/), fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.boolean()), { maxKeys: 3 }),
          },
          { requiredKeys: ['command'] },
        ),
        { minLength: 1, maxLength: 3 },
      ),
    },
    { requiredKeys: ['name', 'tasks'] },
  )
  .map((doc) => ({ ...doc, tasks: doc.tasks.map((t, i) => ({ name: `g${i}`, ...t })) }));

/** Job spec inputs: mostly near-valid, some valid, some arbitrary structures. */
export const specInput = (big = true): fc.Arbitrary<unknown> =>
  fc.oneof(
    { weight: 6, arbitrary: nearValid(validSpecDoc, big).map((x) => x.doc) },
    { weight: 2, arbitrary: validSpecDoc },
    { weight: 1, arbitrary: fc.anything({ maxDepth: 4 }) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
  );

/** Text with a few random edits (insertions, deletions, duplicated slices): broken syntax. */
export const textMutation = (text: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  text.chain((t) =>
    fc
      .array(
        fc.record({ at: fc.nat(Math.max(0, t.length)), del: fc.nat(4), ins: fc.oneof(fc.constantFrom(':', '"', "'", ',', '\n', '  ', '- ', '{', '[', '&a ', '*a', '!!binary ', '\t', '#', '\r\n', '\u0000'), fc.string({ maxLength: 4 })) }),
        { minLength: 1, maxLength: 4 },
      )
      .map((edits) => edits.reduce((s, e) => s.slice(0, e.at) + e.ins + s.slice(e.at + e.del), t)),
  );
