/**
 * /openapi.json cannot drift from what the server accepts: the job spec schema published there,
 * compiled by a plain Ajv (no Tide code), and the server over real HTTP agree on a set of good
 * and bad specs. What JSON Schema cannot say (the named checks of api/spec.ts) is listed apart:
 * the document accepts those specs, the server refuses them naming the field, and the document's
 * descriptions say the rule.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Ajv } from 'ajv';
import { parseHeartbeat } from '../api/agentSchema.ts';
import type { RunningServer } from './server.ts';
import { httpCall, memoryServer, type Reply } from './testing.ts';

const ADMIN = 'admin-token-123';
const ALICE = 'alice-token-123';
const ok = (over: Record<string, unknown> = {}, task: Record<string, unknown> = {}) => ({ name: 'j', tasks: [{ command: 'true', ...task }], ...over });

const GOOD: unknown[] = [
  ok(),
  ok({ queue: 'default', priority: -5, kind: 'training', preemptible: false, checkpoint: true, gracePeriodSeconds: 0.5, clientKey: 'k1', jobType: 'bert', maxPreemptions: 0 }),
  ok({ timeLimit: '2h30m' }),
  ok({ timeLimit: '1:30:00' }),
  ok({ timeLimit: 90 }),
  ok({ gpuSpeeds: { H100: 1, A100: 0.5, T4: 0 } }),
  ok({ kind: 'batch', array: 3 }),
  ok({}, { gpus: 0.25 }),
  ok({}, { gpus: '0.5' }),
  ok({}, { gpus: ' 2 ' }),
  ok({}, { cpu: '500m', memory: '64Gi' }),
  ok({}, { cpu: 2.5, memory: 1073741824 }),
  ok({}, { command: ['python', 'train.py', '--lr', '0.1'] }),
  ok({}, { env: { LR: 0.1, DEBUG: true, NAME: 'x' } }),
  ok({}, { replicas: 4, minReplicas: 2, gpuModels: ['H100', 'A100'] }),
  { name: 'two', tasks: [{ name: 'a', command: 'x' }, { name: 'b', command: 'y' }] },
];

/** Bad specs and the field the server names. */
const BAD: [unknown, string][] = [
  [{ tasks: [{ command: 'x' }] }, 'name'],
  [ok({ name: 'bad name' }), 'name'],
  [{ name: 'j' }, 'tasks'],
  [ok({ tasks: [] }), 'tasks'],
  [ok({ extra: 1 }), 'extra'],
  [ok({ priority: 1.5 }), 'priority'],
  [ok({ kind: 'serving' }), 'kind'],
  [ok({ preemptible: 'yes' }), 'preemptible'],
  [ok({ array: 0 }), 'array'],
  [ok({ gracePeriodSeconds: 3601 }), 'gracePeriodSeconds'],
  [ok({ clientKey: '' }), 'clientKey'],
  [ok({ timeLimit: -1 }), 'timeLimit'],
  [ok({ timeLimit: 'zz' }), 'timeLimit'],
  [ok({ timeLimit: true }), 'timeLimit'],
  [ok({ jobType: '' }), 'jobType'],
  [ok({ gpuSpeeds: { A100: -1 } }), 'gpuSpeeds.A100'],
  [ok({ gpuSpeeds: { 'bad model': 1 } }), 'gpuSpeeds."bad model"'],
  [ok({ gpuSpeeds: [1] }), 'gpuSpeeds'],
  [ok({ maxPreemptions: -1 }), 'maxPreemptions'],
  [ok({ tasks: [null] }), 'tasks[0]'],
  [ok({ tasks: [{}] }), 'tasks[0].command'],
  [ok({}, { extra: 1 }), 'tasks[0].extra'],
  [ok({}, { gpus: 65 }), 'tasks[0].gpus'],
  [ok({}, { gpus: 'lots' }), 'tasks[0].gpus'],
  [ok({}, { gpus: '0x10' }), 'tasks[0].gpus'],
  [ok({}, { gpus: null }), 'tasks[0].gpus'],
  [ok({}, { replicas: 0 }), 'tasks[0].replicas'],
  [ok({}, { minReplicas: 0 }), 'tasks[0].minReplicas'],
  [ok({}, { cpu: '4 cores' }), 'tasks[0].cpu'],
  [ok({}, { memory: '12Qi' }), 'tasks[0].memory'],
  [ok({}, { memory: -1 }), 'tasks[0].memory'],
  [ok({}, { command: '' }), 'tasks[0].command'],
  [ok({}, { command: [] }), 'tasks[0].command'],
  [ok({}, { command: ['echo', 3] }), 'tasks[0].command[1]'],
  [ok({}, { gpuModels: [''] }), 'tasks[0].gpuModels[0]'],
  [ok({}, { gpuModels: 'H100' }), 'tasks[0].gpuModels'],
  [ok({}, { env: { 'BAD-NAME': 'x' } }), 'tasks[0].env.BAD-NAME'],
  [ok({}, { env: { A: null } }), 'tasks[0].env.A'],
  [ok({}, { env: { A: { b: 1 } } }), 'tasks[0].env.A'],
  [ok({}, { env: Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`V${i}`, '1'])) }), 'tasks[0].env'],
  [ok({}, { env: 'A=1' }), 'tasks[0].env'],
];

