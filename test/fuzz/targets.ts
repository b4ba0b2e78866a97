/**
 * The fuzz targets, shared by test/fuzz/*.test.ts (small, fixed seed) and bench/fuzz.ts (10⁵
 * cases, any seed). A target is an arbitrary, a `check` that throws when one case breaks the
 * property, and an `after` that checks what must still hold once a run is over (the server is
 * healthy, nothing accepted was lost).
 */
import { deepEqual as looseDeepEqual } from 'node:assert';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { parseJobSpec, type JobSpec } from '../../src/api/spec.ts';
import { parseConfig } from '../../src/server/config.ts';
import { readClusterFile, readWorkloadFile } from '../../src/sim/scenarioFiles.ts';
import { readOpenbNodes, readOpenbPods } from '../../src/traces/openb.ts';
import { UserError } from '../../src/util/errors.ts';
import { nasty, nearValid, PROTO_KEYS, specInput, textMutation, validSpecDoc } from './arbitraries.ts';
import { ADMIN, AGENT, ALICE, assertErrorBody, BOB, fuzzServer, type FuzzServer } from './server.ts';

export interface FuzzTarget<T = any> {
  readonly name: string;
  readonly arbitrary: fc.Arbitrary<T>;
  /** Throws when this case breaks the property. */
  check(input: T): void | Promise<void>;
  /** Cases change a server's state: a failure is reported as found (shrinking would replay on changed state). */
  readonly stateful?: boolean;
  /** Throws when the state after a run is wrong (server unhealthy, accepted data lost). */
  after?(): Promise<void>;
  close?(): Promise<void>;
}

/** A YAML rendering of a document; JSON (also YAML) when the yaml library cannot render it. */
const yamlOf = (doc: unknown): string => {
  try {
    return (toYaml(doc, { aliasDuplicateObjects: false }) as string | undefined) ?? ''; // undefined renders as nothing
  } catch {
    return JSON.stringify(doc) ?? 'null';
  }
};

// ---------------------------------------------------------------------------------------------
// 1. Job specs

const TOP_FIELDS = new Set(['(root)', 'name', 'queue', 'priority', 'kind', 'preemptible', 'checkpoint', 'array', 'tasks', 'gracePeriodSeconds', 'clientKey']);

/** The spec document that parses back to `s` (quantities in their smallest unit). */
export function specToDoc(s: JobSpec): Record<string, unknown> {
  return {
    name: s.name,
    queue: s.queue,
    priority: s.priority,
    kind: s.kind,
    preemptible: s.preemptible,
    checkpoint: s.checkpoint,
    array: s.array,
    gracePeriodSeconds: s.gracePeriodSeconds,
    tasks: s.groups.map((g) => ({
      name: g.name,
      replicas: g.replicas,
      gpus: g.gpuCount === 1 && g.gpuMilli < 1000 ? g.gpuMilli / 1000 : g.gpuCount,
      gpuModels: [...g.gpuModels],
      cpu: `${g.cpuMilli}m`,
      memory: `${g.memoryMib}Mi`,
      command: [...g.command],
      env: { ...g.env },
    })),
  };
}

const allNumbersFinite = (v: unknown, at = 'spec'): void => {
  if (typeof v === 'number') assert.ok(Number.isFinite(v) && Number.isSafeInteger(Math.round(v)), `${at}: ${v} is not a finite, safe number`);
  else if (Array.isArray(v)) v.forEach((x, i) => allNumbersFinite(x, `${at}[${i}]`));
  else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) allNumbersFinite(x, `${at}.${k}`);
};

/** The spec property: ok (and it round-trips, losing nothing) or errors that each name a field path. */
export function checkSpec(input: unknown): JobSpec | null {
  const r = parseJobSpec(input);
  if (r.ok) {
    allNumbersFinite(r.spec);
    const stored = JSON.parse(JSON.stringify(r.spec)) as JobSpec;
    looseDeepEqual(stored, r.spec, 'the spec changes when stored as JSON'); // loose: -0 may become 0
    const again = parseJobSpec(specToDoc(r.spec));
    assert.ok(again.ok, `an accepted spec does not parse back: ${JSON.stringify(!again.ok && again.errors)}`);
    assert.deepEqual(again.spec, r.spec, 'the spec does not round-trip');
    const tasks = (input as { tasks: { env?: unknown }[] }).tasks;
    tasks.forEach((t, i) => {
      const env = t.env;
      if (typeof env === 'object' && env !== null) for (const k of Object.keys(env)) assert.ok(Object.hasOwn(r.spec.groups[i]?.env ?? {}, k), `tasks[${i}].env.${k} was accepted but dropped`);
    });
    return r.spec;
  }
  assert.ok(r.errors.length > 0, 'refused without a reason');
  for (const e of r.errors) {
    assert.equal(typeof e.path, 'string');
    assert.equal(typeof e.message, 'string');
    assert.ok(e.message.length > 0, `${e.path}: empty message`);
    // A key that is not a plain name is shown quoted in a path (schemaCheck.ts toPath).
    const shown = (k: string): string => (/^[A-Za-z_][\w-]*$/.test(k) ? k : JSON.stringify(k));
    const fields = [...TOP_FIELDS, ...(typeof input === 'object' && input !== null ? Object.keys(input).map(shown) : [])];
    const known = fields.some((k) => e.path === k || e.path.startsWith(`${k}.`) || e.path.startsWith(`${k}[`));
    assert.ok(known, `error path "${e.path}" names no field of the input`);
  }
  return null;
}

