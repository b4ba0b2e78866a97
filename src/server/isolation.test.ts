/**
 * Every route in /openapi.json × every caller (no token, a bad token, the agent, tenant A,
 * tenant B, the admin), over real HTTP: each gets the status its role allows (401, 403, 404 for
 * another tenant's job), no route fails with a 500, and nothing tenant B receives names tenant
 * A, its queue or its job ids. A route added without a row in ROLES fails this test.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { RunningServer } from './server.ts';
import { httpCall, memoryServer } from './testing.ts';

const ADMIN = 'iso-admin-token';
const AGENT = 'iso-agent-token';
const A = 'iso-alice-token';
const B = 'iso-bob-token';
const NODE = 'iso-node';

type Role = 'admin' | 'tenant' | 'agent' | 'node';
/** Who may call each route; 'public' needs no token. */
const ROLES: Record<string, 'public' | readonly Role[]> = {
  'GET /healthz': 'public',
  'GET /metrics': 'public',
  'POST /v1/jobs': ['tenant', 'admin'],
  'GET /v1/jobs': ['tenant', 'admin'],
  'GET /v1/jobs/{id}': ['tenant', 'admin'],
  'POST /v1/jobs/{id}/cancel': ['tenant', 'admin'],
  'POST /v1/jobs/{id}/preempt': ['admin'],
  'POST /v1/jobs/{id}/scale': ['tenant', 'admin'],
  'PUT /v1/jobs/{id}/history': ['tenant', 'admin'],
  'GET /v1/jobs/{id}/logs': ['tenant', 'admin'],
  'GET /v1/arrays/{id}': ['tenant', 'admin'],
  'GET /v1/arrays/{id}/elements/{index}': ['tenant', 'admin'],
  'POST /v1/arrays/{id}/cancel': ['tenant', 'admin'],
  'GET /v1/events': ['tenant', 'admin'],
  'GET /v1/nodes': ['tenant', 'admin'],
  'POST /v1/nodes/{id}/drain': ['admin'],
  'POST /v1/nodes/{id}/undrain': ['admin'],
  'GET /v1/queues': ['tenant', 'admin'],
  'PUT /v1/queues/{name}': ['admin'],
  'POST /v1/tenants': ['admin'],
  'GET /v1/tenants': ['admin'],
  // The bootstrap (agent) token registers a node once; the node's own token does the rest.
  'POST /v1/agent/register': ['agent', 'node'],
  'POST /v1/agent/heartbeat': ['node'],
  'POST /v1/agent/wait': ['node'],
  'POST /v1/agent/lease': ['node'],
  'GET /v1/tokens': ['admin'],
  'POST /v1/tokens': ['admin'],
  'DELETE /v1/tokens/{id}': ['admin'],
  'DELETE /v1/nodes/{id}/credential': ['admin'],
  // The dashboard's (liveEvents.ts, dashboardRoutes.ts); the stream is read with ?once=true.
  'GET /v1/stream': ['tenant', 'admin'],
  'GET /v1/telemetry': ['tenant', 'admin'],
  'GET /v1/placements': ['tenant', 'admin'],
  'GET /v1/idle': ['tenant', 'admin'],
  'GET /v1/session': ['tenant', 'admin'],
  'POST /v1/jobs/validate': ['tenant', 'admin'],
  'GET /v1/whatif': ['admin'],
  'POST /v1/whatif': ['admin'],
  // Usage and budgets (usage/routes.ts).
  'GET /v1/usage': ['tenant', 'admin'],
  'GET /v1/usage/nodes': ['admin'],
  'GET /v1/budgets': ['tenant', 'admin'],
  'PUT /v1/budgets/{name}': ['admin'],
  'DELETE /v1/budgets/{name}': ['admin'],
};

/** NODE's own token, issued at its registration (the test's first step). */
let nodeToken = '';
const CALLERS: readonly { name: string; token: () => string | null; role: Role | null }[] = [
  { name: 'no token', token: () => null, role: null },
  { name: 'bad token', token: () => 'not-a-token-at-all', role: null },
  { name: 'agent', token: () => AGENT, role: 'agent' },
  { name: 'node', token: () => nodeToken, role: 'node' },
  { name: 'tenant B', token: () => B, role: 'tenant' },
  { name: 'tenant A', token: () => A, role: 'tenant' },
  { name: 'admin', token: () => ADMIN, role: 'admin' },
];

const registration = { id: NODE, address: 'http://127.0.0.1:9', cpuMilli: 64_000, memoryMib: 262_144, gpus: [0, 1].map((i) => ({ index: i, model: 'H100', memoryMib: 81_920, uuid: `GPU-iso-${i}` })), simulated: true };

let server: RunningServer;
const call = (method: string, path: string, token: string | null, body?: unknown) => httpCall(server.url, method, path, token, body);

