/** The HTTP API over real HTTP on 127.0.0.1 with an in-memory store: auth, validation, tenancy, idempotency. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startServer, type RunningServer } from './server.ts';
import { httpCall, memoryServer } from './testing.ts';

const ADMIN = 'admin-token-123';
const AGENT = 'agent-token-123';
const ALICE = 'alice-token-123';
const BOB = 'bob-token-1234';

describe('HTTP API', () => {
  let server: RunningServer;
  const call = (method: string, path: string, token: string | null, body?: string, type = 'application/json') => httpCall(server.url, method, path, token, body, type);
  const job = (over: Record<string, unknown> = {}) => JSON.stringify({ name: 'j', tasks: [{ gpus: 1, command: 'true' }], ...over });

  before(async () => {
    server = await memoryServer({
      adminToken: ADMIN,
      agentToken: AGENT,
      bodyLimit: 64 * 1024,
      tickMs: 60_000,
      tenants: { alice: [ALICE], bob: [BOB] },
      queues: [
        { name: 'research', gpuQuota: 4, borrowingLimit: 2 },
        { name: 'alice', gpuQuota: 2, borrowingLimit: 0 },
        { name: 'pool', gpuQuota: 8, borrowingLimit: 0, tenants: ['bob'] },
      ],
    });
  });
  after(async () => server.close());

  test('healthz and the OpenAPI document', async () => {
    const h = await call('GET', '/healthz', null);
    assert.equal(h.status, 200);
    assert.equal(h.json.ok, true);
    const doc = await call('GET', '/openapi.json', null);
    assert.equal(doc.status, 200);
    assert.ok(doc.json.openapi.startsWith('3.'));
    for (const p of ['/v1/jobs', '/v1/jobs/{id}', '/v1/jobs/{id}/logs', '/v1/nodes', '/v1/queues', '/v1/agent/heartbeat']) assert.ok(doc.json.paths[p], `${p} documented`);
  });

  test('401 without or with an unknown token, 403 with the wrong role', async () => {
    assert.equal((await call('GET', '/v1/jobs', null)).status, 401);
    assert.equal((await call('GET', '/v1/jobs', 'nope-nope')).status, 401);
    assert.equal((await call('GET', '/v1/jobs', 'Basic abc')).json.error.code, 'unauthorized');
    const r = await call('POST', '/v1/agent/heartbeat', ALICE, JSON.stringify({ node: 'x', reports: [], telemetry: [] }));
    assert.equal(r.status, 403);
    assert.equal(r.json.error.code, 'forbidden');
    assert.equal((await call('POST', '/v1/tenants', BOB, JSON.stringify({ name: 'eve' }))).status, 403);
    assert.equal((await call('GET', '/v1/jobs', AGENT)).status, 403);
  });

  test('an invalid spec gets a 400 naming every field', async () => {
    const r = await call('POST', '/v1/jobs', ALICE, JSON.stringify({ name: '-', priority: 'high', tasks: [{ gpus: 2.5, cpu: 'x', command: 7 }] }));
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'invalid_spec');
    assert.deepEqual(r.json.error.fields.map((f: { path: string }) => f.path).sort(), ['name', 'priority', 'tasks[0].command', 'tasks[0].cpu', 'tasks[0].gpus']);
    const q = await call('POST', '/v1/jobs', ALICE, job({ queue: 'nope' }));
    assert.equal(q.status, 400);
    assert.equal(q.json.error.fields[0].path, 'queue');
  });

  test('malformed JSON or YAML, wrong media types and oversized bodies are refused cleanly', async () => {
    const bad = await call('POST', '/v1/jobs', ALICE, '{"name": ');
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.code, 'invalid_request');
    assert.equal(bad.json.error.message, 'body is not valid JSON: line 1, column 10: unexpected end of input');
    const trailing = await call('POST', '/v1/jobs', ALICE, '{"name": "a",\n "tasks": []}x');
    assert.equal(trailing.json.error.message, 'body is not valid JSON: line 2, column 14: unexpected non-whitespace character after the value');
    const yaml = await call('POST', '/v1/jobs', ALICE, 'name: [unclosed\n  - x: {', 'application/yaml');
    assert.equal(yaml.status, 400);
    assert.equal((await call('POST', '/v1/jobs', ALICE, 'hello', 'text/plain')).status, 415);
    const big = await call('POST', '/v1/jobs', ALICE, JSON.stringify({ name: 'big', tasks: [{ command: 'x'.repeat(100_000) }] }));
    assert.equal(big.status, 413);
    assert.equal(big.json.error.code, 'payload_too_large');
    assert.equal((await call('GET', '/healthz', null)).status, 200, 'still serving');
  });

  test('a duplicate JSON key is refused as YAML\'s are, naming the key and where; YAML errors are one clean line', async () => {
    const dupJson = await call('POST', '/v1/jobs', ALICE, '{"name":"d","tasks":[{"gpus":1,"command":"true","gpus":8}]}');
    assert.equal(dupJson.status, 400);
    assert.equal(dupJson.json.error.code, 'invalid_request');
    assert.equal(dupJson.json.error.message, 'body is not valid JSON: duplicate key "gpus" at tasks[0]');
    assert.deepEqual(dupJson.json.error.fields, [{ path: 'tasks[0].gpus', message: 'duplicate key' }]);
    const top = await call('POST', '/v1/jobs', ALICE, '{"name":"d","tasks":[{"command":"true"}],"name":"e"}');
    assert.equal(top.json.error.message, 'body is not valid JSON: duplicate key "name" at the top level');
    const queue = await call('PUT', '/v1/queues/dupq', ADMIN, '{"gpuQuota":1,"gpuQuota":2}');
    assert.equal(queue.status, 400, 'every JSON body, not only job specs');
    const proto = await call('POST', '/v1/jobs', ALICE, '{"name":"d","tasks":[{"command":"true"}],"__proto__":{"x":1}}');
    assert.equal(proto.status, 400, '__proto__ is still refused');
    const dupYaml = await call('POST', '/v1/jobs', ALICE, 'name: d\ntasks:\n  - command: "true"\n    gpus: 1\n    gpus: 8\n', 'application/yaml');
    assert.equal(dupYaml.status, 400);
    assert.equal(dupYaml.json.error.message, 'body is not valid YAML: line 5, column 5: duplicate key "gpus"');
    const indent = await call('POST', '/v1/jobs', ALICE, 'name: d\ntasks:\n  - gpus: 1\n     cpu: 2\n', 'application/yaml');
    assert.match(indent.json.error.message, /^body is not valid YAML: line 3, column 11: bad indentation/);
    for (const body of ['name: [unclosed\n  - x: {', 'a: 1\n---\nb: 2\n', 'key: "open\n']) {
      const r = await call('POST', '/v1/jobs', ALICE, body, 'application/yaml');
      assert.equal(r.status, 400);
      assert.match(r.json.error.message, /^body is not valid YAML: line \d+, column \d+: /);
      assert.doesNotMatch(r.json.error.message, /\n|please|YAML\.parse|\^/, r.json.error.message);
    }
  });

  test('YAML submissions work; a client key makes submission idempotent', async () => {
    const y = await call('POST', '/v1/jobs', ALICE, 'name: from-yaml\ntasks:\n  - gpus: 1\n    memory: 64Gi\n    command: echo hi\n', 'application/yaml; charset=utf-8');
    assert.equal(y.status, 201);
    assert.equal((await call('POST', '/v1/jobs', ALICE, job({ name: 'charset' }), 'application/json; charset=utf-8')).status, 201);
    assert.equal(y.json.jobs[0].spec.groups[0].memoryMib, 65536);
    const first = await call('POST', '/v1/jobs', ALICE, job({ name: 'idem', clientKey: 'k-1' }));
    const again = await call('POST', '/v1/jobs', ALICE, job({ name: 'idem', clientKey: 'k-1' }));
    assert.equal(first.status, 201);
    assert.equal(again.status, 200);
    assert.equal(again.json.created, false);
    assert.equal(again.json.jobs[0].id, first.json.jobs[0].id);
  });

  test('a tenant sees and acts on its own jobs only; the admin sees all', async () => {
    const mine = await call('POST', '/v1/jobs', BOB, job({ name: 'bobs' }));
    const id = mine.json.jobs[0].id;
    assert.equal((await call('GET', `/v1/jobs/${id}`, ALICE)).status, 404);
    assert.equal((await call('POST', `/v1/jobs/${id}/cancel`, ALICE)).status, 404);
    assert.ok((await call('GET', '/v1/jobs', ALICE)).json.jobs.every((j: { tenant: string }) => j.tenant === 'alice'));
    assert.ok((await call('GET', '/v1/jobs', ADMIN)).json.jobs.some((j: { tenant: string }) => j.tenant === 'bob'));
    assert.ok((await call('GET', '/v1/events', ALICE)).json.events.every((e: { tenant: string }) => e.tenant === 'alice'));
    const c = await call('POST', `/v1/jobs/${id}/cancel`, BOB);
    assert.equal(c.json.job.state, 'cancelled');
    assert.equal((await call('POST', `/v1/jobs/${id}/cancel`, BOB)).status, 409);
  });

  test('admins manage tenants and queues; queues report quota', async () => {
    const t = await call('POST', '/v1/tenants', ADMIN, JSON.stringify({ name: 'carol' }));
    assert.equal(t.status, 201);
    const typo = await call('POST', '/v1/tenants', ADMIN, JSON.stringify({ name: 'dave', queue: 'prod' }));
    assert.equal(typo.status, 400);
    assert.deepEqual(typo.json.error.fields.map((f: { path: string }) => f.path), ['queue']);
    assert.equal((await call('GET', '/v1/jobs', t.json.token)).status, 200);
    assert.equal((await call('PUT', '/v1/queues/prod', ADMIN, JSON.stringify({ gpuQuota: -1 }))).status, 400);
    assert.equal((await call('PUT', '/v1/queues/prod', ADMIN, JSON.stringify({ gpuQuota: 16 }))).status, 200);
    const qs = (await call('GET', '/v1/queues', ALICE)).json.queues;
    assert.deepEqual(qs.map((q: { name: string; gpuQuota: number | null }) => [q.name, q.gpuQuota]), [['alice', 2], ['default', null], ['prod', 16], ['research', 4]]);
  });

  test('queues have owners: a tenant submits only to the queues it is bound to, and sees only those', async () => {
    const submit = (token: string, queue: string, path = '/v1/jobs') => call('POST', path, token, job({ name: 'owned', queue }));
    // `tenants: [bob]` binds pool to bob; a queue named like a tenant (alice) is hers alone; others are shared.
    const refused = await submit(ALICE, 'pool');
    assert.equal(refused.status, 403);
    assert.equal(refused.json.error.code, 'forbidden');
    assert.equal(refused.json.error.message, 'queue "pool" is not open to tenant alice');
    assert.equal((await submit(BOB, 'alice')).json.error.message, 'queue "alice" is not open to tenant bob');
    assert.equal((await submit(ADMIN, 'pool', '/v1/jobs?tenant=alice')).status, 403, 'the admin submits within the tenant\'s bindings');
    assert.equal((await submit(BOB, 'pool')).status, 201);
    assert.equal((await submit(ALICE, 'alice')).status, 201);
    assert.equal((await submit(ALICE, 'research')).status, 201);
    assert.equal((await submit(BOB, 'default')).status, 201);
    const unknown = await submit(ALICE, 'nope');
    assert.equal(unknown.status, 400);
    assert.doesNotMatch(unknown.json.error.fields[0].message, /pool/, 'an unknown queue lists only the tenant\'s queues');
    const names = async (token: string) => (await call('GET', '/v1/queues', token)).json.queues.map((q: { name: string }) => q.name).filter((n: string) => n !== 'prod');
    assert.deepEqual(await names(ALICE), ['alice', 'default', 'research']);
    assert.deepEqual(await names(BOB), ['default', 'pool', 'research']);
    const all = (await call('GET', '/v1/queues', ADMIN)).json.queues;
    assert.deepEqual(all.filter((q: { name: string }) => q.name !== 'prod').map((q: { name: string; tenants: string[] | null }) => [q.name, q.tenants]), [['alice', ['alice']], ['default', null], ['pool', ['bob']], ['research', null]]);
    // Rebinding over the API, persisted in the store.
    const put = await call('PUT', '/v1/queues/pool', ADMIN, JSON.stringify({ gpuQuota: 8, tenants: ['alice'] }));
    assert.equal(put.status, 200);
    assert.deepEqual(put.json.queue.tenants, ['alice']);
    assert.deepEqual((await server.store.listQueues()).find((q) => q.name === 'pool')?.tenants, ['alice']);
    assert.equal((await submit(ALICE, 'pool')).status, 201);
    assert.equal((await submit(BOB, 'pool')).status, 403);
    const badPut = await call('PUT', '/v1/queues/pool', ADMIN, JSON.stringify({ tenants: ['alice', 'nobody'], quota: 3 }));
    assert.equal(badPut.status, 400);
    assert.deepEqual(badPut.json.error.fields.map((f: { path: string }) => f.path).sort(), ['quota', 'tenants[1]']);
    assert.equal((await call('PUT', '/v1/queues/pool', ALICE, JSON.stringify({ tenants: ['alice'] }))).status, 403);
  });

  test('an idempotency key reused with a different spec is a 409 naming the key; the same spec gets the first job', async () => {
    const spec = (over: Record<string, unknown>) => job({ name: 'idem2', tasks: [{ gpus: 1, command: 'true', env: { A: '1', B: '2' } }], ...over });
    const first = await call('POST', '/v1/jobs', ALICE, spec({ clientKey: 'k-2' }));
    assert.equal(first.status, 201);
    const sameReordered = await call('POST', '/v1/jobs', ALICE, JSON.stringify({ clientKey: 'k-2', tasks: [{ env: { B: '2', A: '1' }, command: 'true', gpus: 1 }], name: 'idem2' }));
    assert.equal(sameReordered.status, 200, 'key order does not make a spec different');
    assert.equal(sameReordered.json.jobs[0].id, first.json.jobs[0].id);
    const other = await call('POST', '/v1/jobs', ALICE, spec({ clientKey: 'k-2', priority: 5 }));
    assert.equal(other.status, 409);
    assert.equal(other.json.error.code, 'idempotency_conflict');
    assert.match(other.json.error.message, /idempotency key "k-2" was used for a different job spec/);
    const asArray = await call('POST', '/v1/jobs', ALICE, spec({ clientKey: 'k-2', kind: 'batch', array: 2 }));
    assert.equal(asArray.status, 409, 'a key used for one job cannot make an array');
    const header = await fetch(`${server.url}/v1/jobs`, { method: 'POST', headers: { authorization: `Bearer ${ALICE}`, 'content-type': 'application/json', 'idempotency-key': 'k-2' }, body: spec({ name: 'renamed' }) });
    assert.equal(header.status, 409);
    assert.equal((await call('POST', '/v1/jobs', BOB, spec({ clientKey: 'k-2', priority: 5 }))).status, 201, 'keys are per tenant');
    const long = await fetch(`${server.url}/v1/jobs`, { method: 'POST', headers: { authorization: `Bearer ${ALICE}`, 'content-type': 'application/json', 'idempotency-key': 'k'.repeat(201) }, body: spec({}) });
    assert.equal(long.status, 400);
    const clash = await fetch(`${server.url}/v1/jobs`, { method: 'POST', headers: { authorization: `Bearer ${ALICE}`, 'content-type': 'application/json', 'idempotency-key': 'k-3' }, body: spec({ clientKey: 'k-4' }) });
    assert.equal(clash.status, 400);
  });

  test('lists come in pages: {jobs|events, next}, oldest first or newest first with order=desc', async () => {
    const token = (await call('POST', '/v1/tenants', ADMIN, JSON.stringify({ name: 'pager' }))).json.token;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await call('POST', '/v1/jobs', token, job({ name: `p${i}` }))).json.jobs[0].id);
    const walk = async (path: string, key: 'jobs' | 'events', cursor: 'after' | 'before') => {
      const seen: string[] = [];
      let next: string | null = null;
      for (let pages = 0; pages < 10; pages++) {
        const r = await call('GET', `${path}${next === null ? '' : `&${cursor}=${next}`}`, token);
        assert.equal(r.status, 200);
        assert.ok(r.json[key].length <= 2);
        seen.push(...r.json[key].map((x: { id: string | number; jobId?: string }) => (key === 'jobs' ? x.id : x.jobId)));
        next = r.json.next;
        if (next === null) return seen;
      }
      throw new Error('paging did not end');
    };
    assert.deepEqual(await walk('/v1/jobs?limit=2', 'jobs', 'after'), ids);
    assert.deepEqual(await walk('/v1/jobs?limit=2&order=desc', 'jobs', 'before'), [...ids].reverse());
    assert.deepEqual(await walk('/v1/events?limit=2&order=desc', 'events', 'before'), [...ids].reverse());
    const all = await call('GET', '/v1/jobs', token);
    assert.equal(all.json.next, null);
    assert.equal(all.json.jobs.length, 5);
  });

  test('every query string and path parameter is checked: a 400 naming what is wrong, never an empty 200', async () => {
    const bad = async (path: string, token: string, field: string, pattern: RegExp, status = 400) => {
      const r = await call('GET', path, token);
      assert.equal(r.status, status, `${path}: ${JSON.stringify(r.json)}`);
      assert.match(r.json.error.message, pattern, path);
      if (status === 400) assert.ok(r.json.error.fields.some((f: { path: string }) => f.path === field), path);
    };
    await bad('/v1/jobs?state=bogus', ALICE, 'state', /unknown value "bogus": valid ones are pending, admitted, running, preempted, succeeded, failed, cancelled, timeout/);
    await bad('/v1/jobs?state=pending,runing', ALICE, 'state', /"runing"/);
    await bad('/v1/jobs?limit=0', ALICE, 'limit', /from 1 to 1000/);
    await bad('/v1/jobs?limit=1001', ALICE, 'limit', /from 1 to 1000/);
    await bad('/v1/jobs?limit=ten', ALICE, 'limit', /from 1 to 1000, got "ten"/);
    await bad('/v1/jobs?after=abc', ALICE, 'after', /positive integer/);
    await bad('/v1/events?before=-1', ALICE, 'before', /positive integer/);
    await bad('/v1/events?order=newest', ALICE, 'order', /asc, desc/);
    await bad('/v1/jobs?limt=5', ALICE, 'limt', /unknown query parameter/);
    await bad('/v1/nodes?verbose=1', ALICE, 'verbose', /this route takes none/);
    await bad('/v1/jobs?state=pending&state=running', ALICE, 'state', /more than once/);
    await bad('/v1/events?job=x1', ALICE, 'job', /job id/);
    await bad('/v1/jobs/abc', ALICE, 'id', /job id/);
    await bad('/v1/jobs/1e3/logs', ALICE, 'id', /job id/);
    await bad('/v1/jobs?tenant=nobody', ADMIN, 'tenant', /no tenant nobody/, 404);
    await bad('/v1/jobs?tenant=bob', ALICE, 'tenant', /own tenant/, 403);
    assert.equal((await call('POST', '/v1/jobs/abc/cancel', ALICE)).status, 400);
    const node = await call('POST', '/v1/nodes/-x%20y/drain', ADMIN);
    assert.equal(node.status, 400);
    assert.equal(node.json.error.fields[0].path, 'id');
    await bad('/v1/jobs?queue=nope', ALICE, 'queue', /no queue "nope"/, 404);
    const id = (await call('POST', '/v1/jobs', ALICE, job({ name: 'q' }))).json.jobs[0].id;
    await bad(`/v1/jobs/${id}/logs?task=1`, ALICE, 'task', /from 0 to 0/);
    await bad(`/v1/jobs/${id}/logs?stream=stdin`, ALICE, 'stream', /stdout, stderr/);
    assert.equal((await call('GET', `/v1/jobs?tenant=alice&state=pending,running&limit=1000&order=desc`, ADMIN)).status, 200);
    assert.equal((await call('GET', '/v1/nope?x=1', ALICE)).status, 404);
  });

  test('metrics are exposed in the Prometheus format', async () => {
    const res = await fetch(`${server.url}/metrics`);
    const text = await res.text();
    assert.equal(res.status, 200);
    assert.match(text, /tide_jobs\{state="pending"\} \d+/);
    assert.match(text, /# TYPE tide_scheduling_cycle_seconds histogram/);
  });

  test('every answer is timed by method, route pattern and status; unknown paths share one series', async () => {
    await call('GET', '/healthz', ALICE);
    await call('GET', '/v1/no-such-thing-7f3a', ALICE);
    await call('GET', '/v1/jobs/424242', ALICE);
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const count = (labels: string): number => Number(new RegExp(`tide_http_request_duration_seconds_count\\{${labels}\\} (\\d+)`).exec(text)?.[1] ?? 0);
    assert.ok(count('method="GET",route="/healthz",status_code="200"') >= 1, 'the probe');
    assert.ok(count('method="GET",route="/v1/jobs/:id",status_code="404"') >= 1, 'a job read, by its pattern');
    assert.ok(count('method="GET",route="unmatched",status_code="404"') >= 1, 'an unknown path');
    assert.doesNotMatch(text, /no-such-thing|424242/, 'no URL of a request becomes a label');
    assert.match(text, /tide_http_request_duration_seconds_bucket\{le="0.1",method="GET",route="\/healthz",status_code="200"\} \d+/);
  });
});

test('queue owners set over the API survive a restart, the default queue\'s included', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tide-owners-'));
  const start = () => startServer({ dataDir: dir, port: 0, adminToken: ADMIN, agentToken: AGENT, tickMs: 60_000, config: { adminToken: null, agentToken: null, tenants: [{ name: 'alice', tokens: [ALICE] }, { name: 'bob', tokens: [BOB] }], queues: [] } });
  const put = (url: string, name: string, body: unknown) => fetch(`${url}/v1/queues/${name}`, { method: 'PUT', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  try {
    const first = await start();
    try {
      assert.equal((await put(first.url, 'default', { gpuQuota: 4, tenants: ['alice'] })).status, 200);
      assert.equal((await put(first.url, 'team', { tenants: ['bob'] })).status, 200);
    } finally {
      await first.close();
    }
    const second = await start();
    try {
      const byName = new Map((await second.store.listQueues()).map((q) => [q.name, q]));
      assert.deepEqual(byName.get('default'), { name: 'default', gpuQuota: 4, borrowingLimit: null, tenants: ['alice'] });
      assert.deepEqual(byName.get('team')?.tenants, ['bob']);
      const r = await fetch(`${second.url}/v1/jobs`, { method: 'POST', headers: { authorization: `Bearer ${BOB}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'j', tasks: [{ command: 'true' }] }) });
      assert.equal(r.status, 403);
    } finally {
      await second.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