export const specTarget = (): FuzzTarget => ({ name: 'spec (parseJobSpec)', arbitrary: specInput(), check: (doc) => void checkSpec(doc) });

/** Submissions over HTTP, JSON or YAML, well-formed or not; accepted jobs must read back with the same spec. */
export async function specHttpTarget(): Promise<FuzzTarget> {
  const s = await fuzzServer();
  const body = fc.oneof(
    { weight: 4, arbitrary: specInput(false).map((doc) => ({ doc, text: JSON.stringify(doc) ?? 'null', type: 'application/json' })) },
    { weight: 4, arbitrary: specInput(false).map((doc) => ({ doc, text: yamlOf(doc), type: 'application/yaml' })) },
    { weight: 2, arbitrary: textMutation(validSpecDoc.map(yamlOf)).map((text) => ({ doc: undefined, text, type: 'application/yaml' })) },
    { weight: 1, arbitrary: textMutation(validSpecDoc.map((d) => JSON.stringify(d))).map((text) => ({ doc: undefined, text, type: 'application/json' })) },
  );
  return {
    name: 'spec over HTTP (JSON, YAML)',
    stateful: true,
    arbitrary: fc.tuple(body, fc.constantFrom(ALICE, BOB)),
    async check([b, token]) {
      const r = await s.call('POST', '/v1/jobs', token, b.text, b.type);
      assertErrorBody(r, `POST /v1/jobs ${b.type} ${b.text.slice(0, 200)}`);
      if (r.status === 400 && r.json.error.code === 'invalid_spec') assert.ok(r.json.error.fields?.length > 0, 'invalid_spec without fields');
      if (r.status === 201 || r.status === 200) {
        // An array is answered as one; its elements are listed by it.
        const jobs = r.json.array ? await arrayElements(s, r.json.array.id, token) : r.json.jobs;
        if (r.json.array) assert.equal(jobs.length, r.json.array.size, "an array's elements listed are its size");
        for (const job of jobs) {
          const back = await s.call('GET', `/v1/jobs/${job.id}`, token);
          assert.equal(back.status, 200);
          assert.deepEqual(back.json.job.spec, job.spec, 'the stored spec differs from the one returned at submission');
          if (b.doc !== undefined && r.status === 201) {
            const parsed = parseJobSpec(b.type === 'application/json' ? JSON.parse(b.text) : parseYaml(b.text));
            assert.ok(parsed.ok, 'the server accepted what parseJobSpec refuses');
            // Loose: JSON has no -0 (priority: -0 comes back as 0).
            if (parsed.spec.array === 1) looseDeepEqual(job.spec, parsed.spec, 'the server stored another spec than the one parsed');
          }
        }
      }
    },
    after: () => healthy(s),
    close: () => s.close(),
  };
}

/** An array's elements, every page of them. */
async function arrayElements(s: { call: (method: string, path: string, token: string) => Promise<{ json: any }> }, id: string, token: string): Promise<any[]> {
  const out: any[] = [];
  for (let next: string | null = null; ; ) {
    const page: any = (await s.call('GET', `/v1/jobs?array=${id}&limit=1000${next === null ? '' : `&after=${next}`}`, token)).json;
    out.push(...page.jobs);
    if ((next = page.next) === null) return out;
  }
}

// ---------------------------------------------------------------------------------------------
// 2. Cluster configs and simulator inputs

const tokenPool = ['token-aaaaaaaa', 'token-bbbbbbbb', 'token-cccccccc', 'token-dddddddd', 'short'];
const validConfigDoc = fc.record(
  {
    adminToken: fc.constantFrom(...tokenPool),
    agentToken: fc.constantFrom(...tokenPool),
    tenants: fc.array(fc.record({ name: fc.stringMatching(/^[a-z0-9][-a-z0-9_]{0,10}$/), tokens: fc.array(fc.constantFrom(...tokenPool), { maxLength: 2 }) }), { maxLength: 3 }),
    queues: fc.array(fc.record({ name: fc.stringMatching(/^[a-z0-9][-a-z0-9_.]{0,10}$/), gpuQuota: fc.option(fc.nat(64)), borrowingLimit: fc.option(fc.nat(64)) }), { maxLength: 3 }),
  },
  { requiredKeys: [] },
);