before(async () => {
  server = await memoryServer({
    adminToken: ADMIN,
    agentToken: AGENT,
    // fifo: its reason names the job B's waits behind (what B must not learn of).
    scheduler: 'fifo',
    tickMs: 60_000,
    tenants: { alice: [A], bob: [B] },
    // `alice` is alice's by its name; `shared` is everyone's.
    queues: [{ name: 'alice', gpuQuota: 2, borrowingLimit: 0 }, { name: 'shared', gpuQuota: null, borrowingLimit: null }],
  });
});
after(async () => server.close());

/**
 * Strings in B's answers that would tell B about A: A's tenant and queue name, A's job ids
 * (other than one B put in its own request: `no job 1` tells B nothing).
 */
function leaks(text: string, aJobIds: readonly string[], request: string): string[] {
  const asked = new Set(request.match(/\d+/g) ?? []);
  const found: string[] = [];
  if (/alice/i.test(text)) found.push('the name alice');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return found;
  }
  const walk = (v: unknown, key: string): void => {
    if (Array.isArray(v)) v.forEach((x) => walk(x, key));
    else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) walk(x, k);
    else if (typeof v === 'string') {
      if (['id', 'jobId', 'blockedBy', 'job', 'arrayId', 'firstJobId'].includes(key) && aJobIds.includes(v) && !asked.has(v)) found.push(`${key}: ${v}`);
      for (const m of v.matchAll(/\bjobs? (\d+)\b/g)) if (aJobIds.includes(m[1] as string) && !asked.has(m[1] as string)) found.push(`"${v}"`);
    }
  };
  walk(json, '');
  return found;
}