/** Specs only the named checks refuse: the document accepts them (its descriptions say the rule). */
const NAMED_ONLY: [unknown, string][] = [
  [ok({}, { gpus: 1.5 }), 'tasks[0].gpus'],
  [ok({}, { gpus: 0.0005 }), 'tasks[0].gpus'],
  [ok({}, { replicas: 2, minReplicas: 3 }), 'tasks[0].minReplicas'],
  [ok({}, { env: { TIDE_JOB_ID: '1' } }), 'tasks[0].env.TIDE_JOB_ID'],
  [ok({}, { command: 'x'.repeat(70_000) }), 'tasks[0].command'],
  [ok({}, { memory: 2 ** 73 }), 'tasks[0].memory'],
  [ok({ timeLimit: '400d' }), 'timeLimit'],
  [ok({ kind: 'training', array: 2 }), 'array'],
  [{ name: 'dup', tasks: [{ command: 'x' }, { command: 'y' }] }, 'tasks[1].name'],
];

describe('/openapi.json and the server agree', () => {
  let server: RunningServer;
  let doc: Reply['json'];
  const submit = (spec: unknown) => httpCall(server.url, 'POST', '/v1/jobs', ALICE, spec);
  before(async () => {
    server = await memoryServer({ adminToken: ADMIN, agentToken: 'agent-token-123', bodyLimit: 1024 * 1024, tickMs: 60_000, tenants: { alice: [ALICE] } });
    doc = (await httpCall(server.url, 'GET', '/openapi.json', null)).json;
  });
  after(async () => server.close());

  /** A plain Ajv, as any client of the document would use (it ignores the x-message annotations). */
  const compile = (schema: object) => new Ajv({ strict: false, allErrors: true }).compile(schema);

  test('good and bad specs: the published schema and the server say the same, and the server names the field', async () => {
    const valid = compile(doc.paths['/v1/jobs'].post.requestBody.content['application/json'].schema);
    for (const spec of GOOD) {
      assert.equal(valid(spec), true, `the document refuses ${JSON.stringify(spec)}: ${JSON.stringify(valid.errors)}`);
      const r = await submit(spec);
      assert.ok(r.status === 201 || r.status === 200, `the server refuses ${JSON.stringify(spec)}: ${r.text}`);
    }
    for (const [spec, field] of BAD) {
      const what = JSON.stringify(spec).slice(0, 120);
      assert.equal(valid(spec), false, `the document accepts ${what}`);
      const r = await submit(spec);
      assert.equal(r.status, 400, `the server accepts ${what}`);
      assert.equal(r.json.error.code, 'invalid_spec');
      const fields = r.json.error.fields.map((f: { path: string }) => f.path);
      assert.deepEqual(fields, [field], `${what}: ${r.text.slice(0, 300)}`);
      assert.doesNotMatch(r.json.error.message, /\/tasks\/|must match pattern|must be (number|string|integer)\b/, 'Tide messages, not raw Ajv ones');
    }
    for (const [spec, field] of NAMED_ONLY) {
      const what = JSON.stringify(spec).slice(0, 120);
      assert.equal(valid(spec), true, `the document refuses ${what}: the rule moved into the schema, move the case to BAD`);
      const r = await submit(spec);
      assert.equal(r.status, 400, `the server accepts ${what}`);
      assert.deepEqual(r.json.error.fields.map((f: { path: string }) => f.path), [field]);
    }
  });

  test('agent heartbeats: the published schema and the parser agree', () => {
    const valid = compile(doc.paths['/v1/agent/heartbeat'].post.requestBody.content['application/json'].schema);
    const report = { runId: '1.0.0', state: 'running', pid: 1, exitCode: null };
    const gpu = { index: 0, utilization: 50, memoryUsedMib: 100, powerWatts: 300 };
    const hb = (over: Record<string, unknown>) => ({ node: 'n1', reports: [report], telemetry: [gpu], ...over });
    const cases: unknown[] = [
      hb({}),
      hb({ reports: [{ ...report, progress: { step: 3, totalSteps: 10, checkpointStep: 2 } }] }),
      hb({ reports: [{ ...report, state: 'exited', exitCode: 1, reason: 'start-failed', message: 'E2BIG', startedAt: null }] }),
      hb({ reports: [{ ...report, progress: null, extra: 'ignored' }], version: 2 }),
      hb({ node: 'bad node' }),
      hb({ reports: [{ ...report, progress: { step: -1 } }] }),
      hb({ reports: [{ ...report, state: 'zombie' }] }),
      hb({ reports: [{ ...report, exitCode: 256 }] }),
      hb({ telemetry: [{ ...gpu, utilization: 101 }] }),
      hb({ telemetry: Array.from({ length: 257 }, (_, index) => ({ ...gpu, index: index % 256 })) }),
      hb({ reports: null }),
      [],
    ];
    for (const c of cases) assert.equal(valid(c), parseHeartbeat(c).ok, JSON.stringify(c).slice(0, 200));
  });

  test('every route documents its answers, errors included, from the same schemas', () => {
    for (const [path, methods] of Object.entries(doc.paths as Record<string, Record<string, { responses?: Record<string, unknown> }>>)) {
      if (path === '/healthz' || path === '/metrics') continue;
      for (const [method, op] of Object.entries(methods)) {
        const codes = Object.keys(op.responses ?? {});
        assert.ok(codes.some((c) => c.startsWith('2')), `${method} ${path}: no answer documented`);
        assert.ok(codes.includes('4XX'), `${method} ${path}: no error answer documented`);
      }
    }
    const states = doc.paths['/v1/jobs'].get.responses['200'].content['application/json'].schema.properties.jobs.items.properties.state.enum;
    assert.ok(states.includes('timeout'), 'the job states include timeout');
  });
});