/** parseConfig: a config in which every token names one principal, or a UserError naming the file. */
export function configTarget(): FuzzTarget<string> {
  const text = fc.oneof(
    { weight: 5, arbitrary: nearValid(validConfigDoc, false).map((x) => yamlOf(x.doc)) },
    { weight: 1, arbitrary: nearValid(validConfigDoc, true).map((x) => JSON.stringify(x.doc) ?? '') },
    { weight: 2, arbitrary: validConfigDoc.map(yamlOf) },
    { weight: 2, arbitrary: textMutation(validConfigDoc.map(yamlOf)) },
    { weight: 1, arbitrary: fc.anything({ maxDepth: 3 }).map(yamlOf) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 80 }) },
  );
  return {
    name: 'cluster config (parseConfig)',
    arbitrary: text,
    check(t) {
      let c;
      try {
        c = parseConfig(t, 'cluster.yaml');
      } catch (e) {
        assert.ok(e instanceof UserError, `not a UserError: ${(e as Error)?.stack}`);
        assert.match(e.message, /^cluster\.yaml: \S/);
        return;
      }
      const owners = new Map<string, string>();
      const own = (token: string | null, who: string): void => {
        if (token === null) return;
        assert.ok(typeof token === 'string' && token.length >= 8, `${who}: bad token accepted`);
        const prev = owners.get(token);
        assert.ok(prev === undefined || prev === who, `one token accepted for ${prev} and ${who}`);
        owners.set(token, who);
      };
      own(c.adminToken, 'admin');
      own(c.agentToken, 'agent');
      for (const tenant of c.tenants) {
        assert.match(tenant.name, /^[a-z0-9][-a-z0-9_]{0,62}$/);
        for (const tok of tenant.tokens) own(tok, `tenant ${tenant.name}`);
      }
      for (const q of c.queues) for (const v of [q.gpuQuota, q.borrowingLimit]) assert.ok(v === null || (Number.isSafeInteger(v) && v >= 0), `quota ${v} accepted`);
    },
  };
}

const badCells = ['', '-1', '-0', '1e400', '99999999999', '4294967296', '1e21', '1.5', '1.000', 'NaN', 'Infinity', '0x10', ' 7 ', '+5', '"', '"a,b"', '__proto__', 'constructor', 'toString', '\u0000', '💥', 'true', 'x'.repeat(300)];
const cell = (valid: fc.Arbitrary<string>): fc.Arbitrary<string> => fc.oneof({ weight: 5, arbitrary: valid }, { weight: 1, arbitrary: fc.constantFrom(...badCells) }, { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) });
const int = (max: number): fc.Arbitrary<string> => fc.nat(max).map(String);

/** A CSV file: header (sometimes shuffled, cut or doubled), rows of mostly valid cells, odd line endings. */
const csvText = (columns: Record<string, fc.Arbitrary<string>>): fc.Arbitrary<string> => {
  const names = Object.keys(columns);
  return fc
    .record({
      header: fc.oneof({ weight: 5, arbitrary: fc.constant(names) }, { weight: 1, arbitrary: fc.shuffledSubarray(names) }, { weight: 1, arbitrary: fc.constant([...names, names[0] as string]) }),
      rows: fc.array(fc.tuple(...names.map((n) => cell(columns[n] as fc.Arbitrary<string>))), { maxLength: 6 }),
      eol: fc.constantFrom('\n', '\r\n', '\r'),
      quote: fc.boolean(),
      bom: fc.boolean(),
    })
    .map(({ header, rows, eol, quote, bom }) => {
      const line = (cells: readonly string[]) => cells.map((c) => (quote && !c.includes('"') ? `"${c}"` : c)).join(',');
      return (bom ? '\uFEFF' : '') + [line(header), ...rows.map((r) => line(r.slice(0, header.length)))].join(eol) + eol;
    });
};

const model = fc.constantFrom('V100', 'K80', 'A100', 'T4');
const clusterDoc = fc.record({
  nodes: fc.array(fc.record({ name: fc.stringMatching(/^[a-z]{1,6}$/), count: fc.integer({ min: 1, max: 4 }), gpus: fc.nat(8), model, cpuMilli: fc.nat(64000), memoryMib: fc.nat(1 << 20) }, { requiredKeys: ['name', 'count', 'gpus'] }), { minLength: 1, maxLength: 3 }),
  queues: fc.array(fc.record({ name: fc.stringMatching(/^[a-z]{1,6}$/), cohort: fc.constant('all'), weight: fc.nat(4), nominalQuota: fc.dictionary(model, fc.nat(16), { minKeys: 1, maxKeys: 2 }), borrowingLimit: fc.dictionary(model, fc.nat(16), { maxKeys: 2 }) }, { requiredKeys: ['name', 'nominalQuota'] }), { maxLength: 2 }),
  tenants: fc.array(fc.record({ name: fc.stringMatching(/^[a-z]{1,6}$/), weight: fc.nat(4) }), { maxLength: 2 }),
  outages: fc.array(fc.record({ node: fc.constant('a-0'), at: fc.nat(1000), repairedAt: fc.integer({ min: 1000, max: 5000 }) }), { maxLength: 1 }),
});
const workloadDoc = fc.record({
  jobs: fc.array(
    fc.record(
      {
        id: fc.stringMatching(/^j[0-9]{1,4}$/),
        submit: fc.nat(10_000),
        gpus: fc.nat(16),
        gpusPerTask: fc.integer({ min: 1, max: 8 }),
        tenant: fc.constantFrom('a', 'b'),
        priorityClass: fc.constantFrom('normal', 'high', 'low'),
        totalSteps: fc.integer({ min: 1, max: 1e6 }),
        throughput: fc.dictionary(model, fc.double({ min: 0.1, max: 10, noNaN: true }), { minKeys: 1, maxKeys: 3 }),
        timeLimitSeconds: fc.nat(1e5),
        preemptible: fc.boolean(),
      },
      { requiredKeys: ['id', 'gpus', 'totalSteps', 'throughput'] },
    ),
    { minLength: 1, maxLength: 4 },
  ),
});