test('every route × every caller: the right 401/403/404, never a 500, and tenant B never learns of tenant A', async () => {
  const registered = await call('POST', '/v1/agent/register', AGENT, registration);
  assert.equal(registered.status, 200);
  nodeToken = JSON.parse(registered.text).nodeToken;
  const submit = async (token: string, name: string, queue: string, gpus: number) => {
    const r = await call('POST', '/v1/jobs', token, { name, queue, tasks: [{ gpus, command: 'true' }] });
    assert.equal(r.status, 201, r.text);
    return JSON.parse(r.text).jobs[0].id as string;
  };
  // A's first two jobs fill the node's 2 GPUs; its third (2 GPUs) heads queue `shared`, so B's
  // job waits behind it: B's pending reason must not name A's job.
  const aJobs = [await submit(A, 'a-one', 'alice', 1), await submit(A, 'a-two', 'shared', 1), await submit(A, 'a-three', 'shared', 2)];
  const bJob = await submit(B, 'b-one', 'shared', 1);
  const state = async (token: string, id: string) => JSON.parse((await call('GET', `/v1/jobs/${id}`, token)).text).job as { state: string; reason: string | null };
  for (let i = 0; i < 200; i++) {
    if ((await state(A, aJobs[1] as string)).state === 'admitted' && (await state(B, bJob)).reason !== 'submitted') break;
    await new Promise((r) => setTimeout(r, 25)); // the loop runs on each submission; this waits for it
  }
  assert.equal((await state(A, aJobs[0] as string)).state, 'admitted', 'the scheduler placed A\'s job');
  assert.match((await state(B, bJob)).reason ?? '', /behind/, 'B\'s job waits behind A\'s');
  // A's placed jobs run (with measured energy), and A has a budget: usage records and budgets B must not see.
  const desired = JSON.parse((await call('POST', '/v1/agent/heartbeat', nodeToken, { node: NODE, reports: [], telemetry: [] })).text).tasks as { runId: string }[];
  const running = desired.map((d) => ({ runId: d.runId, state: 'running', pid: 1, exitCode: null, startedAt: Date.now() - 5000 }));
  const energy = { epoch: 'iso', seq: 1, nodeJ: 900, unallocatedJ: 0, runs: desired.map((d) => ({ runId: d.runId, energyJ: 450, idleJ: 0 })) };
  assert.equal((await call('POST', '/v1/agent/heartbeat', nodeToken, { node: NODE, reports: running, telemetry: [], energy })).status, 200);
  assert.equal((await call('PUT', '/v1/budgets/alice', ADMIN, { period: 'total', gpuHours: 1000 })).status, 200);
  const aUsage = JSON.parse((await call('GET', '/v1/usage?by=job&from=0', A)).text);
  assert.equal(aUsage.rows.length, 2, 'A sees its two running jobs\' records');
  assert.equal(aUsage.totals.energyJ, 900);
  assert.equal((await call('GET', '/v1/usage?tenant=alice', B)).status, 403, 'B cannot name A');
  // A's batch array (CPU only, in A's queue): B may not see, list or cancel it.
  const aArray = JSON.parse((await call('POST', '/v1/jobs', A, { name: 'a-sweep', queue: 'alice', array: 3, tasks: [{ gpus: 0, command: 'true' }] })).text).array as { id: string; firstJobId: string };
  // Its waiting elements are one job (the array's first); placed ones would be jobs of their own.
  const aIds = [...aJobs, aArray.id, aArray.firstJobId];

  const doc = JSON.parse((await call('GET', '/openapi.json', null)).text) as { paths: Record<string, Record<string, unknown>> };
  const routes = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
  assert.deepEqual([...routes].sort(), Object.keys(ROLES).sort(), 'every documented route has a row in ROLES, and every row a route');

  const bodies: Record<string, unknown> = {
    'POST /v1/jobs': { name: 'iso', queue: 'shared', tasks: [{ gpus: 0, command: 'true' }] },
    'PUT /v1/queues/{name}': { gpuQuota: 1 },
    'POST /v1/tenants': { name: 'iso-new' },
    'POST /v1/agent/register': registration,
    'POST /v1/agent/heartbeat': { node: NODE, reports: [], telemetry: [] },
    'POST /v1/agent/wait': { node: NODE, after: 0, timeoutMs: 100 },
    'POST /v1/agent/lease': { node: NODE },
    'POST /v1/tokens': { role: 'tenant', tenant: 'bob' },
    'POST /v1/jobs/validate': { name: 'iso', queue: 'alice', tasks: [{ gpus: 1, command: 'true' }] },
    'POST /v1/whatif': { policies: ['fifo', 'nope'] },
    'POST /v1/jobs/{id}/scale': { maxReplicas: 2 },
    'PUT /v1/jobs/{id}/history': { points: [[1, 1], [2, 1]] },
    'PUT /v1/budgets/{name}': { period: 'month', gpuHours: 10 },
  };
  const problems: string[] = [];
  for (const caller of CALLERS) {
    for (const route of routes) {
      const [method, template] = route.split(' ') as [string, string];
      const isJob = template.startsWith('/v1/jobs/{id}') || template.startsWith('/v1/arrays/{id}');
      const path = template.replace('{id}', template.startsWith('/v1/arrays/') ? aArray.id : isJob ? (aJobs[0] as string) : NODE).replace('{name}', 'iso-queue').replace('{index}', '1') + (route === 'GET /v1/stream' ? '?once=true' : '');
      const r = await call(method, path, caller.token(), bodies[route]);
      const roles = ROLES[route];
      const expected =
        roles === 'public' ? 200
        : caller.role === null ? 401
        : !roles?.includes(caller.role) ? 403
        : caller.token() === B && isJob ? 404
        : null; // allowed: anything but 401, 403 or a 500 (a 503 is an answer: the test's node has no agent for logs)
      const ok = expected === null ? r.status !== 500 && r.status !== 401 && r.status !== 403 : r.status === expected;
      if (!ok) problems.push(`${caller.name} ${method} ${path}: ${r.status}, expected ${expected ?? 'an allowed answer'}: ${r.text.slice(0, 200)}`);
      // Public routes answer anyone alike (see the report on /metrics in docs/security.md).
      if (caller.token() === B && roles !== 'public') for (const l of leaks(r.text, aIds, path)) problems.push(`tenant B ${method} ${path} learns ${l}`);
    }
  }
  // Lists with every filter B may pass, pages in both directions included.
  for (const path of ['/v1/jobs?order=desc&limit=1', `/v1/jobs?after=${aJobs[0]}`, `/v1/jobs?before=${Number(aJobs[1]) + 10}`, '/v1/jobs?queue=alice', '/v1/jobs?state=timeout,cancelled', '/v1/events?order=desc', '/v1/events?limit=1&after=1', '/v1/usage?from=0&by=job', '/v1/usage?from=0&by=tenant', '/v1/usage?from=0&by=queue', '/v1/usage?from=0&by=node', '/v1/usage?from=0&by=service', '/v1/budgets', `/v1/jobs?array=${aArray.id}`]) {
    const r = await call('GET', path, B);
    if (r.status !== 200) problems.push(`tenant B GET ${path}: ${r.status}`);
    for (const l of leaks(r.text, aIds, path.replace(/\d+/g, ''))) problems.push(`tenant B GET ${path} learns ${l}`);
  }
  assert.deepEqual(JSON.parse((await call('GET', `/v1/jobs?array=${aArray.id}`, B)).text).jobs, [], "B lists none of A's array");
  const own = JSON.parse((await call('GET', `/v1/jobs?array=${aArray.id}`, A)).text).jobs as { arrayCount: number }[];
  assert.equal(own.reduce((n, j) => n + j.arrayCount, 0), 3, 'A lists the jobs that stand for its three elements');
  for (const path of [`/v1/events?job=${aJobs[0]}`, `/v1/jobs/${aJobs[1]}/logs`]) assert.equal((await call('GET', path, B)).status, 404, path);
  assert.deepEqual(problems, []);
});