type TraceCase = { kind: 'nodes' | 'pods' | 'workload.csv' | 'workload.yaml' | 'cluster.yaml'; text: string };

/** Trace rows and `tide sim` files: a result with sane numbers, or a UserError naming the file (and line). */
export function tracesTarget(): FuzzTarget<TraceCase> & { close(): Promise<void> } {
  const dir = mkdtempSync(join(tmpdir(), 'tide-fuzz-traces-'));
  const yamlDoc = (doc: fc.Arbitrary<unknown>) => fc.oneof({ weight: 4, arbitrary: nearValid(doc, false).map((x) => yamlOf(x.doc)) }, { weight: 1, arbitrary: doc.map(yamlOf) }, { weight: 2, arbitrary: textMutation(doc.map(yamlOf)) });
  const arbitrary: fc.Arbitrary<TraceCase> = fc.oneof(
    csvText({ sn: fc.stringMatching(/^n[0-9]{1,3}$/), cpu_milli: int(96000), memory_mib: int(1 << 20), gpu: int(8), model }).map((text) => ({ kind: 'nodes' as const, text })),
    csvText({ name: fc.stringMatching(/^p[0-9]{1,3}$/), cpu_milli: int(96000), memory_mib: int(1 << 20), num_gpu: int(8), gpu_milli: fc.constantFrom('0', '500', '1000'), gpu_spec: fc.constantFrom('', 'V100', 'V100|K80') }).map((text) => ({ kind: 'pods' as const, text })),
    csvText({ id: fc.stringMatching(/^j[0-9]{1,3}$/), submit: int(1000), gpus: int(16), total_steps: int(1e6), throughput_V100: fc.constantFrom('1', '2.5', '0'), gpus_per_task: fc.constantFrom('', '1', '4'), priority_class: fc.constantFrom('', 'normal', 'high'), preemptible: fc.constantFrom('', 'true', 'false') }).map((text) => ({ kind: 'workload.csv' as const, text })),
    yamlDoc(workloadDoc).map((text) => ({ kind: 'workload.yaml' as const, text })),
    yamlDoc(clusterDoc).map((text) => ({ kind: 'cluster.yaml' as const, text })),
  );
  return {
    name: 'trace rows and sim files',
    arbitrary,
    check({ kind, text }) {
      const file = join(dir, kind === 'nodes' || kind === 'pods' ? `${kind}.csv` : kind);
      writeFileSync(file, text);
      let result: unknown;
      try {
        if (kind === 'nodes') result = readOpenbNodes(file);
        else if (kind === 'pods') result = readOpenbPods(file, new Set(['V100', 'K80']));
        else if (kind === 'cluster.yaml') result = readClusterFile(file);
        else result = readWorkloadFile(file);
      } catch (e) {
        assert.ok(e instanceof UserError, `${kind}: not a UserError: ${(e as Error)?.stack?.split('\n').slice(0, 3).join(' ')}`);
        assert.ok(e.message.startsWith(`${file}:`), `${kind}: the error does not name the file: ${e.message}`);
        return;
      }
      saneNumbers(result, kind);
    },
    close: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Every number a reader returns is finite and not absurd (a GPU count that would allocate billions). */
function saneNumbers(v: unknown, at: string): void {
  if (typeof v === 'number') assert.ok(Number.isFinite(v) && Math.abs(v) <= Number.MAX_SAFE_INTEGER, `${at}: ${v} accepted`);
  else if (typeof v === 'function') assert.fail(`${at}: a function leaked into the result`);
  else if (Array.isArray(v)) {
    assert.ok(v.length <= 1_000_000, `${at}: ${v.length} elements`);
    v.forEach((x, i) => saneNumbers(x, `${at}[${i}]`));
  } else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) saneNumbers(x, `${at}.${k}`);
}

// ---------------------------------------------------------------------------------------------
// 3. API bodies and query strings

/** /healthz answers, a normal submission works, the loop runs, and jobs accepted before are still there, unchanged. */
async function healthy(s: FuzzServer, before: readonly { id: string; spec: unknown }[] = []): Promise<void> {
  assert.equal((await s.call('GET', '/healthz', null)).status, 200, '/healthz');
  const sub = await s.call('POST', '/v1/jobs', ALICE, JSON.stringify({ name: 'after-fuzz', tasks: [{ gpus: 1, command: 'true' }] }));
  assert.equal(sub.status, 201, `a normal submission after the run: ${sub.text.slice(0, 300)}`);
  for (const path of ['/v1/nodes', '/v1/queues', '/v1/jobs', '/v1/events']) assert.equal((await s.call('GET', path, ADMIN)).status, 200, path);
  assert.equal((await s.call('GET', '/metrics', null)).status, 200, '/metrics');
  await s.tick();
  for (const j of before) {
    const r = await s.call('GET', `/v1/jobs/${j.id}`, ADMIN);
    assert.equal(r.status, 200, `job ${j.id} accepted before the run is gone`);
    assert.deepEqual(r.json.job.spec, j.spec, `job ${j.id} changed its spec`);
  }
}

const pathSeg = fc.oneof(fc.constantFrom('1', '2', '3', '0', '-1', '1.5', '0x1', '999999999999999999999', 'abc', '%00', '..', '%2e%2e', 'local', 'n1', 'default', 'research'), fc.string({ maxLength: 10 }).map(encodeURIComponent));
/** Each route with its method and the query keys it reads: most cases aim at a real route, the rest anywhere. */
const ROUTES: readonly { readonly m: string; readonly p: string; readonly q?: readonly string[] }[] = [
  { m: 'GET', p: '/v1/jobs', q: ['state', 'queue', 'array', 'after', 'limit', 'tenant'] },
  { m: 'GET', p: '/v1/arrays/:id' },
  { m: 'POST', p: '/v1/arrays/:id/cancel' },
  { m: 'POST', p: '/v1/jobs', q: ['tenant'] },
  { m: 'GET', p: '/v1/jobs/:id' },
  { m: 'POST', p: '/v1/jobs/:id/cancel' },
  { m: 'POST', p: '/v1/jobs/:id/preempt' },
  { m: 'GET', p: '/v1/jobs/:id/logs', q: ['task', 'stream', 'offset'] },
  { m: 'GET', p: '/v1/events', q: ['job', 'after', 'limit'] },
  { m: 'GET', p: '/v1/nodes' },
  { m: 'POST', p: '/v1/nodes/:id/drain' },
  { m: 'POST', p: '/v1/nodes/:id/undrain' },
  { m: 'GET', p: '/v1/queues' },
  { m: 'PUT', p: '/v1/queues/:id' },
  { m: 'GET', p: '/v1/tenants' },
  { m: 'POST', p: '/v1/tenants' },
  { m: 'POST', p: '/v1/agent/register' },
  { m: 'POST', p: '/v1/agent/heartbeat' },
  { m: 'GET', p: '/healthz' },
  { m: 'GET', p: '/metrics' },
  { m: 'GET', p: '/openapi.json' },
  { m: 'GET', p: '/v1/:id' },
  { m: 'DELETE', p: '/:id/:id' },
];
const queryKeys = ['state', 'queue', 'after', 'limit', 'tenant', 'task', 'stream', 'offset', 'job', '__proto__', 'constructor', 'x'];
const queryValue = fc.oneof(fc.constantFrom('pending', 'running,failed', 'bogus', '', '0', '1', '-5', '1e400', '1e20', '99999999999999999999', 'NaN', 'stdout', 'stderr', 'alice', 'bob', 'default', '%', '\u0000'), fc.string({ maxLength: 12 }));
/** A query string: mostly the route's own keys (sometimes repeated), some foreign or odd ones. */
const query = (own: readonly string[]): fc.Arbitrary<string> =>
  fc
    .array(fc.tuple(own.length ? fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...own) }, { weight: 1, arbitrary: fc.constantFrom(...queryKeys) }) : fc.constantFrom(...queryKeys), queryValue), { maxLength: 4 })
    .map((kv) => (kv.length ? `?${kv.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&')}` : ''));
const contentType = fc.constantFrom('application/json', 'application/yaml', 'text/yaml', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', 'APPLICATION/JSON', 'application/octet-stream', 'application/json;;;', '');
const apiBody = fc.oneof(
  { weight: 3, arbitrary: specInput(false).map((d) => JSON.stringify(d) ?? 'null') },
  { weight: 2, arbitrary: specInput(false).map(yamlOf) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((d) => JSON.stringify(d)) },
  { weight: 1, arbitrary: fc.record({ name: fc.oneof(fc.constantFrom('carol', 'x'), nasty(false)), gpuQuota: nasty(false), borrowingLimit: nasty(false) }).map((d) => JSON.stringify(d) ?? '') },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }) },
  { weight: 1, arbitrary: fc.constantFrom('', '{', '{"a":1,"a":2}', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{}}}', '[]', 'null', '1e400', '---\n- *a', 'a: &a [*a]', '!!binary AAAA', '!!timestamp 2001-12-14', '? [a]\n: 1', 'x'.repeat(2 * 1024 * 1024)) },
);

export interface ApiCase {
  readonly method: string;
  readonly path: string;
  readonly token: string | null;
  readonly body: string | undefined;
  readonly type: string;
  readonly headers: Record<string, string>;
}

export const apiCase: fc.Arbitrary<ApiCase> = fc.record({
  route: fc.constantFrom(...ROUTES).chain((r) =>
    fc.record({
      method: fc.oneof({ weight: 5, arbitrary: fc.constant(r.m) }, { weight: 1, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS') }),
      path: fc.tuple(fc.array(pathSeg, { minLength: 2, maxLength: 2 }), query(r.q ?? [])).map(([[a, b], q]) => r.p.replace(':id', a as string).replace(':id', b as string) + q),
    }),
  ),
  token: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(ADMIN, ALICE, BOB) }, { weight: 1, arbitrary: fc.constantFrom(AGENT, null, '', 'nope', 'x'.repeat(5000)) }),
  body: fc.option(apiBody, { nil: undefined }),
  type: contentType,
  headers: fc.record({ 'idempotency-key': fc.string({ maxLength: 300 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')), 'x-forwarded-for': fc.constantFrom('1.2.3.4', 'junk') }, { requiredKeys: [] }),
}).map(({ route, ...c }) => ({ ...c, ...route }));

/** Random methods, paths, queries, bodies, content types and tokens: never a 5xx, every 4xx shaped, nothing lost. */
export async function apiTarget(): Promise<FuzzTarget<ApiCase>> {
  const s = await fuzzServer();
  const before: { id: string; spec: unknown }[] = [];
  for (const [token, name] of [[ALICE, 'kept-a'], [BOB, 'kept-b'], [ALICE, 'kept-c']] as const) {
    const r = await s.call('POST', '/v1/jobs', token, JSON.stringify({ name, tasks: [{ gpus: 1, command: 'sleep 1' }] }));
    assert.equal(r.status, 201);
    before.push({ id: r.json.jobs[0].id, spec: r.json.jobs[0].spec });
  }
  return {
    name: 'API bodies and queries',
    stateful: true,
    arbitrary: apiCase,
    async check(c) {
      const r = await s.call(c.method, c.path, c.token, c.body, c.type || 'application/json', c.headers);
      if (c.method !== 'HEAD') assertErrorBody(r, `${c.method} ${c.path} (${c.type}) ${c.body?.slice(0, 200) ?? ''}`);
      else assert.ok(r.status < 500, `HEAD ${c.path}: ${r.status}`);
    },
    after: () => healthy(s, before),
    close: () => s.close(),
  };
}

// ---------------------------------------------------------------------------------------------
// 4. A hostile agent

interface AgentCase {
  readonly route: 'heartbeat' | 'register';
  readonly body: unknown;
  readonly yaml: boolean;
  /** 'node': n1's own credential (the shared agent token where the server issues none); 'agent': the shared token. */
  readonly token: 'node' | 'agent';
}

/**
 * An agent holding node n1 sends hostile registrations and heartbeats (for n1, unknown nodes or
 * bad names; n2 is another agent's node). After each: a clear 4xx or 200; n2's tasks and jobs
 * unchanged; /v1/nodes and /metrics render; a scheduling cycle runs.
 */
export async function agentTarget(): Promise<FuzzTarget<AgentCase>> {
  const s = await fuzzServer();
  const gpus = (n: number) => Array.from({ length: n }, (_, i) => ({ index: i, model: 'H100', memoryMib: 81559, uuid: `GPU-${i}` }));
  // Where registration answers a nodeToken, later calls for that node use it (per-node credentials).
  const tokens: Record<string, string> = {};
  for (const id of ['n1', 'n2']) {
    const r = await s.call('POST', '/v1/agent/register', AGENT, JSON.stringify({ id, address: `http://127.0.0.1:1/${id}`, cpuMilli: 64000, memoryMib: 512 * 1024, gpus: gpus(4), simulated: true }));
    assert.equal(r.status, 200, r.text);
    tokens[id] = r.json.nodeToken ?? AGENT;
  }
  const credentials = tokens['n1'] !== AGENT;
  for (let i = 0; i < 8; i++) assert.equal((await s.call('POST', '/v1/jobs', i % 2 ? BOB : ALICE, JSON.stringify({ name: `j${i}`, tasks: [{ gpus: 1, cpu: 1, memory: '1Gi', command: 'sleep 100' }] }))).status, 201);
  await s.tick();
  const runs: Record<string, string[]> = {};
  for (const id of ['n1', 'n2']) {
    const desired = await s.call('POST', '/v1/agent/heartbeat', tokens[id] ?? AGENT, JSON.stringify({ node: id, reports: [], telemetry: [] }));
    runs[id] = desired.json.tasks.map((t: { runId: string }) => t.runId);
    const reports = (runs[id] ?? []).map((runId, k) => ({ runId, state: 'running', pid: 100 + k, exitCode: null }));
    assert.equal((await s.call('POST', '/v1/agent/heartbeat', tokens[id] ?? AGENT, JSON.stringify({ node: id, reports, telemetry: [] }))).status, 200);
  }
  assert.equal(runs['n2']?.length, 4, 'n2 runs four tasks');
  const otherNode = async () => {
    const tasks = (await s.server.store.snapshot()).activeTasks.filter((t) => t.node === 'n2').map((t) => `${t.jobId}.${t.index}:${t.state}:${t.gpus.join('+')}`);
    const jobs = await Promise.all([...new Set((runs['n2'] ?? []).map((r) => r.split('.')[0] as string))].map(async (id) => `${id}:${(await s.server.store.getJob(id))?.state}:${JSON.stringify((await s.server.store.getJob(id))?.progress)}`));
    return { tasks: tasks.sort(), jobs };
  };
  const protectedState = await otherNode();
  assert.equal(protectedState.tasks.length, 4);

  const num = fc.oneof({ weight: 3, arbitrary: fc.nat(100) }, { weight: 2, arbitrary: nasty(false) });
  const telemetry = fc.oneof(
    { weight: 60, arbitrary: fc.array(fc.oneof({ weight: 4, arbitrary: fc.record({ index: num, utilization: num, memoryUsedMib: num, powerWatts: num }) }, { weight: 1, arbitrary: nasty(false) }), { maxLength: 6 }) },
    { weight: 1, arbitrary: fc.constantFrom(100_000, 5_000).map((n) => Array.from({ length: n }, (_, i) => ({ index: i, utilization: 50, memoryUsedMib: 1, powerWatts: 1 }))) },
    { weight: 1, arbitrary: nasty(false) },
  );
  const runId = fc.oneof(fc.constantFrom(...(runs['n1'] ?? []), ...(runs['n2'] ?? []), '999.0.0', '1.0.7', '1.99.0', ''), nasty(false));
  const progress = fc.oneof({ weight: 3, arbitrary: fc.record({ step: num, totalSteps: num, checkpointStep: num }, { requiredKeys: [] }) }, { weight: 1, arbitrary: nasty(false) });
  const report = fc.oneof({ weight: 5, arbitrary: fc.record({ runId, state: fc.oneof(fc.constantFrom('running', 'exited', 'failed', 'zombie', ''), nasty(false)), pid: fc.oneof(fc.nat(99999), fc.constant(null), nasty(false)), exitCode: fc.oneof(fc.nat(255), fc.constant(null), fc.constantFrom(-1, 256, 2 ** 31, 1e300, 0.5), nasty(false)), progress }, { requiredKeys: ['runId', 'state'] }) }, { weight: 1, arbitrary: nasty(false) });
  const reports = fc.oneof({ weight: 60, arbitrary: fc.array(report, { maxLength: 6 }) }, { weight: 1, arbitrary: fc.constantFrom(100_000).map((n) => Array.from({ length: n }, (_, i) => ({ runId: `${i}.0.0`, state: 'exited', pid: 1, exitCode: 0 }))) }, { weight: 1, arbitrary: nasty(false) });
  // Claiming n2 (another agent's node) is only refusable with per-node credentials; with one shared token it is n2.
  const node = fc.oneof({ weight: 6, arbitrary: fc.constant('n1') }, { weight: 1, arbitrary: fc.constantFrom('ghost', '', 'N1', 'n1 ', '__proto__', ...(credentials ? ['n2'] : [])) }, { weight: 1, arbitrary: nasty(false) });
  const hostileHeartbeat = fc.record({ node, reports, telemetry }, { requiredKeys: [] });
  // Well-formed heartbeats reach the store: reports for n1's runs, n2's runs and unknown ones.
  const validHeartbeat = fc.record({
    node: fc.constantFrom('n1', ...(credentials ? ['n2'] : [])),
    reports: fc.uniqueArray(fc.record({ runId: fc.constantFrom(...(runs['n1'] ?? []), ...(runs['n2'] ?? []), '999.0.0', '1.0.7'), state: fc.constantFrom('running', 'exited'), pid: fc.option(fc.nat(99999), { nil: null }), exitCode: fc.option(fc.nat(255), { nil: null }), progress: fc.record({ step: fc.nat(), checkpointStep: fc.nat() }) }, { requiredKeys: ['runId', 'state', 'pid', 'exitCode'] }), { maxLength: 4, selector: (r) => r.runId }),
    telemetry: fc.uniqueArray(fc.record({ index: fc.nat(7), utilization: fc.double({ min: 0, max: 100, noNaN: true }), memoryUsedMib: fc.nat(81559), powerWatts: fc.nat(700) }), { maxLength: 4, selector: (t) => t.index }),
  });
  const heartbeat = fc.oneof({ weight: 2, arbitrary: validHeartbeat }, { weight: 3, arbitrary: nearValid(validHeartbeat, false).map((x) => x.doc) }, { weight: 2, arbitrary: hostileHeartbeat });
  const token = fc.oneof({ weight: 4, arbitrary: fc.constant('node' as const) }, { weight: 1, arbitrary: fc.constant('agent' as const) });
  const gpu = fc.oneof({ weight: 4, arbitrary: fc.record({ index: num, model: fc.oneof(fc.constantFrom('H100', 'A100'), nasty(false)), memoryMib: num, uuid: fc.oneof(fc.constant('GPU-x'), nasty(false)) }, { requiredKeys: [] }) }, { weight: 1, arbitrary: nasty(false) });
  const validRegistration = fc.record({ id: fc.constantFrom('n1', 'n3'), address: fc.constant('http://127.0.0.1:1/n1'), cpuMilli: fc.nat(128_000), memoryMib: fc.nat(1 << 20), gpus: fc.nat(6).map(gpus), simulated: fc.boolean() });
  const hostileRegistration = fc.record(
    {
      id: fc.oneof({ weight: 4, arbitrary: fc.constant('n1') }, { weight: 1, arbitrary: fc.constantFrom('n3', '', '-x', 'a'.repeat(70)) }, { weight: 1, arbitrary: nasty(false) }),
      address: fc.oneof(fc.constant('http://127.0.0.1:1/n1'), fc.constantFrom('', 'ftp://x', 'javascript:alert(1)', 'http://', 'x'.repeat(5000)), nasty(false)),
      cpuMilli: fc.oneof(fc.constant(64000), num),
      memoryMib: fc.oneof(fc.constant(524288), num),
      gpus: fc.oneof({ weight: 36, arbitrary: fc.array(gpu, { maxLength: 6 }) }, { weight: 24, arbitrary: fc.constant(gpus(4)) }, { weight: 1, arbitrary: fc.constant(gpus(100_000)) }, { weight: 1, arbitrary: nasty(false) }),
      simulated: fc.oneof(fc.boolean(), nasty(false)),
    },
    { requiredKeys: [] },
  );
  return {
    name: 'hostile agent (register, heartbeat)',
    stateful: true,
    arbitrary: fc.oneof(
      { weight: 3, arbitrary: fc.record({ route: fc.constant('heartbeat' as const), body: heartbeat, yaml: fc.boolean(), token }) },
      { weight: 1, arbitrary: fc.record({ route: fc.constant('register' as const), body: fc.oneof(validRegistration, nearValid(validRegistration, false).map((x) => x.doc), hostileRegistration), yaml: fc.boolean(), token }) },
      { weight: 1, arbitrary: fc.record({ route: fc.constantFrom('heartbeat' as const, 'register' as const), body: nasty(false), yaml: fc.boolean(), token }) },
    ),
    async check(c) {
      // YAML bodies can carry what JSON cannot: .nan, .inf, -.inf.
      const big = JSON.stringify(c.body ?? null).length > 100_000;
      const text = c.yaml && !big ? yamlOf(c.body) : (JSON.stringify(c.body) ?? 'null');
      const r = await s.call('POST', `/v1/agent/${c.route}`, c.token === 'node' ? (tokens['n1'] ?? AGENT) : AGENT, text, c.yaml && !big ? 'application/yaml' : 'application/json');
      assertErrorBody(r, `${c.route} ${text.slice(0, 300)}`);
      if (r.status === 400) assert.ok(r.json.error.fields?.length > 0 || r.json.error.code === 'invalid_request', '400 without fields');
      // A refused body never reaches the store; what an accepted one changed is checked below.
      if (r.status >= 400) return;
      assert.deepEqual(await otherNode(), protectedState, `another node's tasks or jobs changed after ${c.route} ${text.slice(0, 300)}`);
      const nodes = await s.call('GET', '/v1/nodes', ADMIN);
      assert.equal(nodes.status, 200, `/v1/nodes: ${nodes.text.slice(0, 200)}`);
      for (const n of nodes.json.nodes) {
        saneNumbers(n.telemetry, `node ${n.id} telemetry`);
        saneNumbers(n.gpus, `node ${n.id} gpus`);
        saneNumbers([n.cpuMilli, n.memoryMib], `node ${n.id} capacity`);
        for (const t of n.telemetry) assert.ok(t.utilization >= 0 && t.utilization <= 100 && t.memoryUsedMib >= 0 && t.powerWatts >= 0, `node ${n.id}: telemetry ${JSON.stringify(t)} accepted`);
        assert.ok(n.telemetry.length <= 1024 && n.gpus.length <= 1024, `node ${n.id}: ${n.telemetry.length} telemetry rows, ${n.gpus.length} GPUs stored`);
      }
      assert.equal((await s.call('GET', '/metrics', null)).status, 200, '/metrics');
      await s.tick();
    },
    after: () => healthy(s),
    close: () => s.close(),
  };
}

export const TARGETS = {
  spec: async () => specTarget(),
  'spec-http': specHttpTarget,
  config: async () => configTarget(),
  traces: async () => tracesTarget(),
  api: apiTarget,
  agent: agentTarget,
} as const satisfies Record<string, () => Promise<FuzzTarget>>;

export type TargetName = keyof typeof TARGETS;

/** Runs a target under fast-check; throws (with the seed and shrunk counterexample) on the first failure. */
export async function runTarget(name: TargetName, numRuns: number, seed: number): Promise<void> {
  const t = await TARGETS[name]();
  try {
    await fc.assert(fc.asyncProperty(t.arbitrary, async (x) => { await t.check(x); }), { numRuns, seed, includeErrorInReport: true, endOnFailure: t.stateful === true });
    await t.after?.();
  } finally {
    await t.close?.();
  }
}

export { PROTO_KEYS };
